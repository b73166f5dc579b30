"""/config: a server's own settings (admins, and members with Manage Server), shown and changed.

Thresholds, moderator and admin roles, answer channels, the auto-answer channel, retention and answer
visibility. Everything is validated before anything is written: an unknown role, a deleted channel or
an out-of-range value is a clear ephemeral error and the stored settings stay as they were. A write
goes through `GuildConfigs.update` (bot/guild_config.py), which replaces the cached entry.
"""

from __future__ import annotations

from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot import replies
from bot.checks import config_admin_check
from bot.client import QuoteBot
from bot.context import parse_ids
from bot.guild_config import GuildConfig, configs, guild_config, purge_expired
from index.errors import InputError
from index.storage import guild_settings as gs

MAX_ROLES = 20
MAX_CHANNELS = 50
ANSWER_CHANNEL_TYPES = (
    discord.TextChannel,
    discord.ForumChannel,
    discord.VoiceChannel,
    discord.StageChannel,
)
AUTO_CHANNEL_TYPES = (discord.TextChannel, discord.ForumChannel)


def _guild(interaction: discord.Interaction) -> discord.Guild:
    if interaction.guild is None:
        raise InputError("I can't see this server's roles and channels right now; try again in a moment.")
    return interaction.guild


def parse_roles(interaction: discord.Interaction, value: str) -> tuple[int, ...] | None:
    """`default` (config.toml's role name), `none`, or roles of this server."""
    word = value.strip().casefold()
    if word == "default":
        return None
    if word == "none":
        return ()
    guild = _guild(interaction)
    ids = parse_ids(value, "role")
    if not ids:
        raise InputError("Give at least one role (id or mention), `none` or `default`.")
    if len(ids) > MAX_ROLES:
        raise InputError(f"At most {MAX_ROLES} roles.")
    for i in ids:
        role = guild.get_role(i)
        if role is None:
            raise InputError(f"There is no role with id {i} in this server.")
        if role.is_default():
            raise InputError("@everyone can't be a moderator or admin role.")
    return tuple(ids)


def _channel(guild: discord.Guild, i: int, kinds: tuple[type, ...], what: str) -> Any:
    channel = guild.get_channel(i)
    if channel is None:
        raise InputError(f"There is no channel with id {i} in this server (deleted, or not one I can see).")
    if not isinstance(channel, kinds):
        raise InputError(f"<#{i}> is not {what}.")
    return channel


def _fmt_roles(ids: tuple[int, ...] | None, fallback: str, guild: discord.Guild | None, base: str) -> str:
    if ids is None:
        return (
            f"{base}, or the role named `{fallback}` (config.toml)" if fallback else f"{base} only (default)"
        )
    if not ids:
        return f"{base} only"
    shown = [f"<@&{i}>" if guild is None or guild.get_role(i) else f"deleted role {i}" for i in ids]
    return f"{base}, or " + ", ".join(shown)


def _fmt_channel(i: int, guild: discord.Guild | None) -> str:
    return f"<#{i}>" if guild is None or guild.get_channel(i) else f"deleted channel {i}"


def config_content(
    cfg: GuildConfig, bot: QuoteBot, guild: discord.Guild | None, defaults: tuple[float, float]
) -> str:
    """`defaults`: the Library's threshold and "may answer" threshold."""
    t = cfg.threshold if cfg.threshold is not None else defaults[0]
    m = cfg.may_threshold if cfg.may_threshold is not None else defaults[1]
    m = min(m, t)
    tag = {True: "", False: " (default)"}
    channels = (
        "every channel (default)"
        if cfg.answer_channel_ids is None
        else ", ".join(_fmt_channel(i, guild) for i in cfg.answer_channel_ids) or "none"
    )
    auto = "off" if cfg.auto_answer_channel_id is None else _fmt_channel(cfg.auto_answer_channel_id, guild)
    lines = [
        "**Settings for this server**",
        f"Quote confidently from: {t:.2f}{tag[cfg.threshold is not None]}",
        f'"This may answer it" from: {m:.2f}{tag[cfg.may_threshold is not None]}',
        "Moderators: "
        + _fmt_roles(cfg.moderator_role_ids, bot.settings.bot.moderator_role, guild, "Manage Messages"),
        "Admins: " + _fmt_roles(cfg.admin_role_ids, bot.settings.bot.admin_role, guild, "Administrator"),
        f"Answer channels: {channels}",
        f"Auto-answer (confident answers only): {auto}",
        f"Questions and votes kept: {cfg.retention_days} days",
        "Answers: " + ("private (only the asker sees them)" if cfg.private_answers else "public"),
    ]
    return "\n".join(lines)


class ConfigCog(commands.Cog, name="Config"):
    """Admins set how quotebot behaves in their server."""

    config = app_commands.Group(
        name="config",
        description="This server's quotebot settings (admins).",
        guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True),
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: QuoteBot) -> None:
        self.bot = bot

    # -- /config ----------------------------------------------------------------------------------

    async def _defaults(self) -> tuple[float, float]:
        """The Library's thresholds (read in the executor: the first read may load the reader)."""
        lib = self.bot.library
        return await self.bot.read(lambda: (lib.threshold, lib.may_threshold))

    async def _save(self, interaction: discord.Interaction, changes: dict[str, Any], done: str) -> None:
        assert interaction.guild_id is not None
        # The ask lane: a one-row write, answered within Discord's 3 s, never behind an ingest.
        cfg = await self.bot.read(
            configs(self.bot).update, interaction.guild_id, changes, str(interaction.user.id)
        )
        defaults = await self._defaults()
        await interaction.response.send_message(
            f"{done}\n\n{config_content(cfg, self.bot, interaction.guild, defaults)}",
            ephemeral=True,
            allowed_mentions=replies.ALLOWED_MENTIONS,
        )

    @config.command(name="show")
    @config_admin_check()
    async def config_show(self, interaction: discord.Interaction) -> None:
        """Show this server's settings."""
        cfg = guild_config(self.bot, interaction.guild_id)
        defaults = await self._defaults()
        await interaction.response.send_message(
            config_content(cfg, self.bot, interaction.guild, defaults),
            ephemeral=True,
            allowed_mentions=replies.ALLOWED_MENTIONS,
        )

    @config.command(name="thresholds")
    @config_admin_check()
    @app_commands.describe(
        confident="Quote confidently from this confidence (0 to 1)",
        may='Show "this may answer it" from this confidence (0 to 1, at most the confident one)',
        reset="Go back to the bot's default thresholds",
    )
    async def config_thresholds(
        self,
        interaction: discord.Interaction,
        confident: float | None = None,
        may: float | None = None,
        reset: bool = False,
    ) -> None:
        """Set the confidence needed to quote, and for "this may answer it"."""
        if reset:
            if confident is not None or may is not None:
                raise InputError("Give thresholds or reset, not both.")
            await self._save(interaction, {"threshold": None, "may_threshold": None}, "Thresholds reset.")
            return
        if confident is None and may is None:
            raise InputError("Give `confident`, `may`, or both (numbers from 0 to 1), or `reset`.")
        for name, value in (("confident", confident), ("may", may)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise InputError(f"`{name}` must be a number from 0 to 1, not {value:g}.")
        cfg = guild_config(self.bot, interaction.guild_id)
        t = confident if confident is not None else cfg.threshold
        t_eff = t if t is not None else (await self._defaults())[0]
        if may is not None and may > t_eff:
            raise InputError(f"`may` ({may:.2f}) can't be above the confident threshold ({t_eff:.2f}).")
        changes: dict[str, Any] = {}
        if confident is not None:
            changes["threshold"] = confident
            if cfg.may_threshold is not None and may is None and cfg.may_threshold > confident:
                changes["may_threshold"] = confident  # keep may <= confident
        if may is not None:
            changes["may_threshold"] = may
        await self._save(interaction, changes, "Thresholds saved.")

    @config.command(name="roles")
    @config_admin_check()
    @app_commands.describe(
        moderators="Moderator roles: ids or mentions, `none`, or `default` (config.toml)",
        admins="Admin roles: ids or mentions, `none`, or `default` (config.toml)",
    )
    async def config_roles(
        self, interaction: discord.Interaction, moderators: str | None = None, admins: str | None = None
    ) -> None:
        """Set which roles (by id) are moderators and admins, besides Manage Messages / Administrator."""
        if moderators is None and admins is None:
            raise InputError("Give `moderators`, `admins`, or both.")
        changes: dict[str, Any] = {}
        if moderators is not None:
            changes["moderator_role_ids"] = gs.encode_ids(parse_roles(interaction, moderators))
        if admins is not None:
            changes["admin_role_ids"] = gs.encode_ids(parse_roles(interaction, admins))
        await self._save(interaction, changes, "Roles saved.")

    @config.command(name="channels")
    @config_admin_check()
    @app_commands.describe(answer_in="`all`, or the channels to answer in (ids or #mentions)")
    async def config_channels(self, interaction: discord.Interaction, answer_in: str) -> None:
        """Answer questions in every channel, or only in some (mentions elsewhere are ignored)."""
        ids: tuple[int, ...] | None = None
        if answer_in.strip().casefold() != "all":
            guild = _guild(interaction)
            parsed = parse_ids(answer_in, "channel")
            if not parsed:
                raise InputError("Give `all`, or at least one channel.")
            if len(parsed) > MAX_CHANNELS:
                raise InputError(f"At most {MAX_CHANNELS} channels.")
            for i in parsed:
                _channel(guild, i, ANSWER_CHANNEL_TYPES, "a text, forum or voice channel")
            ids = tuple(parsed)
        await self._save(interaction, {"answer_channel_ids": gs.encode_ids(ids)}, "Answer channels saved.")

    @config.command(name="auto-answer")
    @config_admin_check()
    @app_commands.describe(channel="A text or forum channel (id or #mention), or `off`")
    async def config_auto_answer(self, interaction: discord.Interaction, channel: str) -> None:
        """Answer every message (every new post, in a forum) in one channel, when confident."""
        target: int | None = None
        if channel.strip().casefold() != "off":
            if not self.bot.settings.bot.mention_questions:
                raise InputError(
                    "Auto-answer reads messages: it needs `[bot] mention_questions = true` "
                    "(and the Message Content intent)."
                )
            parsed = parse_ids(channel, "channel")
            if len(parsed) != 1:
                raise InputError("Give one channel, or `off`.")
            _channel(_guild(interaction), parsed[0], AUTO_CHANNEL_TYPES, "a text or forum channel")
            target = parsed[0]
        await self._save(
            interaction,
            {"auto_answer_channel_id": target},
            "Auto-answer off." if target is None else "Auto-answer saved.",
        )

    @config.command(name="retention")
    @config_admin_check()
    @app_commands.describe(
        days=f"Days to keep questions and votes ({gs.RETENTION_MIN_DAYS}-{gs.RETENTION_MAX_DAYS})"
    )
    async def config_retention(self, interaction: discord.Interaction, days: int) -> None:
        """How long questions (with who asked them) and votes are kept."""
        if not gs.RETENTION_MIN_DAYS <= days <= gs.RETENTION_MAX_DAYS:
            raise InputError(
                f"Retention must be {gs.RETENTION_MIN_DAYS} to {gs.RETENTION_MAX_DAYS} days, not {days:,}."
            )
        await self._save(
            interaction, {"retention_days": days}, "Retention saved; older questions are deleted now."
        )
        await purge_expired(self.bot)

    @config.command(name="answers")
    @config_admin_check()
    @app_commands.describe(visibility="public: everyone sees answers; private: only the asker (/ask, menu)")
    async def config_answers(
        self, interaction: discord.Interaction, visibility: Literal["public", "private"]
    ) -> None:
        """Post /ask answers publicly, or only to the asker."""
        await self._save(
            interaction, {"private_answers": visibility == "private"}, "Answer visibility saved."
        )


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, QuoteBot)
    await bot.add_cog(ConfigCog(bot))
