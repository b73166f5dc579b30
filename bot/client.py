"""The discord.py Bot: owns the command tree, the lanes every Library call goes through, and the one error handler.

`setup_hook` loads the cogs (bot/cogs/), registers the persistent answer buttons (bot/views.py) and
syncs the commands (to `dev_guild_id` when set, instantly; globally otherwise). Nothing slow ever runs on the
event loop: model, FAISS and SQL work leave it through one of three lanes (bot/lanes.py):
`await bot.read(fn, *args)` for questions and quick reads (never queued behind a write),
`await bot.work(fn, *args)` for ingest, reindex and anything else, `await bot.fetching(fn, *args)`
for URL ingest (the download waits here, not in the write lane).

While `bot.cli.run.serve` runs it, the bot writes its heartbeat (`<data_dir>/bot-health.json`, read by
`quotebot health --bot`) every `HEARTBEAT_EVERY_S` and on every shard connect / disconnect / resume,
and, with `[metrics] port` set, serves its Prometheus metrics (bot/metrics.py); both stop on close.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import discord
from discord.ext import commands

from bot import lanes
from bot.config import BotConfig, Settings
from bot.errors import user_message
from bot.metrics import Metrics, article_counts
from bot.replies import ALLOWED_MENTIONS
from bot.views import FeedbackButton, MoreSourcesButton
from index.errors import InputError
from index.health import write_heartbeat
from index.library import Library

log = logging.getLogger("quotebot.bot")

P = ParamSpec("P")
T = TypeVar("T")

# The admin cog last: it sets the default permissions of the commands the others added.
COGS = (
    "bot.cogs.ask",
    "bot.cogs.articles",
    "bot.cogs.unanswered",
    "bot.cogs.insights",
    "bot.cogs.config",
    "bot.cogs.admin",
)
SHUTDOWN_GRACE_S = 8.0  # docker stop waits 10 s before SIGKILL
HEARTBEAT_EVERY_S = 15.0  # `quotebot health --bot` wants a heartbeat younger than 90 s
# discord.py's names for the tasks that handle one interaction or event
HANDLER_TASKS = ("CommandTree-invoker", "discord-ui-", "discord.py: ")


def intents_for(config: BotConfig) -> discord.Intents:
    """Only what we use: guilds (roles, channels), and guild messages + content for "@quotebot question"."""
    intents = discord.Intents.none()
    intents.guilds = True
    if config.mention_questions:
        intents.guild_messages = True
        intents.message_content = True
    return intents


class QuoteBot(commands.AutoShardedBot):
    """quotebot on Discord: one collection of articles per guild (collection = str(guild_id))."""

    def __init__(self, settings: Settings, library: Library, *, sync_commands: bool = True) -> None:
        # Unsharded config: as many shards as Discord recommends, all in this process.
        shards: dict[str, Any] = {}
        if settings.bot.shard_id_list is not None:
            shards = {"shard_ids": settings.bot.shard_id_list, "shard_count": settings.bot.shard_count}
        super().__init__(
            command_prefix=commands.when_mentioned,  # unused: there are no prefix commands
            intents=intents_for(settings.bot),
            help_command=None,
            allowed_mentions=ALLOWED_MENTIONS,
            **shards,
        )
        self.settings = settings
        self.library = library
        self.sync_on_setup = sync_commands
        # The ask lane has at least two threads: autocomplete never waits for a question's encode.
        self.ask_executor = ThreadPoolExecutor(
            max_workers=max(2, settings.bot.workers),
            thread_name_prefix="quotebot-ask",
            initializer=lanes.lane_initializer(lanes.ASK),
        )
        self.executor = ThreadPoolExecutor(  # the write lane
            max_workers=1,
            thread_name_prefix="quotebot-write",
            initializer=lanes.lane_initializer(lanes.WRITE),
        )
        self.fetch_executor = ThreadPoolExecutor(
            max_workers=2,
            thread_name_prefix="quotebot-fetch",
            initializer=lanes.lane_initializer(lanes.FETCH),
        )
        self.gate = lanes.Gate()
        lanes.install(library, self.gate)
        self.depths = lanes.Depths()
        self.lane_of = {
            self.ask_executor: lanes.ASK,
            self.executor: lanes.WRITE,
            self.fetch_executor: lanes.FETCH,
        }
        self.metrics = Metrics(
            depths=self.depths.snapshot,
            latency=self.gateway_latency,
            articles=functools.partial(article_counts, library),
        )
        self.heartbeat_every_s = HEARTBEAT_EVERY_S
        self._beating = False  # serve() turns the heartbeat on; close() writes the last one
        self._shards_down: set[int] = set()  # shards that disconnected and have not (re)connected
        self._background: set[asyncio.Task[Any]] = set()
        self._inflight: set[Future[Any]] = set()  # lane jobs queued or running
        self.stopping = False
        self.tree.interaction_check = self.refuse_while_stopping  # type: ignore[method-assign]
        self.tree.error(self.on_app_command_error)

    # -- life cycle -------------------------------------------------------------------------------

    async def setup_hook(self) -> None:
        for name in COGS:
            await self.load_extension(name)
        self.add_dynamic_items(FeedbackButton, MoreSourcesButton)
        if self.sync_on_setup:
            await self.sync_commands()

    async def sync_commands(self) -> None:
        guild_id = self.settings.bot.dev_guild_id
        if guild_id:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to guild %s", len(synced), guild_id)
        else:
            synced = await self.tree.sync()
            log.info("synced %d global commands (may take up to an hour to appear)", len(synced))

    async def on_ready(self) -> None:
        log.info("logged in as %s in %d guilds", self.user, len(self.guilds))

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: mention questions are handled by the ask cog's listener."""

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await super().close()
        self.stop_monitoring()
        for executor in (self.ask_executor, self.executor, self.fetch_executor):
            executor.shutdown(wait=False, cancel_futures=True)

    # -- heartbeat and metrics ----------------------------------------------------------------------

    def gateway_connected(self) -> bool:
        """Every shard's gateway websocket is open (and none disconnected since it connected), and
        the bot is not closed."""
        if self.is_closed():
            return False
        shards = self.shards
        return bool(shards) and all(
            not info.is_closed() and sid not in self._shards_down for sid, info in shards.items()
        )

    def gateway_latency(self) -> float | None:
        """The gateway heartbeat round trip in seconds (averaged over shards); None while unknown."""
        try:
            latency = float(self.latency)
        except (AttributeError, TypeError, ValueError):
            return None
        return latency if math.isfinite(latency) else None

    def beat(self, connected: bool | None = None) -> None:
        """Write the heartbeat file now (while the heartbeat is on)."""
        if not self._beating:
            return
        up = self.gateway_connected() if connected is None else connected
        try:
            write_heartbeat(self.library.settings.data_dir, connected=up, latency_s=self.gateway_latency())
        except OSError as e:
            log.warning("could not write the heartbeat file: %s", e)

    async def _heartbeat(self) -> None:
        while True:
            self.beat()
            await asyncio.sleep(self.heartbeat_every_s)

    def start_monitoring(self) -> None:
        """Start the heartbeat (its task lives until close) and, with `[metrics] port`, the metrics
        endpoint; a port that is taken is one clear error."""
        m = self.settings.metrics
        if m.port:
            try:
                self.metrics.serve(m.port, m.host)
            except OSError as e:
                raise InputError(
                    f"Cannot serve metrics on {m.host}:{m.port} ({e.strerror or e}): "
                    "choose another [metrics] port, or 0 for none."
                ) from e
        self._beating = True
        self.spawn(self._heartbeat(), name="quotebot-heartbeat")

    def stop_monitoring(self) -> None:
        """The last heartbeat (not connected) and the metrics endpoint closed."""
        if self._beating:
            self.beat(connected=False)
            self._beating = False
        self.metrics.stop()

    async def on_shard_connect(self, shard_id: int, /) -> None:
        self._shards_down.discard(shard_id)
        self.beat()

    async def on_shard_resumed(self, shard_id: int, /) -> None:
        self._shards_down.discard(shard_id)
        self.beat()

    async def on_shard_disconnect(self, shard_id: int, /) -> None:
        self._shards_down.add(shard_id)
        self.beat()

    # -- work off the event loop ------------------------------------------------------------------

    def _submit(self, executor: ThreadPoolExecutor, fn: Callable[[], T]) -> Future[T]:
        future = self.depths.submit(executor, self.lane_of[executor], fn)
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)
        return future

    async def work(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a (Library) call in the write lane (ingest, reindex, remove; anything slow)."""
        return await asyncio.wrap_future(self._submit(self.executor, functools.partial(fn, *args, **kwargs)))

    async def fetching(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a call that downloads first (URL ingest) in the fetch lane."""
        call = functools.partial(fn, *args, **kwargs)
        return await asyncio.wrap_future(self._submit(self.fetch_executor, call))

    async def read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a question or a quick read in the ask lane: never behind a write, and background
        encodes pause between chunks while it is queued or running."""
        self.gate.enter()
        try:
            future = self._submit(self.ask_executor, functools.partial(fn, *args, **kwargs))
        except BaseException:
            self.gate.leave()
            raise
        future.add_done_callback(self.gate.leave)  # in the worker, or at once when cancelled
        return await asyncio.wrap_future(future)

    # -- stopping (SIGTERM, SIGINT) -----------------------------------------------------------------

    async def refuse_while_stopping(self, interaction: discord.Interaction, /) -> bool:
        """The tree's interaction check: once stopping, new commands get a short "restarting"."""
        if not self.stopping:
            return True
        if interaction.type == discord.InteractionType.application_command:
            await self.reply_ephemeral(interaction, "quotebot is restarting: try again in a minute.")
        return False

    async def shutdown(self, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        """Stop taking work, let in-flight work finish (background encodes give up at their next
        chunk, before anything of that batch is stored) for up to `grace_s`, then close the gateway."""
        self.stopping = True
        self.gate.stop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        if self._inflight:
            log.info("waiting for %d running jobs", len(self._inflight))
            while self._inflight and loop.time() < deadline:
                await asyncio.sleep(0.05)
        # Then for the interactions (and events) being handled to send their last reply.
        me = asyncio.current_task()
        handling = [
            t
            for t in asyncio.all_tasks()
            if t is not me and not t.done() and t.get_name().startswith(HANDLER_TASKS)
        ]
        if handling:
            await asyncio.wait(handling, timeout=max(0.1, deadline - loop.time()))
        left = len(self._inflight)
        if left:
            log.warning("%d jobs still running after %.0f s; closing anyway", left, grace_s)
        await self.close()

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        """Start a background task that outlives the interaction (kept referenced until done)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- the one error handler --------------------------------------------------------------------

    async def on_app_command_error(self, interaction: discord.Interaction, error: Exception, /) -> None:
        """Map a failure to a short ephemeral reply (bot.errors); anything unexpected is logged with
        its traceback."""
        await self.reply_ephemeral(interaction, user_message(interaction, error))

    async def reply_ephemeral(self, interaction: discord.Interaction, message: str) -> None:
        """Answer (or follow up on) an interaction with a message only the user sees."""
        try:
            if interaction.response.is_done():
                await interaction.followup.send(message, ephemeral=True, allowed_mentions=ALLOWED_MENTIONS)
            else:
                await interaction.response.send_message(
                    message, ephemeral=True, allowed_mentions=ALLOWED_MENTIONS
                )
        except discord.HTTPException:
            log.warning("could not send an error reply to interaction %s", interaction.id, exc_info=True)
