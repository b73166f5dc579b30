"""Many hosts, one PostgreSQL database (issue 15): two real processes with their own data
directories. A write on one is quoted by the other on its next question (every question checks the
collection's generation in SQL), a removal is never quoted after it, writers on both hosts are
serialised by a PostgreSQL advisory lock (two hosts adding one new source id leave one article),
and a crash of either leaves the other consistent."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, pg_schema
from tests.reliability.test_faults import run_driver

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from pg_schema()


class Host:
    """A long-lived process answering questions (a bot on another machine)."""

    def __init__(self, data: Path, url: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.fault_driver", str(data), "serve", "--db", url],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        assert json.loads(self.proc.stdout.readline()) == {"ready": True}

    def ask(self, tag: str, k: int) -> str | None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"ask {tag} {k}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["quote"]

    def close(self) -> str:
        assert self.proc.stdin is not None and self.proc.stderr is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        return self.proc.stderr.read()


def test_two_hosts_see_each_others_writes_and_removals(tmp_path: Path, pg_url: str) -> None:
    a, b = tmp_path / "host-a", tmp_path / "host-b"
    code, _, err = run_driver(a, "add", "s1", "first", "4", "--db", pg_url)
    assert code == 0, err
    host_b = Host(b, pg_url)
    try:
        first = host_b.ask("first", 2)
        assert first is not None and " firsts" in first
        # A write on host A is quoted by host B on its next question.
        t0 = time.monotonic()
        code, _, err = run_driver(a, "add", "s2", "second", "5", "--db", pg_url)
        assert code == 0, err
        second = host_b.ask("second", 3)
        assert second is not None and " seconds" in second
        print(f"\nwrite on host A quoted by host B {time.monotonic() - t0:.2f} s after the add began")
        # A replacement and a removal on host A are never quoted by host B after them.
        code, _, err = run_driver(a, "add", "s1", "third", "4", "--db", pg_url)
        assert code == 0, err
        for k in range(4):
            q = host_b.ask("first", k)
            assert q is None or " firsts" not in q
        code, _, err = run_driver(a, "remove", "s2", "--db", pg_url)
        assert code == 0, err
        for k in range(5):
            q = host_b.ask("second", k)
            assert q is None or " seconds" not in q
        # Host A dies in the middle of a write: host B stays consistent.
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.reliability.fault_driver",
                str(a),
                "add-and-die",
                "s3",
                "fourth",
                "4",
                "--db",
                pg_url,
            ],
            cwd=REPO,
        )
        proc.wait(timeout=60)
        fourth = host_b.ask("fourth", 1)  # committed before the death: quoted
        assert fourth is not None and " fourths" in fourth
        third = host_b.ask("third", 2)
        assert third is not None and " thirds" in third
    finally:
        err = host_b.close()
    assert "Traceback" not in err, err
    code, doc, err = run_driver(b, "doctor", "--db", pg_url)
    assert code == 0 and doc == {"problems": []}, (doc, err)


def test_writers_on_two_hosts_leave_one_article_per_source_id(tmp_path: Path, pg_url: str) -> None:
    from tests.reliability.test_faults import driver

    run_driver(tmp_path / "a", "list", "--db", pg_url)  # the schema exists before the race
    go = tmp_path / "go"
    procs = [
        driver(tmp_path / host, "add", "news-1", tag, "4", "--db", pg_url, "--go", str(go), "--slow", "0.5")
        for host, tag in (("a", "alpha"), ("b", "beta"))
    ]
    time.sleep(2.0)
    go.touch()
    statuses = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        statuses.append(json.loads(out.strip().splitlines()[-1])["status"])
    assert sorted(statuses) == ["added", "replaced"]
    _code, listed, _ = run_driver(tmp_path / "a", "list", "--db", pg_url)
    assert [x["source_id"] for x in listed] == ["news-1"]  # type: ignore[index]
