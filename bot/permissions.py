"""Who may do what: members ask, moderators curate articles, admins reindex.

The bot checks these itself on every call (Discord's default member permissions are only a UI hint a
server can change). Moderators have Manage Messages or the configured role; admins have Administrator
or the configured role. Refusals are `NotAllowed` (an app-command CheckFailure), answered ephemerally.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import discord
from discord import app_commands

from bot.client import NotAllowed, QuoteBot

T = TypeVar("T")


def _has_role(interaction: discord.Interaction, role_name: str) -> bool:
    if not role_name or not isinstance(interaction.user, discord.Member):
        return False
    wanted = role_name.casefold()
    return any(r.name.casefold() == wanted for r in interaction.user.roles)


def _bot(interaction: discord.Interaction) -> QuoteBot:
    client = interaction.client
    assert isinstance(client, QuoteBot)
    return client


def is_admin(interaction: discord.Interaction) -> bool:
    if interaction.guild_id is None:
        return False
    return interaction.permissions.administrator or _has_role(
        interaction, _bot(interaction).settings.bot.admin_role
    )


def is_moderator(interaction: discord.Interaction) -> bool:
    if interaction.guild_id is None:
        return False
    return (
        interaction.permissions.manage_messages
        or is_admin(interaction)
        or _has_role(interaction, _bot(interaction).settings.bot.moderator_role)
    )


def require_guild(interaction: discord.Interaction) -> None:
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()


def require_moderator(interaction: discord.Interaction) -> None:
    require_guild(interaction)
    if not is_moderator(interaction):
        role = _bot(interaction).settings.bot.moderator_role
        who = "Manage Messages permission" + (f" or the {role} role" if role else "")
        raise NotAllowed(f"Only moderators ({who}) can do that.")


def require_admin(interaction: discord.Interaction) -> None:
    require_guild(interaction)
    if not is_admin(interaction):
        role = _bot(interaction).settings.bot.admin_role
        who = "Administrator permission" + (f" or the {role} role" if role else "")
        raise NotAllowed(f"Only admins ({who}) can do that.")


def _as_check(requirement: Callable[[discord.Interaction], None]) -> Callable[[T], T]:
    def predicate(interaction: discord.Interaction) -> bool:
        requirement(interaction)
        return True

    check: Callable[[T], T] = app_commands.check(predicate)
    return check


def guild_check() -> Callable[[T], T]:
    """Refuse in DMs at run time too (guild_only only hides the command there)."""
    return _as_check(require_guild)


def moderator_check() -> Callable[[T], T]:
    return _as_check(require_moderator)


def admin_check() -> Callable[[T], T]:
    return _as_check(require_admin)
