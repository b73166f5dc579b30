"""/help for everyone and /insights for moderators, both ephemeral.

/insights reads the server's logged questions and votes (index.insights) in the ask lane: questions
per day, quoted / may-answer / declined shares (by the server's confident threshold), helpful vs not
helpful, the most-quoted articles and the declined questions grouped into topics by their embeddings.
"""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot import replies
from bot.checks import guild_check, moderator_check, who_may
from bot.client import QuoteBot
from bot.context import collection_of
from bot.guild_config import guild_config
from index import insights as ins
from index.errors import InputError

TOPIC_SIMILARITY = (
    0.6  # cosine from which two declined questions are one topic (bundled model: paraphrases ≥ 0.8)
)
HELP_TITLES = 5


class InsightsCog(commands.Cog, name="Insights"):
    """What members ask, and how to ask."""

    def __init__(self, bot: QuoteBot) -> None:
        self.bot = bot

    @app_commands.command(name="insights")
    @app_commands.guild_only()
    @moderator_check()
    @app_commands.describe(days="The last 7 or 30 days")
    async def insights(self, interaction: discord.Interaction, days: Literal[7, 30] = 7) -> None:
        """What members asked: per day, answered or not, votes, top articles, unanswered topics (moderators)."""
        collection = collection_of(interaction)
        if days not in (7, 30):  # Discord offers only the choices; a forged payload is refused
            raise InputError(f"I can show the last 7 or 30 days, not {days}.")
        cfg = guild_config(self.bot, interaction.guild_id)
        await interaction.response.defer(ephemeral=True, thinking=True)
        report = await self.bot.read(
            ins.insights,
            self.bot.library,
            collection,
            days=days,
            threshold=cfg.threshold,
            similarity=TOPIC_SIMILARITY,
        )
        await interaction.followup.send(
            embed=replies.insights_embed(report), ephemeral=True, allowed_mentions=replies.ALLOWED_MENTIONS
        )

    @app_commands.command(name="help")
    @app_commands.guild_only()
    @guild_check()
    async def help(self, interaction: discord.Interaction) -> None:
        """How to ask quotebot, what it has read, and who can add articles."""
        collection = collection_of(interaction)
        bot = self.bot
        cfg = guild_config(bot, interaction.guild_id)

        def facts() -> tuple[int, list[str]]:
            lib = bot.library
            return lib.count(collection), [a.title for a in lib.articles(collection, limit=HELP_TITLES)]

        count, titles = await bot.read(facts)
        ways = [
            "`/ask question:` (add `thread: True` for a thread where follow-up questions build on the answer)"
        ]
        if bot.settings.bot.mention_questions and not cfg.private_answers:
            ways.append(
                f"mention me: <@{bot.user.id if bot.user else 0}> your question (in a thread, it follows on)"
            )
        ways.append("the **Ask quotebot** menu on a message (Apps → Ask quotebot)")
        lines = [
            "**How to ask:** " + "; ".join(ways) + ".",
            "I answer by quoting the exact sentence from this server's articles, with its source and my "
            "confidence. When I can't find it I say so in one line; **More sources** shows you (only "
            "you) what came close.",
        ]
        if cfg.answer_channel_ids is not None:
            where = ", ".join(f"<#{i}>" for i in cfg.answer_channel_ids) or "no channel"
            lines.append(f"**Where:** {where} (and their threads).")
        if cfg.private_answers:
            lines.append("Answers are private in this server: only the asker sees them.")
        if count:
            shown = ", ".join(f"*{replies.plain(t or 'Untitled', 80)}*" for t in titles)
            more = f" and {count - len(titles)} more" if count > len(titles) else ""
            lines.append(f"**What I've read:** {count} article{'s' if count != 1 else ''}: {shown}{more}.")
        else:
            lines.append("**What I've read:** no articles yet.")
        who = who_may("Manage Messages permission", cfg.moderator_role_ids, bot.settings.bot.moderator_role)
        lines.append(
            f"**Who can add articles:** moderators ({who}), with `/articles add`; questions I couldn't "
            "answer wait in `/unanswered`, where a moderator can answer them."
        )
        await bot.reply_ephemeral(interaction, replies.trim("\n".join(lines), replies.CONTENT_MAX))


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, QuoteBot)
    await bot.add_cog(InsightsCog(bot))
