"""A randomized fault run: two writer processes on one data directory (racing over shared source
ids), SIGKILLed at random points, with the disk filled up under them at random moments (a real
tmpfs; without root the run has kills and races only). After every round the invariants hold:

- no source id is stored twice;
- every stored article was written by someone, and is answerable (its question quotes it);
- for every source id the stored article (or its absence) is the outcome of a write that can have
  committed last, judged from the writers' own before/after timestamps;
- an article replaced or removed is never quoted;
- `doctor` is clean once the collection is loaded (it may report a stale index before: the load
  repairs it).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from index.library import Library
from tests.conftest import REPO
from tests.reliability.crash_driver import question, tag_of
from tests.reliability.fault_driver import open_library

C = "local"
POOL = 10  # source ids shared by both writers
MIN_FAULTS = int(os.environ.get("QUOTEBOT_FAULTS", "100"))  # SIGKILLs + disk-full episodes
INF = float("inf")


@dataclass
class Op:
    kind: str  # "add" | "remove"
    tag: str
    source: str
    begin: float
    end: float = INF  # INF: killed or failed before it said it committed (may have committed)
    dropped: bool = False  # NOOP: nothing was written


class Writer:
    def __init__(self, data: Path, seed: int) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.reliability.fault_driver",
                str(data),
                "writer",
                str(seed),
                str(POOL),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.started = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self.started.set()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._reader.join(timeout=30)
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()
        assert "Traceback" not in err, err


def parse(lines: list[str], ops: dict[str, list[Op]], written: set[str]) -> int:
    """Fold one writer's lines into `ops` (per source id); returns the count of FAILED writes."""
    failed = 0
    current: Op | None = None
    for line in lines:
        parts = line.split()
        kind, t = parts[0], float(parts[1])
        if kind == "BEGIN":
            current = Op(parts[2], parts[3], parts[4], t)
            ops.setdefault(current.source, []).append(current)
            if current.kind == "add":
                written.add(current.tag)
        elif current is not None:
            if kind in ("DONE", "GONE"):
                current.end = t
            elif kind == "NOOP":
                current.dropped = True
            elif kind == "FAILED":
                failed += 1  # left open: the error may have come after the commit
            current = None
    return failed


def allowed_outcomes(source_ops: list[Op]) -> set[str | None]:
    """What the stored article of one source id may be (a tag, or None for none)."""
    live = [o for o in source_ops if not o.dropped]
    finished = [o for o in live if o.end < INF]
    out: set[str | None] = set()
    if not finished:
        out.add(None)  # nothing surely committed
    for c in live:
        # c can be the last committed write unless a finished write began after c ended.
        if not any(p is not c and p.begin > c.end for p in finished):
            out.add(c.tag if c.kind == "add" else None)
    return out


def check(lib: Library, ops: dict[str, list[Op]], written: set[str], rng: random.Random) -> tuple[int, bool]:
    """Check every invariant; returns (articles stored, whether doctor had something to repair)."""
    repairing = bool(lib.doctor())
    arts = lib.articles(C)
    sources = [a.source_id for a in arts]
    assert len(sources) == len(set(sources)), f"duplicate source ids: {sorted(sources)}"
    stored = {a.source_id: tag_of(a.title) for a in arts}
    for a in arts:
        tag = tag_of(a.title)
        assert tag in written, f"article {a.id} ({tag}) was never written"
        ans = lib.ask(C, question(tag, a.n_sentences // 2))
        assert ans.quote is not None and ans.quote.article.id == a.id, (a, ans.quote)
        _info, text = lib.article_text(C, a.id)
        assert ans.quote.text == text[ans.quote.start : ans.quote.end]
    for source, source_ops in ops.items():
        outcome = stored.get(source)
        allowed = allowed_outcomes(source_ops)
        assert outcome in allowed, (source, outcome, allowed, source_ops)
    gone = sorted(written - set(stored.values()))
    for tag in rng.sample(gone, min(len(gone), 60)):
        ans = lib.ask(C, question(tag, 1))
        for q in [ans.quote, ans.best, *ans.alternatives]:
            assert q is None or f" {tag}s" not in q.text, f"removed or replaced article {tag} was quoted"
    assert lib.doctor() == []
    return len(arts), repairing


def fill(directory: Path) -> list[Path]:
    made = []
    k = 0
    while True:
        f = directory / f"filler-{k}"
        made.append(f)
        try:
            with f.open("wb") as out:
                while True:
                    out.write(b"\0" * (1 << 20 if k == 0 else 4096))
                    out.flush()
        except OSError:
            pass
        k += 1
        if k > 3:
            return made


@pytest.mark.slow
def test_random_kills_disk_full_and_two_writers_keep_every_invariant(tmp_path: Path) -> None:
    rng = random.Random(16)
    data = tmp_path / "data"
    data.mkdir()
    mounted = os.geteuid() == 0 and (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(data)]).returncode == 0
    )
    ops: dict[str, list[Op]] = {}
    written: set[str] = set()
    kills = disk_full = failed = repaired = rounds = 0
    stored = 0
    seed = 0
    try:
        open_library(data).close()
        while kills + disk_full < MIN_FAULTS:
            rounds += 1
            writers = []
            for _ in range(2):
                seed += 1
                writers.append(Writer(data, seed))
            for w in writers:
                assert w.started.wait(60), "writer did not start"
            time.sleep(rng.uniform(0.2, 1.2))
            if mounted and rng.random() < 0.4:
                fillers = fill(data)
                disk_full += 1
                time.sleep(rng.uniform(0.2, 0.8))
                if rng.random() < 0.5:  # sometimes a kill lands while the disk is full
                    writers[0].kill()
                    kills += 1
                for f in fillers:
                    f.unlink(missing_ok=True)
                time.sleep(rng.uniform(0.1, 0.5))
            for w in writers:
                if w.proc.poll() is None:
                    time.sleep(rng.uniform(0.0, 0.3))
                    w.kill()
                    kills += 1
            for w in writers:
                failed += parse(w.lines, ops, written)
            lib = open_library(data)
            try:
                stored, repairing = check(lib, ops, written, rng)
                repaired += repairing
            finally:
                lib.close()
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(data)], check=False)
    n_ops = sum(len(v) for v in ops.values())
    print(
        f"\n{rounds} rounds, {kills} SIGKILLs, {disk_full} disk-full episodes "
        f"({'tmpfs' if mounted else 'no tmpfs: not root'}), {n_ops} writes begun, "
        f"{failed} refused while the disk was full, {repaired} checks found a stale index (repaired on "
        f"load), {len(written)} articles written, {stored} stored at the end"
    )
    assert kills + disk_full >= MIN_FAULTS
    assert n_ops > 100
    if mounted:
        assert failed > 0, "the disk-full episodes never hit a write"
