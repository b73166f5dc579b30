"""`quotebot run`: the Discord bot in the foreground until a stop signal (token from DISCORD_TOKEN).

`run_bot` loads the model first (a stop signal meanwhile exits 0 at once), then `serve` runs the
bot (bot/client.py) until the gateway ends or SIGTERM / SIGINT asks it to shut down cleanly. A
rejected token, a refused intent or an unreachable Discord is one clear error line. discord.py is
imported only when the bot runs, so the other commands start without it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from typing import TYPE_CHECKING, TextIO

from bot.config import Settings
from index.errors import InputError
from index.library import Library

if TYPE_CHECKING:
    from bot.client import QuoteBot

log = logging.getLogger("quotebot.bot")


def cmd_run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    token = os.environ.get("DISCORD_TOKEN", "").strip()
    if not token:
        raise InputError("DISCORD_TOKEN is not set: export DISCORD_TOKEN=<your bot token> and run again.")
    run_bot(settings, token)
    return 0


BOT_LOGGERS = ("quotebot", "index", "discord")  # logged at INFO (or lower, with -v) while the bot runs


def bot_logging() -> None:
    """One handler (the root's, from the CLI's basicConfig; added here when there is none), so each
    line is printed once; the bot's own, the index's and discord.py's loggers at INFO, or at the
    root's level when that is lower (-v)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    level = min(logging.INFO, root.level or logging.INFO)
    for name in BOT_LOGGERS:
        logging.getLogger(name).setLevel(level)


class _StopBeforeStart(BaseException):
    """SIGTERM / SIGINT while the model loads (before the event loop's own handlers exist)."""


def _stop_before_start(signum: int, _frame: object) -> None:
    raise _StopBeforeStart(signal.Signals(signum).name)


def run_bot(settings: Settings, token: str) -> None:
    """Load the model, then run the bot until interrupted; a rejected token is one clear error line.
    A stop signal during start-up (docker stop right after docker run) also exits cleanly."""
    import aiohttp
    import discord

    from bot.client import QuoteBot

    bot_logging()
    previous = {sig: signal.signal(sig, _stop_before_start) for sig in (signal.SIGTERM, signal.SIGINT)}
    library: Library | None = None
    try:
        library = Library(settings.library_settings())
        log.info("loading the embedding model…")
        library.warm_up()
        bot = QuoteBot(settings, library)
        try:
            asyncio.run(serve(bot, token))
        except (aiohttp.ClientConnectorError, aiohttp.ClientConnectionError, OSError) as e:
            raise InputError(f"Cannot reach Discord ({e.__class__.__name__}: {e}); check the network.") from e
        except discord.LoginFailure as e:
            raise InputError(
                "Discord rejected the bot token: check DISCORD_TOKEN (Developer Portal → your "
                "application → Bot → Reset Token)."
            ) from e
        except discord.PrivilegedIntentsRequired as e:
            raise InputError(
                "Discord refused the Message Content intent: enable it in the Developer Portal "
                "(Bot → Privileged Gateway Intents) or set [bot] mention_questions = false."
            ) from e
    except _StopBeforeStart as e:
        log.info("received %s while starting: stopping", e)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if library is not None:
            library.close()
        log.info("database closed; quotebot stopped")


async def serve(bot: QuoteBot, token: str) -> None:
    """Run the bot until the gateway ends or SIGTERM / SIGINT arrives; a signal shuts it down
    cleanly (`QuoteBot.shutdown`: in-flight work finished or stopped safely, gateway closed)."""
    import discord

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        if not received:
            log.info("received %s: shutting down", sig.name)
        received.append(sig.name)
        stop.set()

    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        async with bot:
            bot.start_monitoring()  # heartbeat, metrics endpoint; close() stops both
            running = loop.create_task(bot.start(token), name="quotebot-gateway")
            stopping = loop.create_task(stop.wait(), name="quotebot-signals")
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if running.done():
                stopping.cancel()
                running.result()  # LoginFailure, PrivilegedIntentsRequired... reach run_bot
                return
            await bot.shutdown()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, discord.ConnectionClosed):
                await asyncio.wait_for(running, 5.0)
            log.info("gateway closed")
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
