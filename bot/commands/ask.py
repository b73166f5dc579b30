"""Asking: /ask, "@quotebot question", the "Ask quotebot" message menu, and the answer's persistent buttons.

Every path defers (or types) first, answers through `bot.read` (the ask lane) off the event loop, and replies with
`replies.answer_content`. The buttons are `DynamicItem`s whose custom_id carries the question id, so
they keep working after a restart: "More sources" re-asks the stored question, "Helpful" / "Not
helpful" record feedback for /unanswered.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import replies
from bot.client import QuoteBot, collection_of
from bot.guild_config import GuildConfig, decide, guild_config
from bot.permissions import guild_check
from index import guild_settings as gs
from index.answer import Answer
from index.errors import QuotebotError
from index.store import Question

log = logging.getLogger("quotebot.ask")

QUESTION_MAX = 2000  # Discord-side cap on the option; the library enforces [limits] max_question_chars


def _bot(interaction: discord.Interaction) -> QuoteBot:
    client = interaction.client
    assert isinstance(client, QuoteBot)
    return client


class Cooldowns:
    """Per (guild, user) token buckets shared by every way of asking."""

    def __init__(self, rate: int, per_s: float) -> None:
        self.rate, self.per_s = rate, per_s
        self._buckets: dict[tuple[int, int], app_commands.Cooldown] = {}

    def hit(self, guild_id: int, user_id: int) -> app_commands.Cooldown | None:
        """Count one ask; the bucket when the user must wait, None when they may ask."""
        if self.per_s <= 0:
            return None
        bucket = self._buckets.setdefault((guild_id, user_id), app_commands.Cooldown(self.rate, self.per_s))
        return bucket if bucket.update_rate_limit() is not None else None


def cooldown_check() -> Any:
    def predicate(interaction: discord.Interaction) -> bool:
        cog = _bot(interaction).get_cog(AskCog.__cog_name__)
        assert isinstance(cog, AskCog)
        if interaction.guild_id is not None:
            bucket = cog.cooldowns.hit(interaction.guild_id, interaction.user.id)
            if bucket is not None:
                raise app_commands.CommandOnCooldown(bucket, bucket.get_retry_after())
        return True

    return app_commands.check(predicate)


def answer_view(answer: Answer) -> discord.ui.View | None:
    """The answer's buttons; only for logged questions (their id is what the buttons carry)."""
    if answer.question_id is None:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(MoreSourcesButton(answer.question_id))
    view.add_item(FeedbackButton(answer.question_id, True))
    view.add_item(FeedbackButton(answer.question_id, False))
    return view


async def _ask(bot: QuoteBot, collection: str, question: str, user_id: int) -> Answer:
    cfg = guild_config(bot, int(collection))

    def ask() -> Answer:
        answer = bot.library.ask(
            collection, question, user_id=str(user_id), log_question=bot.settings.bot.log_questions
        )
        return _server_decision(bot, cfg, answer)

    return await bot.read(ask)


def _server_decision(bot: QuoteBot, cfg: GuildConfig, answer: Answer) -> Answer:
    """The server's /config thresholds over the Library's decision (in the executor); the logged
    question follows the decision the member saw."""
    lib = bot.library
    decided = decide(answer, cfg, lib.threshold, lib.may_threshold)
    if decided.question_id is not None and decided.quote is not answer.quote:
        q = decided.quote
        gs.set_question_outcome(
            lib.store,
            decided.question_id,
            answered=q is not None,
            article_id=q.article.id if q else None,
            start=q.start if q else None,
            end=q.end if q else None,
        )
    return decided


def _parent_id(channel: object) -> int | None:
    """A thread's parent channel (answer channels include their threads and forum posts)."""
    parent = getattr(channel, "parent_id", None)
    return int(parent) if isinstance(parent, int) else None


def channels_hint(cfg: GuildConfig) -> str:
    where = ", ".join(f"<#{i}>" for i in cfg.answer_channel_ids or ())
    return (
        f"I answer questions in {where} in this server."
        if where
        else "I don't answer questions in this server."
    )


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
        bot = _bot(interaction)
        try:
            collection = collection_of(interaction)
            await interaction.response.defer(ephemeral=True, thinking=True)

            def more() -> Answer:
                stored = bot.library.question(collection, self.question_id)
                return bot.library.ask(collection, stored.text, alternatives=5)

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
        bot = _bot(interaction)
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


class AskCog(commands.Cog, name="Ask"):
    """Members ask questions; the bot quotes a sentence or declines."""

    def __init__(self, bot: QuoteBot) -> None:
        self.bot = bot
        cfg = bot.settings.bot
        self.cooldowns = Cooldowns(cfg.ask_cooldown_rate, cfg.ask_cooldown_s)
        self.ask_menu = app_commands.ContextMenu(name="Ask quotebot", callback=self.ask_message)
        app_commands.guild_only()(self.ask_menu)
        self.ask_menu.add_check(self._menu_check)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.ask_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.ask_menu.name, type=self.ask_menu.type)

    @staticmethod
    def _menu_check(interaction: discord.Interaction) -> bool:
        collection_of(interaction)
        cog = _bot(interaction).get_cog(AskCog.__cog_name__)
        assert isinstance(cog, AskCog)
        assert interaction.guild_id is not None
        bucket = cog.cooldowns.hit(interaction.guild_id, interaction.user.id)
        if bucket is not None:
            raise app_commands.CommandOnCooldown(bucket, bucket.get_retry_after())
        return True

    async def answer_interaction(self, interaction: discord.Interaction, question: str) -> None:
        collection = collection_of(interaction)
        cfg = guild_config(self.bot, interaction.guild_id)
        if not cfg.answers_in(interaction.channel_id, _parent_id(interaction.channel)):
            await self.bot.reply_ephemeral(interaction, channels_hint(cfg))
            return
        private = cfg.private_answers
        await interaction.response.defer(thinking=True, ephemeral=private)
        answer = await _ask(self.bot, collection, question, interaction.user.id)
        view = answer_view(answer)
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        await interaction.followup.send(
            replies.answer_content(answer),
            allowed_mentions=replies.ALLOWED_MENTIONS,
            ephemeral=private,
            **extra,
        )

    @app_commands.command(name="ask")
    @app_commands.guild_only()
    @guild_check()
    @cooldown_check()
    @app_commands.describe(question="What do you want to know? I answer by quoting the articles.")
    async def ask(
        self, interaction: discord.Interaction, question: app_commands.Range[str, 1, QUESTION_MAX]
    ) -> None:
        """Ask a question; quotebot answers by quoting the exact sentence from this server's articles."""
        await self.answer_interaction(interaction, question)

    async def ask_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The "Ask quotebot" message menu: the message's text is the question."""
        text = message.content.strip()
        if not text:
            await self.bot.reply_ephemeral(interaction, "That message has no text to ask about.")
            return
        await self.answer_interaction(interaction, text[:QUESTION_MAX])

    @commands.Cog.listener("on_message")
    async def ask_by_mention(self, message: discord.Message) -> None:
        """'@quotebot when was the bridge built?' in a server channel."""
        me = self.bot.user
        if (
            not self.bot.settings.bot.mention_questions
            or me is None
            or message.author.bot
            or message.guild is None
        ):
            return
        cfg = guild_config(self.bot, message.guild.id)
        if me.id not in message.raw_mentions:
            if cfg.auto_answer_channel_id is not None and _auto_answers(message, cfg.auto_answer_channel_id):
                await self.auto_answer(message, cfg)
            return
        if not cfg.answers_in(message.channel.id, _parent_id(message.channel)):
            return  # not an answer channel: mentions here are ignored
        if cfg.private_answers:
            await message.reply(
                "Answers are private in this server: ask with /ask and only you will see the answer.",
                allowed_mentions=replies.ALLOWED_MENTIONS,
                mention_author=False,
            )
            return
        question = re.sub(rf"<@!?{me.id}>", " ", message.content)
        question = " ".join(question.split())
        try:
            if not question:
                await message.reply(
                    "Ask me a question after the mention, or use /ask.",
                    allowed_mentions=replies.ALLOWED_MENTIONS,
                    mention_author=False,
                )
                return
            if self.cooldowns.hit(message.guild.id, message.author.id) is not None:
                await message.add_reaction("⏳")
                return
            async with message.channel.typing():
                answer = await _ask(self.bot, str(message.guild.id), question, message.author.id)
            view = answer_view(answer)
            extra: dict[str, Any] = {"view": view} if view is not None else {}
            await message.reply(
                replies.answer_content(answer),
                allowed_mentions=replies.ALLOWED_MENTIONS,
                mention_author=False,
                **extra,
            )
        except discord.HTTPException:
            log.warning("could not answer message %s", message.id, exc_info=True)
        except Exception as e:
            from index.errors import QuotebotError

            if not isinstance(e, QuotebotError):
                log.error("unexpected error answering message %s", message.id, exc_info=e)
                text = "Sorry, something went wrong on my side."
            else:
                text = str(e)
            await message.reply(text, allowed_mentions=replies.ALLOWED_MENTIONS, mention_author=False)

    async def auto_answer(self, message: discord.Message, cfg: GuildConfig) -> None:
        """A message (a forum post: its title and text) in the auto-answer channel: answered only
        when the answer is confident; otherwise the bot stays quiet. Only answered ones are logged."""
        assert message.guild is not None
        parts = [message.content.strip()]
        if isinstance(message.channel, discord.Thread) and message.channel.id == message.id:
            parts.insert(0, message.channel.name.strip())  # a forum post: its title is the question
        question = " ".join(" ".join(p for p in parts if p).split())[:QUESTION_MAX]
        if len(question) < 3 or self.cooldowns.hit(message.guild.id, message.author.id) is not None:
            return
        collection, bot = str(message.guild.id), self.bot

        def ask() -> Answer | None:
            answer = _server_decision(bot, cfg, bot.library.ask(collection, question))
            if answer.kind != "quote":
                return None
            q = answer.quote
            assert q is not None
            if bot.settings.bot.log_questions:
                qid = bot.library.store.log_question(
                    Question(
                        collection=collection,
                        user_id=str(message.author.id),
                        text=question,
                        answered=True,
                        article_id=q.article.id,
                        start=q.start,
                        end=q.end,
                        score=answer.confidence,
                    )
                )
                answer = dataclasses.replace(answer, question_id=qid)
            return answer

        try:
            answer = await bot.read(ask)
            if answer is None:
                return
            view = answer_view(answer)
            extra: dict[str, Any] = {"view": view} if view is not None else {}
            await message.reply(
                replies.answer_content(answer),
                allowed_mentions=replies.ALLOWED_MENTIONS,
                mention_author=False,
                **extra,
            )
        except QuotebotError as e:
            log.info("auto-answer skipped message %s: %s", message.id, e)
        except discord.HTTPException:
            log.warning("could not auto-answer message %s", message.id, exc_info=True)


def _auto_answers(message: discord.Message, channel_id: int) -> bool:
    """A message in the auto-answer channel itself, or a new post (its first message) in that forum."""
    channel = message.channel
    if channel.id == channel_id:
        return True
    return (
        isinstance(channel, discord.Thread) and channel.parent_id == channel_id and message.id == channel.id
    )


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, QuoteBot)
    await bot.add_cog(AskCog(bot))
