"""What a member is told when a command fails: one short line for each kind of failure.

`user_message` maps the error (a QuotebotError's own message, a cooldown, a DM, a refused check, an
unreadable option) to that line; anything unexpected is logged with its traceback and answered with
`APOLOGY`, so no internal detail reaches Discord. `QuoteBot.on_app_command_error` sends it ephemerally.

A leaf: it imports no cog, view, client or CLI module.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.checks import NotAllowed
from index.errors import QuotebotError

log = logging.getLogger("quotebot.bot")

APOLOGY = "Sorry, something went wrong on my side. The error has been logged."


def user_message(interaction: discord.Interaction, error: Exception) -> str:
    """The reply for a failure; logs anything unexpected with its traceback."""
    original: BaseException = error
    if isinstance(error, app_commands.CommandInvokeError):
        original = error.original
    if isinstance(original, QuotebotError):
        message = str(original)
    elif isinstance(original, app_commands.CommandOnCooldown):
        message = f"You're asking quickly: try again in {original.retry_after:.0f} s."
    elif isinstance(original, app_commands.NoPrivateMessage):
        message = "quotebot only works in servers: each server has its own articles."
    elif isinstance(original, NotAllowed):
        message = str(original)
    elif isinstance(original, app_commands.CheckFailure):
        message = "You can't use this command here."
    elif isinstance(original, app_commands.TransformerError):
        message = f"I couldn't read the option {original.value!r}."
    else:
        command = interaction.command.qualified_name if interaction.command else "?"
        log.error(
            "unexpected error in %s (guild %s, user %s)",
            command,
            interaction.guild_id,
            interaction.user.id if interaction.user else None,
            exc_info=original,
        )
        message = APOLOGY
    return message
