"""`quotebot run` at start-up: a stop signal while the model loads (docker stop right after docker
run) exits 0 at once; an unreachable Discord is one clear line, not a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bot.cli.run import run_bot
from bot.config import BotConfig, Settings
from index.errors import InputError
from index.settings import IndexSettings

REPO = Path(__file__).resolve().parents[2]

SLOW_START = textwrap.dedent(
    """
    import sys, time
    import bot.cli.run as run
    from bot.cli import main
    from index.embedding import FakeEmbedder
    from index.library import Library

    class SlowStart(Library):
        def __init__(self, settings):
            super().__init__(settings, embedder=FakeEmbedder())

        def warm_up(self):
            print("WARMING", flush=True)
            time.sleep(60)  # a model that takes long to load

    run.Library = SlowStart
    sys.exit(main(["--data", sys.argv[1], "run"]))
    """
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_while_the_model_loads_exits_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUOTEBOT_")}
    env["DISCORD_TOKEN"] = "test-token"
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_START, str(tmp_path / "data")],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "WARMING"
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert time.monotonic() - t0 < 5
    assert "Traceback" not in err and "while starting: stopping" in err and "quotebot stopped" in err


def test_an_unreachable_discord_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import aiohttp

    import bot.cli.run as run
    import bot.client as client
    from index.embedding import FakeEmbedder
    from index.library import Library

    class Quick(Library):
        def __init__(self, settings):  # type: ignore[no-untyped-def]
            super().__init__(settings, embedder=FakeEmbedder())

        def warm_up(self) -> None:
            pass

    async def no_network(self, token: str) -> None:  # type: ignore[no-untyped-def]
        raise aiohttp.ClientConnectionError("Cannot connect to host discord.com:443")

    monkeypatch.setattr(run, "Library", Quick)
    monkeypatch.setattr(client.QuoteBot, "login", no_network)
    settings = Settings(index=IndexSettings(data_dir=tmp_path / "d"), bot=BotConfig())
    with pytest.raises(InputError, match=r"Cannot reach Discord.*check the network"):
        run_bot(settings, "test-token")
