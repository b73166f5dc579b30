"""Adding articles from Discord: the (ephemeral) reply edited as it goes, then the outcome in words.

`ingest` runs an add call in the write lane (one that downloads first in the fetch lane) and edits the
reply: "Reading…", "Embedding N sentences… 40%" (`Progress`, at most once a second), then what was
added, updated or already had (`describe_results`, `describe_bulk`, `describe_refresh`) or the error.
Used by /articles add and refresh and by the paste form (bot/views.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import discord

from bot import lanes, replies
from index.errors import QuotebotError
from index.types import AddResult, BulkResult, RefreshResult

if TYPE_CHECKING:
    from bot.client import QuoteBot

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
        facts = f"{a.n_sentences} sentences, {a.n_passages} passages (id {a.id})"
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
