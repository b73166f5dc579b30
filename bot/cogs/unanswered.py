"""Questions the bot could not answer: /unanswered (moderators), and "Answer this" under each entry.

/unanswered lists recent questions the bot declined or that members voted not helpful. "Answer this"
opens the paste form (bot/views.py) with the question as the title; once the article is added,
`close_the_loop` asks the question again (its logged outcome follows) and, when it is now answered,
tells the asker in the channel they asked in. (The "Answer this" button lives here, not in
bot/views.py with the other buttons: it ends in `close_the_loop`, and views import no cog.)
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import replies
from bot.checks import moderator_check, require_moderator
from bot.client import QuoteBot
from bot.context import bot_of, collection_of
from bot.guild_config import guild_config
from bot.views import PasteArticle
from index.storage import guild_settings as gs
from index.storage.models import Question
from index.types import Answer

UNANSWERED_MAX = 20  # entries of /unanswered, each with its "Answer this" button (Discord allows 25)


class UnansweredCog(commands.Cog, name="Unanswered"):
    """Moderators see what members asked that the articles do not answer, and answer it."""

    def __init__(self, bot: QuoteBot) -> None:
        self.bot = bot

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
        bot = bot_of(interaction)
        try:
            collection = collection_of(interaction)
            require_moderator(interaction)
            question = await bot.read(bot.library.question, collection, self.question_id)
            await interaction.response.send_modal(
                PasteArticle(bot, answering=question, close_the_loop=close_the_loop)
            )
        except Exception as e:
            await bot.on_app_command_error(interaction, e)


async def close_the_loop(
    bot: QuoteBot, interaction: discord.Interaction, collection: str, question: Question
) -> None:
    """After "Answer this": ask the question again (its logged outcome follows), and when it is now
    answered tell the asker in the channel they asked in, if both are still there. The moderator
    gets one ephemeral line saying what happened."""
    from bot.cogs.ask import AskCog, _server_decision

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
    await bot.add_cog(UnansweredCog(bot))
    bot.add_dynamic_items(AnswerThisButton)
