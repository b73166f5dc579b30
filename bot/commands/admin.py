"""Admin commands: /reindex (rebuild the guild's vector index in the background) and /stats.

A reindex replies at once and runs as a background task through the executor; /ask keeps answering
from the old index meanwhile, because the Library swaps in the new one only when it is complete.
"""

from __future__ import annotations

import logging
import time

import discord
from discord import app_commands
from discord.ext import commands

from bot import replies
from bot.client import QuoteBot, collection_of
from bot.permissions import admin_check
from index.errors import QuotebotError

log = logging.getLogger("quotebot.admin")


class AdminCog(commands.Cog, name="Admin"):
    """Admins rebuild the index and read its statistics."""

    def __init__(self, bot: QuoteBot) -> None:
        self.bot = bot
        self.reindexing: set[str] = set()

    @app_commands.command(name="reindex")
    @app_commands.guild_only()
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
    @admin_check()
    async def stats(self, interaction: discord.Interaction) -> None:
        """This server's article, passage and vector counts, model and index sizes (admins)."""
        collection = collection_of(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        stats = await self.bot.work(self.bot.library.stats, collection)
        embed = discord.Embed(title="quotebot statistics")
        for key in ("articles", "sentences", "chunks", "vectors", "model", "index_type", "threshold"):
            value = stats.get(key)
            if isinstance(value, float):
                value = f"{value:.2f}"
            embed.add_field(name=key.replace("_", " ").capitalize(), value=str(value)[:1024])
        embed.add_field(name="Index size", value=f"{int(str(stats.get('index_bytes') or 0)):,} bytes")
        if stats.get("database_bytes") is not None:
            embed.add_field(name="Database size", value=f"{int(str(stats['database_bytes'])):,} bytes")
        await interaction.followup.send(
            embed=embed, ephemeral=True, allowed_mentions=replies.ALLOWED_MENTIONS
        )


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, QuoteBot)
    await bot.add_cog(AdminCog(bot))
