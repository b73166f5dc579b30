"""Curating a guild's articles: /articles add | list | remove | show, and /unanswered (moderators only).

Adding defers at once, then edits its (ephemeral) reply as it goes: "Reading…", "Embedding N
sentences…", then the outcome. Files are size-checked before they are downloaded; pasted text comes
from a modal. Every call reads and writes only the guild's own collection.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import re
from pathlib import PurePosixPath
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import lanes, replies
from bot.client import QuoteBot, collection_of
from bot.guild_config import guild_config
from bot.permissions import is_moderator, moderator_check, require_moderator
from bot.safe_text import visible
from index.errors import InputError, NotFound, QuotebotError
from index.storage import guild_settings as gs
from index.storage.store import Question
from index.types import AddResult, Answer, ArticleInfo, BulkResult, RefreshResult

log = logging.getLogger("quotebot.articles")

FILE_TYPES = {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".jsonl", ".ndjson", ".zip"}
PASTE_MAX = 4000  # Discord's limit for a modal text input
AUTOCOMPLETE_TIMEOUT_S = 2.5  # Discord gives autocomplete 3 s; an empty list beats an error
PROGRESS_EVERY_S = 1.0  # at most one progress edit a second (Discord's edit rate limits)


def describe_bulk(res: BulkResult, source: str) -> str:
    """The outcome of a bulk add (a sitemap, a feed, an archive): counts, then the first failures."""
    c = res.counts()
    lines = [
        f"{replies.plain(source, 200)}: {c['added']} added, {c['replaced']} updated, "
        f"{c['unchanged']} already had, {c['failed']} failed."
    ]
    for name, why in res.failed[:5]:
        lines.append(f"- {replies.plain(name, 120)}: {replies.plain(why, 200)}")
    if len(res.failed) > 5:
        lines.append(f"- … and {len(res.failed) - 5} more")
    return replies.trim("\n".join(lines), replies.CONTENT_MAX)


def describe_refresh(report: RefreshResult) -> str:
    lines = [
        f"Refreshed: {len(report.unchanged)} unchanged, {len(report.changed)} changed, "
        f"{len(report.gone)} gone, {len(report.failed)} could not be fetched."
    ]
    for a in report.changed[:5]:
        lines.append(f"- updated **{replies.plain(a.title or 'Untitled', 150)}**")
    for a, _ in report.gone[:5]:
        lines.append(f"- gone (404/410): **{replies.plain(a.title or 'Untitled', 150)}**")
    for a, why in report.failed[:5]:
        lines.append(f"- failed: **{replies.plain(a.title or 'Untitled', 150)}**: {replies.plain(why, 150)}")
    return replies.trim("\n".join(lines), replies.CONTENT_MAX)


def describe_results(results: list[AddResult]) -> str:
    """The outcome of an add, one line per article."""
    if len(results) > 10:
        n = {s: sum(r.status == s for r in results) for s in ("added", "replaced", "unchanged")}
        return f"{n['added']} added, {n['replaced']} updated, {n['unchanged']} already had."
    lines = []
    for r in results:
        a = r.article
        title = replies.plain(a.title or "Untitled", 200)
        facts = f"{a.n_sentences} sentences, {a.n_chunks} passages (id {a.id})"
        if r.status == "unchanged":
            lines.append(f"Already had **{title}**: {facts}.")
        elif r.status == "replaced":
            lines.append(f"Updated **{title}**: {facts}.")
        else:
            lines.append(f"Added **{title}**: {facts}.")
    return replies.trim("\n".join(lines) or "Nothing was added.", replies.CONTENT_MAX)


class Progress:
    """Edits an interaction's reply with ingest progress, at most once per `PROGRESS_EVERY_S` and
    whenever the numbers moved since the last edit (so at least every ~1 s while encoding).

    Two sources, both called from the lane's worker thread and handed to the loop in order: the
    Library's `update(done, total)` (after each of its encode steps and stored batches), and the
    lane embedder's `encoded(n)` after each chunk of n sentences (about every 0.1 s), which moves
    the count between the Library's steps."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self.interaction = interaction
        self.loop = asyncio.get_running_loop()
        self._done = 0  # sentences the Library reported
        self._total: int | None = None
        self._since = 0  # sentences encoded since the Library's last report
        self._shown: str | None = None
        self._shown_at = 0.0
        self._task: asyncio.Task[None] | None = None

    def update(self, done: int, total: int) -> None:
        """Called from the executor thread: only records the numbers (thread-safe hand-off)."""
        self.loop.call_soon_threadsafe(self._set, done, total)

    def encoded(self, n: int) -> None:
        """Called from the executor thread after each chunk of n sentences was encoded."""
        self.loop.call_soon_threadsafe(self._add, n)

    def _set(self, done: int, total: int) -> None:
        self._done, self._total, self._since = done, total, 0

    def _add(self, n: int) -> None:
        self._since += n

    def text(self) -> str | None:
        """The progress line for the numbers now (None before any sentence was encoded)."""
        if self._total is None:
            return f"Embedding… {self._since:,} sentences so far" if self._since else None
        total = max(self._total, 1)
        done = min(self._done + self._since, total)
        return f"Embedding {self._total:,} sentences… {done * 100 // total}%"

    async def show(self, text: str) -> None:
        self._shown, self._shown_at = text, self.loop.time()
        with contextlib.suppress(discord.HTTPException):
            await self.interaction.edit_original_response(
                content=text, allowed_mentions=replies.ALLOWED_MENTIONS
            )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, self._shown_at + PROGRESS_EVERY_S - self.loop.time()))
            text = self.text()
            if (
                text is not None
                and text != self._shown
                and self.loop.time() >= self._shown_at + PROGRESS_EVERY_S
            ):
                await self.show(text)

    async def __aenter__(self) -> Progress:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="quotebot-progress")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def ingest(
    bot: QuoteBot,
    interaction: discord.Interaction,
    start: str,
    fn: Any,
    *args: Any,
    download: bool = False,
    label: str | None = None,
    **kwargs: Any,
) -> Any:
    """Run an add call with progress edits; the final edit is the outcome or the error, in words.
    In the write lane; one that downloads first (`download`) in the fetch lane. Returns the call's
    result (None when it failed)."""
    progress = Progress(interaction)
    await progress.show(start)
    if kwargs.pop("with_progress", False):
        kwargs["progress"] = progress.update

    def job() -> Any:
        lanes.set_encoded_hook(progress.encoded)
        try:
            return fn(*args, **kwargs)
        finally:
            lanes.set_encoded_hook(None)

    try:
        async with progress:
            run = bot.fetching if download else bot.work
            result = await bot.metrics.ingesting(run(job))
    except QuotebotError as e:
        await progress.show(f"Could not add the article: {e}")
        return None
    if isinstance(result, RefreshResult):
        await progress.show(describe_refresh(result))
        return result
    if isinstance(result, BulkResult):
        await progress.show(describe_bulk(result, label or start))
        return result
    results = result if isinstance(result, list) else [result]
    await progress.show(describe_results(results))
    return result


class PasteArticle(discord.ui.Modal):
    """A title and the article's text, pasted. `answering`: an unanswered question ("Answer this"):
    its text is the title, and once the article is added the question is asked again and the asker
    told in the channel it was asked in."""

    def __init__(self, cog: ArticlesCog, answering: Question | None = None) -> None:
        super().__init__(title="Answer a question" if answering else "Add an article", timeout=900)
        self.cog = cog
        self.answering = answering
        self.heading: discord.ui.TextInput[PasteArticle] = discord.ui.TextInput(
            max_length=200,
            required=False,
            placeholder="Optional: the article's title",
            default=replies.trim(" ".join(answering.text.split()), 200) if answering else None,
        )
        self.body: discord.ui.TextInput[PasteArticle] = discord.ui.TextInput(
            style=discord.TextStyle.paragraph, max_length=PASTE_MAX, min_length=1
        )
        self.add_item(discord.ui.Label(text="Title", component=self.heading))
        self.add_item(discord.ui.Label(text="Text", component=self.body))

    async def on_submit(self, interaction: discord.Interaction, /) -> None:
        bot = self.cog.bot
        collection = collection_of(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        title = self.heading.value.strip() or None
        added = await ingest(
            bot,
            interaction,
            "Reading…",
            bot.library.add_text,
            collection,
            self.body.value,
            title=title,
            added_by=str(interaction.user.id),
        )
        if added is not None and self.answering is not None:
            await close_the_loop(bot, interaction, collection, self.answering)

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:  # type: ignore[override]
        await self.cog.bot.on_app_command_error(interaction, error)


class ArticlePages(discord.ui.View):
    """Previous / next buttons under an ephemeral article list."""

    def __init__(self, bot: QuoteBot, collection: str, total: int, page: int = 0) -> None:
        super().__init__(timeout=600)
        self.bot = bot
        self.collection = collection
        self.per_page = bot.settings.bot.articles_per_page
        self.total = total
        self.page = page
        self._sync_buttons()

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    def _sync_buttons(self) -> None:
        self.previous.disabled = self.page <= 0
        self.next.disabled = self.page >= self.pages - 1

    async def render(self) -> discord.Embed:
        infos: list[ArticleInfo] = await self.bot.read(
            self.bot.library.articles, self.collection, offset=self.page * self.per_page, limit=self.per_page
        )
        rows = [(a.id, a.title, a.n_sentences, a.url) for a in infos]
        self._sync_buttons()
        return replies.articles_embed(rows, page=self.page, pages=self.pages, total=self.total)

    async def _turn(self, interaction: discord.Interaction, delta: int) -> None:
        await interaction.response.defer()
        self.total = await self.bot.read(self.bot.library.count, self.collection)
        self.page = min(max(0, self.page + delta), self.pages - 1)
        embed = await self.render()
        await interaction.edit_original_response(embed=embed, view=self)

    @discord.ui.button(label="Previous", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await self._turn(interaction, -1)

    @discord.ui.button(label="Next", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await self._turn(interaction, +1)

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any], /
    ) -> None:
        await self.bot.on_app_command_error(interaction, error)


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
            await interaction.response.send_modal(PasteArticle(self))
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
            n_chunks=info.n_chunks,
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

    @app_commands.command(name="unanswered")
    @app_commands.guild_only()
    @moderator_check()
    async def unanswered(self, interaction: discord.Interaction) -> None:
        """Recent questions the bot declined or that members voted not helpful (moderators)."""
        collection = collection_of(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        rows = await self.bot.read(self.bot.library.unanswered, collection, UNANSWERED_MAX)
        content = replies.unanswered_content(
            [(q.text, q.answered, votes, q.created_at.strftime("%Y-%m-%d %H:%M")) for q, votes in rows]
        )
        shown = [q for q, _ in rows][: replies.unanswered_shown(content)]
        extra: dict[str, Any] = {}
        if shown:
            view = discord.ui.View(timeout=None)
            for i, q in enumerate(shown, 1):
                assert q.id is not None
                view.add_item(AnswerThisButton(q.id, i))
            extra["view"] = view
        await interaction.followup.send(
            content, ephemeral=True, allowed_mentions=replies.ALLOWED_MENTIONS, **extra
        )


UNANSWERED_MAX = 20  # entries of /unanswered, each with its "Answer this" button (Discord allows 25)


class AnswerThisButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"qb:ans:(?P<qid>\d+)"):
    """ "Answer this" under an /unanswered entry: opens the paste form with the question as the
    title (moderators only); works after a restart (the question id is in the custom_id)."""

    def __init__(self, question_id: int, number: int = 0) -> None:
        super().__init__(
            discord.ui.Button(
                label=f"Answer {number}" if number else "Answer this",
                style=discord.ButtonStyle.primary,
                custom_id=f"qb:ans:{question_id}",
            )
        )
        self.question_id = question_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> AnswerThisButton:
        return cls(int(match["qid"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = interaction.client
        assert isinstance(bot, QuoteBot)
        try:
            collection = collection_of(interaction)
            require_moderator(interaction)
            question = await bot.read(bot.library.question, collection, self.question_id)
            cog = bot.get_cog(ArticlesCog.__cog_name__)
            assert isinstance(cog, ArticlesCog)
            await interaction.response.send_modal(PasteArticle(cog, answering=question))
        except Exception as e:
            await bot.on_app_command_error(interaction, e)


async def close_the_loop(
    bot: QuoteBot, interaction: discord.Interaction, collection: str, question: Question
) -> None:
    """After "Answer this": ask the question again (its logged outcome follows), and when it is now
    answered tell the asker in the channel they asked in, if both are still there. The moderator
    gets one ephemeral line saying what happened."""
    from bot.commands.ask import AskCog, _server_decision

    cfg = guild_config(bot, int(collection))
    assert question.id is not None
    qid = question.id

    def reask() -> Answer | None:
        lib = bot.library
        if lib.store.get_question(collection, qid) is None:
            return None  # deleted meanwhile (/forget-me, retention)
        answer = _server_decision(bot, cfg, lib.ask(collection, question.text))
        q = answer.quote
        gs.set_question_outcome(
            lib.store,
            qid,
            answered=q is not None,
            article_id=q.article.id if q else None,
            start=q.start if q else None,
            end=q.end if q else None,
        )
        return dataclasses.replace(answer, question_id=qid)

    answer = await bot.read(reask)
    if answer is None:
        await bot.reply_ephemeral(interaction, "That question is no longer on record, so nobody was told.")
        return
    if answer.quote is None:
        await bot.reply_ephemeral(
            interaction,
            f"Asked again, I still couldn't answer it (confidence {answer.confidence:.0%}), so the asker "
            "was not told. Try wording the article closer to the question.",
        )
        return
    ask_cog = bot.get_cog(AskCog.__cog_name__)
    channel_id = ask_cog.asked_in.get(qid) if isinstance(ask_cog, AskCog) else None
    user_id = int(question.user_id) if question.user_id and question.user_id.isdigit() else None
    quoted = f"It now quotes **{replies.plain(answer.quote.article.title or 'Untitled', 200)}**"
    if channel_id is None or user_id is None:
        await bot.reply_ephemeral(
            interaction,
            f"{quoted}. I don't know where it was asked (before my last restart), so the asker was not told.",
        )
        return
    assert interaction.guild is not None
    try:
        await interaction.guild.fetch_member(user_id)
    except discord.NotFound:
        await bot.reply_ephemeral(
            interaction, f"{quoted}. The asker has left the server, so nobody was told."
        )
        return
    except discord.HTTPException:
        pass  # cannot tell: try to tell them anyway
    text = f"<@{user_id}> a moderator answered your question:\n" + replies.answer_content(answer)
    try:
        await bot.get_partial_messageable(channel_id, guild_id=interaction.guild_id).send(
            replies.trim(text, replies.CONTENT_MAX),
            allowed_mentions=discord.AllowedMentions(
                everyone=False, roles=False, replied_user=False, users=[discord.Object(user_id)]
            ),
        )
    except discord.HTTPException as e:
        await bot.reply_ephemeral(
            interaction,
            f"{quoted}, but I couldn't post in <#{channel_id}> ({e.status}), so the asker was not told.",
        )
        return
    await bot.reply_ephemeral(interaction, f"{quoted}; I told <@{user_id}> in <#{channel_id}>.")


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, QuoteBot)
    await bot.add_cog(ArticlesCog(bot))
    bot.add_dynamic_items(AnswerThisButton)
