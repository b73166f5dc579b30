"""Asking: /ask, "@quotebot question", the "Ask quotebot" message menu, and auto-answers in a channel.

Every path defers (or types) first, answers through `bot.read` (the ask lane) off the event loop, and replies with
`replies.answer_content` and the answer's buttons (`bot.views.answer_view`). Every way of asking shares
one cooldown per (guild, user) (`bot.checks.ask_cooldowns`). In a thread, a follow-up question favours
the article the thread was last answered with (`AskCog.threads`).
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import replies
from bot.checks import ask_cooldowns, cooldown_check, guild_check, require_cooldown, require_guild
from bot.client import QuoteBot
from bot.context import collection_of
from bot.guild_config import GuildConfig, decide, guild_config
from bot.safe_text import visible
from bot.views import answer_view
from index.answering import followup
from index.errors import QuotebotError
from index.storage import guild_settings as gs
from index.types import Answer

log = logging.getLogger("quotebot.ask")

QUESTION_MAX = 2000  # Discord-side cap on the option; the library enforces [limits] max_question_chars
REMEMBER_MAX = 10_000  # threads' contexts and questions' channels kept in memory (oldest dropped)
THREAD_NAME_MAX = 100  # Discord's limit on a thread's name


async def _ask(
    bot: QuoteBot, collection: str, question: str, user_id: int, context: followup.Context | None = None
) -> Answer:
    """Answer (and log) a question; a follow-up in a thread (`context`: what the thread was last
    answered with) favours the article of that answer (index.answering.followup)."""
    cfg = guild_config(bot, int(collection))

    def ask() -> Answer:
        lib = bot.library
        if context is not None:
            return lib.ask(
                collection,
                question,
                user_id=str(user_id),
                log_question=bot.settings.bot.log_questions,
                threshold=cfg.threshold,
                may_threshold=cfg.may_threshold,
                context=context,
            )
        answer = lib.ask(
            collection, question, user_id=str(user_id), log_question=bot.settings.bot.log_questions
        )
        return _server_decision(bot, cfg, answer)

    return await bot.metrics.answering(bot.read(ask))


async def _reply(message: discord.Message, answer: Answer) -> None:
    """Answer a message in place (a mention, an auto-answered post), with the answer's buttons."""
    view = answer_view(answer)
    extra: dict[str, Any] = {"view": view} if view is not None else {}
    await message.reply(
        replies.answer_content(answer),
        allowed_mentions=replies.ALLOWED_MENTIONS,
        mention_author=False,
        **extra,
    )


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


class AskCog(commands.Cog, name="Ask"):
    """Members ask questions; the bot quotes a sentence or declines."""

    def __init__(self, bot: QuoteBot) -> None:
        self.bot = bot
        self.cooldowns = ask_cooldowns(bot)
        self.ask_menu = app_commands.ContextMenu(name="Ask quotebot", callback=self.ask_message)
        app_commands.guild_only()(self.ask_menu)
        self.ask_menu.add_check(self._menu_check)
        # thread id -> what it was last answered with (follow-ups there favour that article)
        self.threads: OrderedDict[int, followup.Context] = OrderedDict()
        # question id -> the channel it was asked in (the Question table has no channel): where
        # "Answer this" tells the asker that a moderator answered
        self.asked_in: OrderedDict[int, int] = OrderedDict()

    def context_of(self, channel_id: int | None) -> followup.Context | None:
        return self.threads.get(channel_id) if channel_id is not None else None

    def remember(self, answer: Answer, channel_id: int | None, *, thread_id: int | None = None) -> None:
        """Note where a logged question was asked, and (in a thread) what the thread was answered with."""
        if answer.question_id is not None and channel_id is not None:
            _bounded_put(self.asked_in, answer.question_id, channel_id)
        q = answer.quote
        if thread_id is not None and q is not None:
            _bounded_put(self.threads, thread_id, followup.Context(answer.question, q.article.id, q.text))

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.ask_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.ask_menu.name, type=self.ask_menu.type)

    @staticmethod
    def _menu_check(interaction: discord.Interaction) -> bool:
        require_guild(interaction)
        require_cooldown(interaction)
        return True

    async def answer_interaction(
        self, interaction: discord.Interaction, question: str, *, thread: bool = False
    ) -> None:
        """Answer where asked; in a thread with its earlier answer as context; `thread`: open a
        thread on the answer for follow-ups (not for private answers, nor inside a thread)."""
        collection = collection_of(interaction)
        cfg = guild_config(self.bot, interaction.guild_id)
        if not cfg.answers_in(interaction.channel_id, _parent_id(interaction.channel)):
            await self.bot.reply_ephemeral(interaction, channels_hint(cfg))
            return
        private = cfg.private_answers
        in_thread = isinstance(interaction.channel, discord.Thread)
        if thread and (private or in_thread):
            thread = False  # private answers have no thread; a thread is already one
        await interaction.response.defer(thinking=True, ephemeral=private)
        context = None if private else self.context_of(interaction.channel_id)
        answer = await _ask(self.bot, collection, question, interaction.user.id, context)
        view = answer_view(answer)
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        sent = await interaction.followup.send(
            replies.answer_content(answer),
            allowed_mentions=replies.ALLOWED_MENTIONS,
            ephemeral=private,
            wait=True,
            **extra,
        )
        follows = not private and (in_thread or context is not None)
        self.remember(answer, interaction.channel_id, thread_id=interaction.channel_id if follows else None)
        if thread:
            try:
                assert interaction.channel_id is not None
                opened = await self.bot.http.start_thread_with_message(  # the answer's own thread
                    interaction.channel_id, sent.id, name=_thread_name(question), auto_archive_duration=1440
                )
            except discord.HTTPException as e:
                await self.bot.reply_ephemeral(
                    interaction,
                    f"I answered, but couldn't open a thread for follow-ups here ({e.status}: "
                    "the channel may be gone, or I may lack Create Public Threads).",
                )
                return
            self.remember(answer, None, thread_id=int(opened["id"]))

    @app_commands.command(name="ask")
    @app_commands.guild_only()
    @guild_check()
    @cooldown_check()
    @app_commands.describe(
        question="What do you want to know? I answer by quoting the articles.",
        thread="Open a thread on the answer: follow-up questions there build on it",
    )
    async def ask(
        self,
        interaction: discord.Interaction,
        question: app_commands.Range[str, 1, QUESTION_MAX],
        thread: bool = False,
    ) -> None:
        """Ask a question; quotebot answers by quoting the exact sentence from this server's articles."""
        await self.answer_interaction(interaction, question, thread=thread)

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
            channel_id = message.channel.id
            context = self.context_of(channel_id)
            async with message.channel.typing():
                answer = await _ask(self.bot, str(message.guild.id), question, message.author.id, context)
            await _reply(message, answer)
            follows = isinstance(message.channel, discord.Thread) or context is not None
            self.remember(answer, channel_id, thread_id=channel_id if follows else None)
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
            if bot.settings.bot.log_questions:
                answer = bot.library.log_answer(collection, answer, str(message.author.id))
            return answer

        try:
            answer = await bot.metrics.answering(bot.read(ask))
            if answer is None:
                return
            in_thread = isinstance(message.channel, discord.Thread)  # a forum post: follow-ups there
            self.remember(answer, message.channel.id, thread_id=message.channel.id if in_thread else None)
            await _reply(message, answer)
        except QuotebotError as e:
            log.info("auto-answer skipped message %s: %s", message.id, e)
        except discord.HTTPException:
            log.warning("could not auto-answer message %s", message.id, exc_info=True)


def _bounded_put(memory: OrderedDict[int, Any], key: int, value: Any) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > REMEMBER_MAX:
        memory.popitem(last=False)


def _thread_name(question: str) -> str:
    name = replies.trim(visible(" ".join(question.split()), multiline=False), THREAD_NAME_MAX)
    return name or "Follow-ups"


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
