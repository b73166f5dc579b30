"""Who may do what, and how often: members ask, moderators curate articles, admins reindex.

The bot checks these itself on every call (Discord's default member permissions are only a UI hint a
server can change). Moderators have Manage Messages or a moderator role; admins have Administrator or
an admin role. The roles are the server's own, by role id (`/config roles`); a server that has not set
them falls back to config.toml's `[bot] moderator_role` / `admin_role`, matched by name. Refusals are
`NotAllowed` (an app-command CheckFailure), answered ephemerally.

Asking has a per (guild, user) cooldown, shared by /ask, the message menu, mentions and auto-answers
(`ask_cooldowns`); a slash command or menu over it is refused with `CommandOnCooldown`.

A leaf: it imports no cog, view, client or CLI module at run time.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import discord
from discord import app_commands

from bot.context import bot_of
from bot.guild_config import guild_config

if TYPE_CHECKING:
    from bot.client import QuoteBot

T = TypeVar("T")


class NotAllowed(app_commands.CheckFailure):
    """A permission check refused the user; the message says who may use the command."""


# What the invite link asks for: Send Messages, Send Messages in Threads (answers in threads and forum
# posts), Embed Links, Read Message History, Use Application Commands, Add Reactions.
INVITE_PERMISSIONS = discord.Permissions(
    send_messages=True,
    send_messages_in_threads=True,
    embed_links=True,
    read_message_history=True,
    use_application_commands=True,
    add_reactions=True,
)
# Discord's default member permissions: a UI hint (members do not see these commands; a server can
# change it under Server Settings -> Integrations). The bot still checks every call itself.
MODERATOR_DEFAULT = discord.Permissions(manage_messages=True)
ADMIN_DEFAULT = discord.Permissions(manage_guild=True)
MODERATOR_COMMANDS = ("articles", "unanswered", "insights")
ADMIN_COMMANDS = ("reindex", "stats", "config")


def apply_default_permissions(tree: app_commands.CommandTree[Any]) -> None:
    """Give the moderator and admin commands their default member permissions (where not set)."""
    for command in tree.get_commands(type=discord.AppCommandType.chat_input):
        if not isinstance(command, app_commands.Command | app_commands.Group):
            continue
        wanted = (
            MODERATOR_DEFAULT
            if command.name in MODERATOR_COMMANDS
            else ADMIN_DEFAULT
            if command.name in ADMIN_COMMANDS
            else None
        )
        if wanted is not None and command.default_permissions is None:
            command.default_permissions = wanted


def _has_role(interaction: discord.Interaction, role_name: str) -> bool:
    if not role_name or not isinstance(interaction.user, discord.Member):
        return False
    wanted = role_name.casefold()
    return any(r.name.casefold() == wanted for r in interaction.user.roles)


def _has_role_id(interaction: discord.Interaction, role_ids: tuple[int, ...]) -> bool:
    if not role_ids or not isinstance(interaction.user, discord.Member):
        return False
    return any(r.id in role_ids for r in interaction.user.roles)


def _in_roles(interaction: discord.Interaction, role_ids: tuple[int, ...] | None, fallback_name: str) -> bool:
    """The server's roles by id when it set them, else config.toml's role name."""
    if role_ids is not None:
        return _has_role_id(interaction, role_ids)
    return _has_role(interaction, fallback_name)


def who_may(permission: str, role_ids: tuple[int, ...] | None, fallback_name: str) -> str:
    if role_ids is not None:
        roles = " ".join(f"<@&{r}>" for r in role_ids)
        return permission + (
            f" or a role among {roles}" if len(role_ids) > 1 else f" or the {roles} role" if roles else ""
        )
    return permission + (f" or the {fallback_name} role" if fallback_name else "")


def is_admin(interaction: discord.Interaction) -> bool:
    if interaction.guild_id is None:
        return False
    bot = bot_of(interaction)
    cfg = guild_config(bot, interaction.guild_id)
    return interaction.permissions.administrator or _in_roles(
        interaction, cfg.admin_role_ids, bot.settings.bot.admin_role
    )


def is_moderator(interaction: discord.Interaction) -> bool:
    if interaction.guild_id is None:
        return False
    bot = bot_of(interaction)
    cfg = guild_config(bot, interaction.guild_id)
    return (
        interaction.permissions.manage_messages
        or is_admin(interaction)
        or _in_roles(interaction, cfg.moderator_role_ids, bot.settings.bot.moderator_role)
    )


def is_config_admin(interaction: discord.Interaction) -> bool:
    """Who may change /config: admins, and members with Manage Server (its default permission)."""
    return interaction.guild_id is not None and (
        interaction.permissions.manage_guild or is_admin(interaction)
    )


def require_guild(interaction: discord.Interaction) -> None:
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()


def require_moderator(interaction: discord.Interaction) -> None:
    require_guild(interaction)
    if not is_moderator(interaction):
        bot = bot_of(interaction)
        cfg = guild_config(bot, interaction.guild_id)
        who = who_may("Manage Messages permission", cfg.moderator_role_ids, bot.settings.bot.moderator_role)
        raise NotAllowed(f"Only moderators ({who}) can do that.")


def require_admin(interaction: discord.Interaction) -> None:
    require_guild(interaction)
    if not is_admin(interaction):
        bot = bot_of(interaction)
        cfg = guild_config(bot, interaction.guild_id)
        who = who_may("Administrator permission", cfg.admin_role_ids, bot.settings.bot.admin_role)
        raise NotAllowed(f"Only admins ({who}) can do that.")


def require_config_admin(interaction: discord.Interaction) -> None:
    require_guild(interaction)
    if not is_config_admin(interaction):
        bot = bot_of(interaction)
        cfg = guild_config(bot, interaction.guild_id)
        who = who_may(
            "Manage Server or Administrator permission", cfg.admin_role_ids, bot.settings.bot.admin_role
        )
        raise NotAllowed(f"Only admins ({who}) can change the server's settings.")


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


def config_admin_check() -> Callable[[T], T]:
    return _as_check(require_config_admin)


# -- how often: the ask cooldown ---------------------------------------------------------------------


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


_COOLDOWNS: weakref.WeakKeyDictionary[discord.Client, Cooldowns] = weakref.WeakKeyDictionary()


def ask_cooldowns(bot: QuoteBot) -> Cooldowns:
    """The bot's ask cooldowns (`[bot] ask_cooldown_rate` per `ask_cooldown_s`), made on first use."""
    found = _COOLDOWNS.get(bot)
    if found is None:
        cfg = bot.settings.bot
        found = _COOLDOWNS[bot] = Cooldowns(cfg.ask_cooldown_rate, cfg.ask_cooldown_s)
    return found


def require_cooldown(interaction: discord.Interaction) -> None:
    """Count one ask in a guild; `CommandOnCooldown` when the user must wait first."""
    if interaction.guild_id is not None:
        bucket = ask_cooldowns(bot_of(interaction)).hit(interaction.guild_id, interaction.user.id)
        if bucket is not None:
            raise app_commands.CommandOnCooldown(bucket, bucket.get_retry_after())


def cooldown_check() -> Callable[[T], T]:
    return _as_check(require_cooldown)
