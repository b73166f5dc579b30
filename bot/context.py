"""What a cog or a view reads off an interaction: the bot it came to, the guild's collection, ids typed
as mentions.

A leaf: it imports no cog, view, client or CLI module at run time (the QuoteBot type only for the
type checker), so every cog, view and check can use it without an import cycle.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, cast

import discord
from discord import app_commands

from bot import replies
from index.errors import InputError

if TYPE_CHECKING:
    from bot.client import QuoteBot

_ID = re.compile(r"<@&(\d{15,21})>|<#(\d{15,21})>|<@!?(\d{15,21})>|(\d{15,21})")


def bot_of(interaction: discord.Interaction) -> QuoteBot:
    """The QuoteBot the interaction came to (the only client that loads these cogs and views)."""
    return cast("QuoteBot", interaction.client)


def collection_of(interaction: discord.Interaction) -> str:
    """The guild's collection; every guild is its own and never reads another's."""
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    return str(interaction.guild_id)


def parse_ids(value: str, what: str) -> list[int]:
    """Role, channel or user ids (or mentions) separated by spaces or commas, each once, in order."""
    out: list[int] = []
    for token in value.replace(",", " ").split():
        m = _ID.fullmatch(token)
        if m is None:
            raise InputError(
                f"{replies.plain(token, 60)!s} is not a {what} id or mention: give ids like 123456789012345678, "
                f"or mentions, separated by spaces."
            )
        i = int(next(g for g in m.groups() if g))
        if i not in out:
            out.append(i)
    return out
