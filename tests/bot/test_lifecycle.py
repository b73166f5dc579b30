"""Stopping: SIGTERM (docker stop, systemd) and SIGINT shut `quotebot run` down cleanly; and its log
shows every line once, the index's INFO lines included.

There is no Discord-compatible gateway in the tests, so `quotebot run` runs in a subprocess with the
REST API answered by the test recorder and a stub gateway connection that stays open until the bot
closes it. An ingest is encoding in the write lane when the signal arrives: it must stop at a chunk
boundary (nothing half-stored), the database must be closed, and the process must exit 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from index.embedding import FakeEmbedder
from index.library import Library
from index.settings import LibrarySettings
from tests.bot.conftest import GUILD_A, Harness

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, time
    import discord
    import bot.client as client
    from bot.cli import main
    from bot import lanes
    from index.embedding import FakeEmbedder
    from index.ingest.sentences import split_sentences  # noqa: F401 (imported as the bot would)
    from tests.bot.conftest import offline_run
    from tests.conftest import make_doc

    class SlowFake(FakeEmbedder):
        def encode(self, texts, *, batch_size=64):
            time.sleep(0.002 * len(texts))  # a real model's cost, spent in the worker thread
            return super().encode(texts, batch_size=batch_size)

    offline_run(SlowFake)

    async def connect(self, *, reconnect=True):
        text = " ".join(f"Gauge {i} read {i % 13} metres at the weir." for i in range(6000))
        started = []

        def job():
            def hook(n):
                if not started:
                    started.append(n)
                    print("ENCODING", flush=True)
            lanes.set_encoded_hook(hook)
            return self.library.add_documents("@GUILD@", [make_doc(text, "Gauges")])

        async def ingest():
            try:
                await self.work(job)
                print("INGEST FINISHED", flush=True)
            except lanes.ShuttingDown as e:
                print("INGEST STOPPED:", e, flush=True)

        task = asyncio.get_running_loop().create_task(ingest(), name="discord.py: test-ingest")
        while not self.is_closed():
            await asyncio.sleep(0.05)
        await task
        print("CONNECTION CLOSED", flush=True)

    client.QuoteBot.connect = connect
    sys.exit(main(["--data", sys.argv[1], "run"]))
    """
).replace("@GUILD@", str(GUILD_A))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_shuts_down_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    script = tmp_path / "run_bot.py"
    script.write_text(SCRIPT)
    data = tmp_path / "data"
    # A temporary an interrupted save left behind: the Library removes it at start and says so at
    # INFO on the `index.library` logger.
    (data / "index").mkdir(parents=True)
    stale = data / "index" / ".crashed.faiss.tmp"
    stale.write_bytes(b"partial")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    env = {**os.environ, "DISCORD_TOKEN": "test-token", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(data)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the ingest is encoding (or the process died)
        assert line.strip() == "ENCODING", (line, proc.stderr.read() if proc.stderr else "")
        time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (proc.returncode, err[-3000:])
    assert took < 8, f"shutdown took {took:.1f} s"
    assert f"received {sig.name}: shutting down" in err, err[-3000:]
    assert "INGEST STOPPED: quotebot is restarting" in out, out
    assert "INGEST FINISHED" not in out
    assert "CONNECTION CLOSED" in out
    assert "gateway closed" in err and "database closed; quotebot stopped" in err, err[-3000:]
    assert err.index("gateway closed") < err.index("database closed")
    assert "Traceback" not in err, err[-3000:]

    # Logging: one handler, so each discord.py line once (not also in its colour format), and the
    # index's INFO lines shown.
    assert err.count("logging in using static token") == 1, err[-3000:]
    assert "\x1b[" not in err, "discord.py's own (coloured) handler is still installed"
    assert f"INFO index.search.shelves: removed {stale}" in err, err[-3000:]
    assert not stale.exists()

    # Nothing was half-stored: the interrupted article is absent and SQL and the index agree.
    lib = Library(LibrarySettings(data_dir=data), embedder=FakeEmbedder())
    try:
        assert lib.count(str(GUILD_A)) == 0
        assert lib.doctor() == []
    finally:
        lib.close()


async def test_commands_are_refused_while_stopping(harness: Harness) -> None:
    harness.bot.stopping = True
    calls = await harness.slash("ask", {"question": "When was the bridge built?"})
    assert len(calls) == 1 and calls[0].ephemeral
    assert calls[0].content == "quotebot is restarting: try again in a minute."
