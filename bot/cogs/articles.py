"""Curating a guild's articles: /articles add | refresh | list | remove | show (moderators only).

Adding defers at once, then edits its (ephemeral) reply as it goes (bot/progress.py): "Reading…",
"Embedding N sentences…", then the outcome. Files are size-checked before they are downloaded; pasted
text comes from a modal (bot/views.py). Every call reads and writes only the guild's own collection.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import PurePosixPath

import discord
from discord import app_commands
from discord.ext import commands

from bot import replies
from bot.checks import is_moderator, moderator_check
from bot.client import QuoteBot
from bot.context import collection_of
from bot.progress import ingest
from bot.safe_text import visible
from bot.views import ArticlePages, PasteArticle
from index.errors import InputError, NotFound

log = logging.getLogger("quotebot.articles")

FILE_TYPES = {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".jsonl", ".ndjson", ".zip"}
AUTOCOMPLETE_TIMEOUT_S = 2.5  # Discord gives autocomplete 3 s; an empty list beats an error


class ArticlesCog(commands.Cog, name="Articles"):
    """Moderators add, list, inspect and remove the guild's articles."""

    articles = app_commands.Group(
        name="articles",
        description="Manage this server's articles (moderators).",
        guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True),
    )

    def __init__(self, bot: QuoteBot) -> None:
        self.bot = bot

    async def _resolve(self, collection: str, ref: str) -> int:
        """An article id from an autocomplete value (the id), a source id, or an exact title."""
        ref = ref.strip()
        try:
            info, _ = await self.bot.read(self.bot.library.article_text, collection, ref)
            return info.id
        except NotFound:
            hits = await self.bot.read(self.bot.library.search_titles, collection, ref, 5)
            exact = [h for h in hits if h.title.casefold() == ref.casefold()]
            if len(exact) == 1:
                return exact[0].id
            raise

    @articles.command(name="add")
    @moderator_check()
    @app_commands.describe(
        url="A web page to add (http or https); adding it again updates it",
        file="A file: .txt, .md, .html, .pdf, .jsonl, or a .zip of them",
        text="Paste the text in a form",
        sitemap="A sitemap URL: every page it lists",
        feed="An RSS or Atom feed URL: every entry's page",
    )
    async def add(
        self,
        interaction: discord.Interaction,
        url: str | None = None,
        file: discord.Attachment | None = None,
        text: bool | None = None,
        sitemap: str | None = None,
        feed: str | None = None,
    ) -> None:
        """Add articles from a URL, a file or archive, pasted text, a sitemap or a feed."""
        collection = collection_of(interaction)
        chosen = sum(x is not None for x in (url, file, sitemap, feed)) + bool(text)
        if chosen > 1:
            raise InputError("Give one of url, file, text, sitemap or feed, not several.")
        if sitemap is not None or feed is not None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            where = sitemap or feed
            assert where is not None
            add = self.bot.library.add_sitemap if sitemap is not None else self.bot.library.add_feed
            await ingest(
                self.bot,
                interaction,
                "Fetching the sitemap…" if sitemap is not None else "Fetching the feed…",
                add,
                collection,
                where.strip(),
                added_by=str(interaction.user.id),
                download=True,
                label=where.strip(),
            )
            return
        if url is None and file is None:
            await interaction.response.send_modal(PasteArticle(self.bot))
            return
        limits = self.bot.settings.limits
        if file is not None:
            suffix = PurePosixPath(file.filename).suffix.lower()
            if suffix not in FILE_TYPES:
                raise InputError(
                    f"I can read {', '.join(sorted(FILE_TYPES))} files, not {file.filename or 'that file'}."
                )
            if file.size > limits.max_article_bytes:
                raise InputError(
                    f"{file.filename} is {file.size:,} bytes; the limit is {limits.max_article_bytes:,}."
                )
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = str(interaction.user.id)
        if file is not None:
            await interaction.edit_original_response(content="Downloading…")
            try:
                data = await file.read()
            except discord.HTTPException as e:
                await interaction.edit_original_response(
                    content=f"Could not download {replies.plain(file.filename, 200)} from Discord ({e.status})."
                )
                return
            if PurePosixPath(file.filename).suffix.lower() == ".zip":
                await ingest(
                    self.bot,
                    interaction,
                    "Reading the archive…",
                    self.bot.library.add_zip,
                    collection,
                    data,
                    file.filename,
                    added_by=who,
                    label=file.filename,
                )
                return
            await ingest(
                self.bot,
                interaction,
                "Reading…",
                self.bot.library.add_bytes,
                collection,
                data,
                filename=file.filename,
                content_type=file.content_type,
                added_by=who,
                with_progress=True,
            )
        else:
            assert url is not None
            await ingest(
                self.bot,
                interaction,
                "Fetching…",
                self.bot.library.add_url,
                collection,
                url,
                added_by=who,
                download=True,
            )

    @articles.command(name="refresh")
    @moderator_check()
    @app_commands.describe(remove_gone="Also remove articles whose page is gone (404 / 410)")
    async def refresh(self, interaction: discord.Interaction, remove_gone: bool = False) -> None:
        """Fetch this server's web articles again and update the ones that changed."""
        collection = collection_of(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        await ingest(
            self.bot,
            interaction,
            "Refreshing…",
            self.bot.library.refresh,
            collection,
            remove_gone=remove_gone,
            download=True,
        )

    @articles.command(name="list")
    @moderator_check()
    async def list_(self, interaction: discord.Interaction) -> None:
        """List this server's articles."""
        collection = collection_of(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        total = await self.bot.read(self.bot.library.count, collection)
        view = ArticlePages(self.bot, collection, total)
        embed = await view.render()
        await interaction.followup.send(
            embed=embed, view=view, ephemeral=True, allowed_mentions=replies.ALLOWED_MENTIONS
        )

    @articles.command(name="remove")
    @moderator_check()
    @app_commands.describe(article="The article to remove (start typing its title)")
    async def remove(self, interaction: discord.Interaction, article: str) -> None:
        """Remove an article; its sentences stop being quoted at once."""
        collection = collection_of(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        aid = await self._resolve(collection, article)
        info = await self.bot.work(self.bot.library.remove, collection, aid)
        await interaction.followup.send(
            f"Removed **{replies.plain(info.title or 'Untitled', 200)}** (id {info.id}).",
            ephemeral=True,
            allowed_mentions=replies.ALLOWED_MENTIONS,
        )

    @articles.command(name="show")
    @moderator_check()
    @app_commands.describe(article="The article to show (start typing its title)")
    async def show(self, interaction: discord.Interaction, article: str) -> None:
        """Show an article's title, source, size, who added it, and how it starts."""
        collection = collection_of(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        aid = await self._resolve(collection, article)
        info, text = await self.bot.read(self.bot.library.article_text, collection, aid)
        embed = replies.article_embed(
            article_id=info.id,
            title=info.title,
            url=info.url,
            n_sentences=info.n_sentences,
            n_passages=info.n_passages,
            added_by=info.added_by,
            created_at=info.created_at,
            excerpt=text[:1000],
        )
        await interaction.followup.send(
            embed=embed, ephemeral=True, allowed_mentions=replies.ALLOWED_MENTIONS
        )

    @remove.autocomplete("article")
    @show.autocomplete("article")
    async def article_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None or not is_moderator(interaction):
            return []
        collection = str(interaction.guild_id)
        try:
            infos = await asyncio.wait_for(
                self.bot.read(self.bot.library.search_titles, collection, current.strip(), 25),
                AUTOCOMPLETE_TIMEOUT_S,
            )
        except TimeoutError:
            return []
        choices = []
        for a in infos:
            suffix = f" (#{a.id})"
            name = replies.trim(
                visible(" ".join((a.title or "Untitled").split())), replies.CHOICE_NAME_MAX - len(suffix)
            )
            choices.append(app_commands.Choice(name=(name or "Untitled") + suffix, value=f"#{a.id}"))
        return choices


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, QuoteBot)
    await bot.add_cog(ArticlesCog(bot))
