"""The bot's heartbeat for `quotebot health --bot`: written while `quotebot run` runs (every
HEARTBEAT_EVERY_S and at once on each shard connect / disconnect / resume), connected = every
shard's gateway websocket open, latency = the gateway heartbeat round trip; at shutdown one last
write says not connected and the writing stops.

The end-to-end test runs the real `main(["run"])` in a subprocess (as tests/bot/test_lifecycle.py
does) with the REST API answered by the test recorder and a stub gateway: one shard whose websocket
is "open" with a 42 ms latency, dropped and resumed on request (a file the test creates). It also
turns the metrics endpoint on and scrapes the gateway latency from it.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli import main
from index.health import HEARTBEAT_FILE, check
from index.settings import LibrarySettings
from tests.bot.conftest import Harness, free_port

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    import discord
    import bot.client as client
    from bot.cli import main
    from index.embedding import FakeEmbedder
    from tests.bot.conftest import offline_run

    offline_run(FakeEmbedder)

    class StubSocket:  # what discord.py reads of a shard's DiscordWebSocket
        shard_id = 0
        open = True
        latency = 0.042

        async def close(self, code=1000):
            self.open = False

    class StubShard:
        def __init__(self):
            self.ws = StubSocket()
            self.id = 0

        async def close(self):
            await self.ws.close()

    control = Path(sys.argv[2])

    async def connect(self, *, reconnect=True):
        shard = StubShard()
        self._AutoShardedClient__shards[0] = shard  # what launch_shards registers
        self.dispatch("connect")
        self.dispatch("shard_connect", 0)  # as READY does
        print("CONNECTED", flush=True)
        while not self.is_closed():
            if (control / "drop").exists():
                (control / "drop").unlink()
                shard.ws.open = False
                self.dispatch("disconnect")
                self.dispatch("shard_disconnect", 0)
                print("DROPPED", flush=True)
            if (control / "resume").exists():
                (control / "resume").unlink()
                shard.ws.open = True
                self.dispatch("resumed")
                self.dispatch("shard_resumed", 0)
                print("RESUMED", flush=True)
            await asyncio.sleep(0.02)
        print("CONNECTION CLOSED", flush=True)

    client.QuoteBot.connect = connect
    sys.exit(main(["--config", sys.argv[3], "--data", sys.argv[1], "run"]))
    """
)


def health(data: Path) -> tuple[int, str]:
    """`quotebot health --bot`, in this process: (exit code, its line)."""
    out = io.StringIO()
    code = main(["--data", str(data), "health", "--bot"], out=out)
    return code, out.getvalue().strip()


def wait_for(cond: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def heartbeat(data: Path) -> dict[str, object]:
    try:
        return dict(json.loads((data / HEARTBEAT_FILE).read_text()))
    except (OSError, ValueError):
        return {}


def test_quotebot_run_heartbeat_says_healthy_then_not_connected_after_shutdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    control = tmp_path / "control"
    control.mkdir()
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(f'[metrics]\nport = {port}\nhost = "127.0.0.1"\n')
    script = tmp_path / "run_bot.py"
    script.write_text(SCRIPT)
    db_url = LibrarySettings(data_dir=data).db_url
    assert not check(db_url, data, bot=True).ok  # no database, no heartbeat yet

    env = {**os.environ, "DISCORD_TOKEN": "test-token", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(data), str(control), str(config)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "CONNECTED", (line, proc.stderr.read() if proc.stderr else "")

        # The connect event wrote the heartbeat at once (the periodic one is every 15 s).
        assert wait_for(lambda: heartbeat(data).get("connected") is True), heartbeat(data)
        state = heartbeat(data)
        assert state["pid"] == proc.pid and state["latency_s"] == pytest.approx(0.042)
        result = check(db_url, data, bot=True)
        assert result.ok, result.line
        code, said = health(data)
        assert code == 0 and said.startswith("healthy:"), said
        assert "bot connected (heartbeat" in said and "gateway latency 42 ms)" in said, said

        # The metrics endpoint ([metrics] port in the config file) reports the gateway latency.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
        assert "quotebot_gateway_latency_seconds 0.042" in text, text

        # A dropped gateway is reported at once, and so is the resume.
        (control / "drop").touch()
        assert proc.stdout.readline().strip() == "DROPPED"
        assert wait_for(lambda: heartbeat(data).get("connected") is False)
        code, said = health(data)
        assert code == 1
        assert "unhealthy: the bot is not connected to Discord" in capsys.readouterr().err
        (control / "resume").touch()
        assert proc.stdout.readline().strip() == "RESUMED"
        assert wait_for(lambda: heartbeat(data).get("connected") is True)
        assert health(data)[0] == 0

        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, (proc.returncode, err[-3000:])
    assert "CONNECTION CLOSED" in out and "Traceback" not in err, err[-3000:]

    # After shutdown: the last heartbeat says not connected, and health --bot says so.
    state = heartbeat(data)
    assert state["connected"] is False and state["pid"] == proc.pid
    result = check(db_url, data, bot=True)
    assert not result.ok and "not connected to Discord" in result.line, result.line
    capsys.readouterr()
    code, _ = health(data)
    assert code == 1 and "not connected to Discord" in capsys.readouterr().err
    # ... and the metrics endpoint is closed with it.
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


async def test_heartbeat_is_periodic_and_stops_at_close(harness: Harness, data_dir: Path) -> None:
    bot = harness.bot
    bot.heartbeat_every_s = 0.05
    assert not (data_dir / HEARTBEAT_FILE).exists()  # nothing is written before serve() starts it
    bot.start_monitoring()
    harness.ignore.update(t for t in bot._background if t.get_name() == "quotebot-heartbeat")
    await asyncio.sleep(0.02)
    first = heartbeat(data_dir)
    # Logged in, but no gateway connected (the harness never connects): written, not connected.
    assert first["connected"] is False and first["latency_s"] is None
    await asyncio.sleep(0.3)
    second = heartbeat(data_dir)
    assert float(second["at"]) > float(first["at"])  # type: ignore[arg-type]

    await bot.close()
    last = heartbeat(data_dir)
    assert last["connected"] is False
    await asyncio.sleep(0.2)
    assert heartbeat(data_dir)["at"] == last["at"]  # no more writes after close


async def test_gateway_latency_is_none_while_unknown(harness: Harness) -> None:
    bot = harness.bot
    assert math.isnan(bot.latency)  # discord.py: no shards yet
    assert bot.gateway_latency() is None
    assert bot.gateway_connected() is False
