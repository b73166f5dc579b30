"""Everything a member clicks or types into: the answer's buttons, the article pager, the paste form.

- `answer_view`: "More sources", "Helpful", "Not helpful" under a logged answer. They are
  `DynamicItem`s whose custom_id carries the question id (registered by `QuoteBot.setup_hook`), so
  they keep working after a restart: "More sources" re-asks the stored question (to the clicker
  only), the votes record feedback for /unanswered.
- `ArticlePages`: previous / next under an ephemeral /articles list.
- `PasteArticle`: the modal of /articles add text and of "Answer this" (bot/cogs/unanswered.py).

Work leaves the event loop through the bot's lanes; failures go to the bot's one error handler. No cog
is imported here (the cogs import this module).
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from bot import replies
from bot.context import bot_of, collection_of
from bot.guild_config import decide, guild_config
from bot.progress import ingest
from index.storage.models import Question
from index.types import Answer, ArticleInfo

if TYPE_CHECKING:
    from bot.client import QuoteBot

PASTE_MAX = 4000  # Discord's limit for a modal text input

# After "Answer this": (bot, interaction, collection, the question) once its article was added.
AfterAnswer = Callable[["QuoteBot", discord.Interaction, str, Question], Awaitable[None]]


def answer_view(answer: Answer) -> discord.ui.View | None:
    """The answer's buttons; only for logged questions (their id is what the buttons carry)."""
    if answer.question_id is None:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(MoreSourcesButton(answer.question_id))
    view.add_item(FeedbackButton(answer.question_id, True))
    view.add_item(FeedbackButton(answer.question_id, False))
    return view


class MoreSourcesButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"qb:more:(?P<qid>\d+)"):
    """Shows the other candidate sentences for the stored question, to the clicker only."""

    def __init__(self, question_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="More sources", style=discord.ButtonStyle.secondary, custom_id=f"qb:more:{question_id}"
            )
        )
        self.question_id = question_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> MoreSourcesButton:
        return cls(int(match["qid"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = bot_of(interaction)
        try:
            collection = collection_of(interaction)
            await interaction.response.defer(ephemeral=True, thinking=True)

            cfg = guild_config(bot, interaction.guild_id)

            def more() -> Answer:
                stored = bot.library.question(collection, self.question_id)
                lib = bot.library
                answer = lib.ask(collection, stored.text, alternatives=5)
                return decide(answer, cfg, lib.threshold, lib.may_threshold)

            answer = await bot.read(more)
            await interaction.followup.send(
                embed=replies.sources_embed(answer), ephemeral=True, allowed_mentions=replies.ALLOWED_MENTIONS
            )
        except Exception as e:
            await bot.on_app_command_error(interaction, e)


class FeedbackButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"qb:fb:(?P<qid>\d+):(?P<v>[01])"
):
    """A "Helpful" / "Not helpful" vote on an answer (one per user; the last vote wins)."""

    def __init__(self, question_id: int, helpful: bool) -> None:
        super().__init__(
            discord.ui.Button(
                label="Helpful" if helpful else "Not helpful",
                emoji="👍" if helpful else "👎",
                style=discord.ButtonStyle.secondary,
                custom_id=f"qb:fb:{question_id}:{int(helpful)}",
            )
        )
        self.question_id = question_id
        self.helpful = helpful

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> FeedbackButton:
        return cls(int(match["qid"]), match["v"] == "1")

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = bot_of(interaction)
        try:
            collection = collection_of(interaction)
            await interaction.response.defer(ephemeral=True, thinking=True)
            await bot.read(
                bot.library.record_feedback,
                collection,
                self.question_id,
                str(interaction.user.id),
                self.helpful,
            )
            thanks = "Thanks, noted as helpful." if self.helpful else "Thanks: moderators will see this one."
            await interaction.followup.send(thanks, ephemeral=True, allowed_mentions=replies.ALLOWED_MENTIONS)
        except Exception as e:
            await bot.on_app_command_error(interaction, e)


class PasteArticle(discord.ui.Modal):
    """A title and the article's text, pasted. `answering`: an unanswered question ("Answer this"):
    its text is the title, and once the article is added `close_the_loop` asks the question again and
    tells the asker in the channel it was asked in."""

    def __init__(
        self, bot: QuoteBot, answering: Question | None = None, close_the_loop: AfterAnswer | None = None
    ) -> None:
        super().__init__(title="Answer a question" if answering else "Add an article", timeout=900)
        self.bot = bot
        self.answering = answering
        self.close_the_loop = close_the_loop
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
        bot = self.bot
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
        if added is not None and self.answering is not None and self.close_the_loop is not None:
            await self.close_the_loop(bot, interaction, collection, self.answering)

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:  # type: ignore[override]
        await self.bot.on_app_command_error(interaction, error)


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
