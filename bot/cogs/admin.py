"""Admin commands: /reindex (rebuild the guild's vector index in the background), /stats, the scheduled
refresh of web articles, and privacy: /forget-me, the retention purge, deletion on guild remove.
(/config, the server's own settings, is bot/cogs/config.py.)

A reindex replies at once and runs as a background task through the executor; /ask keeps answering
from the old index meanwhile, because the Library swaps in the new one only when it is complete.

This cog loads last: it reads every guild's settings into memory and gives the commands the other
cogs added their default member permissions.
"""

from __future__ import annotations

import asyncio
import logging
import time

import discord
from discord import app_commands
from discord.ext import commands

from bot import replies
from bot.checks import admin_check, apply_default_permissions, guild_check, is_admin
from bot.client import QuoteBot
from bot.context import collection_of, parse_ids
from bot.guild_config import configs, purge_expired
from index.errors import InputError, QuotebotError
from index.storage import guild_settings as gs

log = logging.getLogger("quotebot.admin")

PURGE_INTERVAL_S = 24 * 3600.0  # the retention purge runs on start and then daily


class AdminCog(commands.Cog, name="Admin"):
    """Admins rebuild the index and read its statistics."""

    def __init__(self, bot: QuoteBot) -> None:
        self.bot = bot
        self.reindexing: set[str] = set()
        self._purge_timer: asyncio.TimerHandle | None = None
        self._refresh_timer: asyncio.TimerHandle | None = None

    async def cog_load(self) -> None:
        await self.bot.work(configs(self.bot).load)
        apply_default_permissions(self.bot.tree)  # the cogs before this one have added their commands
        self.bot.spawn(self._purge_task(), name="quotebot-retention-purge")  # on start
        self._schedule_purge(PURGE_INTERVAL_S)
        hours = self.bot.settings.ingest.refresh_hours
        if hours > 0:
            self._schedule_refresh(hours * 3600.0)

    async def cog_unload(self) -> None:
        for timer in (self._purge_timer, self._refresh_timer):
            if timer is not None:
                timer.cancel()
        self._purge_timer = self._refresh_timer = None

    # -- keeping web articles current ([ingest] refresh_hours) ------------------------------------------

    def _schedule_refresh(self, delay_s: float) -> None:
        def fire() -> None:
            self.bot.spawn(self._refresh_task(), name="quotebot-refresh")
            self._schedule_refresh(self.bot.settings.ingest.refresh_hours * 3600.0)

        self._refresh_timer = asyncio.get_running_loop().call_later(delay_s, fire)

    async def _refresh_task(self) -> None:
        await self.refresh_all()

    async def refresh_all(self) -> dict[str, tuple[int, int, int, int]]:
        """Refresh the web articles of every server this bot serves (in the fetch lane: questions
        never wait for it); returns collection -> (unchanged, changed, gone, failed)."""
        served = {str(g.id) for g in self.bot.guilds}
        stored = set(await self.bot.read(self.bot.library.collections))
        out: dict[str, tuple[int, int, int, int]] = {}
        for collection in sorted(served & stored):
            try:
                r = await self.bot.fetching(self.bot.library.refresh, collection)
            except QuotebotError as e:
                log.warning("scheduled refresh of %s failed: %s", collection, e)
                continue
            out[collection] = (len(r.unchanged), len(r.changed), len(r.gone), len(r.failed))
            log.info(
                "refreshed %s: %d unchanged, %d changed, %d gone, %d failed", collection, *out[collection]
            )
        return out

    # -- privacy ----------------------------------------------------------------------------------

    def _schedule_purge(self, delay_s: float) -> None:
        """A timer (not a sleeping task), so nothing waits on it between purges."""

        def fire() -> None:
            self.bot.spawn(self._purge_task(), name="quotebot-retention-purge")
            self._schedule_purge(PURGE_INTERVAL_S)

        self._purge_timer = asyncio.get_running_loop().call_later(delay_s, fire)

    async def _purge_task(self) -> None:
        await purge_expired(self.bot)

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """Removed from a server: its questions and votes go (its articles and settings stay)."""
        try:
            d = await self.bot.work(gs.delete_guild_data, self.bot.library.store, str(guild.id))
            log.info("left guild %s: %d questions and %d votes deleted", guild.id, d.questions, d.feedback)
        except QuotebotError as e:
            log.warning("could not delete the questions of guild %s: %s", guild.id, e)

    @app_commands.command(name="forget-me")
    @app_commands.guild_only()
    @guild_check()
    @app_commands.describe(user="Admins only: forget this member instead (an id or mention)")
    async def forget_me(self, interaction: discord.Interaction, user: str | None = None) -> None:
        """Delete the questions you asked and your votes in this server."""
        collection = collection_of(interaction)
        target = interaction.user.id
        if user is not None and user.strip():
            ids = parse_ids(user, "user")
            if len(ids) != 1:
                raise InputError("Give one user (an id or mention).")
            if ids[0] != interaction.user.id and not is_admin(interaction):
                raise InputError("Only admins can delete another member's questions.")
            target = ids[0]
        await interaction.response.defer(ephemeral=True, thinking=True)
        d = await self.bot.read(gs.delete_user_data, self.bot.library.store, collection, str(target))
        mine = target == interaction.user.id
        whose = "your" if mine else f"<@{target}>'s"
        if d.questions or d.feedback:
            text = f"Deleted {whose} questions ({d.questions}) and votes ({d.feedback}) in this server."
        else:
            text = f"Nothing to delete: I have no questions or votes {'of yours' if mine else f'of <@{target}>'} here."
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=replies.ALLOWED_MENTIONS)

    @app_commands.command(name="reindex")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_check()
    async def reindex(self, interaction: discord.Interaction) -> None:
        """Rebuild this server's search index from the database (admins); answering continues meanwhile."""
        collection = collection_of(interaction)
        if collection in self.reindexing:
            await self.bot.reply_ephemeral(interaction, "A reindex of this server is already running.")
            return
        self.reindexing.add(collection)
        await interaction.response.send_message(
            "Reindexing started; questions are still answered meanwhile. I'll update this message when done.",
            ephemeral=True,
            allowed_mentions=replies.ALLOWED_MENTIONS,
        )
        self.bot.spawn(self._rebuild(interaction, collection), name=f"quotebot-reindex-{collection}")

    async def _rebuild(self, interaction: discord.Interaction, collection: str) -> None:
        t0 = time.perf_counter()
        try:
            shelf = await self.bot.work(self.bot.library.rebuild, collection)
            text = (
                f"Reindex finished in {time.perf_counter() - t0:.1f} s: "
                f"{shelf.passages.count:,} passages indexed."
            )
        except QuotebotError as e:
            text = f"Reindex failed: {e}"
        except Exception:
            log.exception("reindex of collection %s failed", collection)
            text = "Reindex failed on my side; the error has been logged. The old index is still in use."
        finally:
            self.reindexing.discard(collection)
        try:
            await interaction.edit_original_response(content=text, allowed_mentions=replies.ALLOWED_MENTIONS)
        except discord.HTTPException:  # the interaction token lives 15 minutes
            log.info("reindex of %s done but the reply could not be edited: %s", collection, text)

    @app_commands.command(name="stats")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_check()
    async def stats(self, interaction: discord.Interaction) -> None:
        """This server's article, passage and vector counts, model and index sizes (admins)."""
        collection = collection_of(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        stats = await self.bot.work(self.bot.library.stats, collection)
        embed = discord.Embed(title="quotebot statistics")
        for name, value in (
            ("Articles", stats.articles),
            ("Sentences", stats.sentences),
            ("Passages", stats.passages),
            ("Vectors", stats.vectors),
            ("Model", stats.model),
            ("Index type", stats.index_type),
            ("Threshold", f"{stats.threshold:.2f}"),
        ):
            embed.add_field(name=name, value=str(value)[:1024])
        embed.add_field(name="Index size", value=f"{stats.index_bytes:,} bytes")
        if stats.database_bytes is not None:
            embed.add_field(name="Database size", value=f"{stats.database_bytes:,} bytes")
        await interaction.followup.send(
            embed=embed, ephemeral=True, allowed_mentions=replies.ALLOWED_MENTIONS
        )


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, QuoteBot)
    await bot.add_cog(AdminCog(bot))
