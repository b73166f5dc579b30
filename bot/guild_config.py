"""A server's effective settings: its /config row (index.storage.guild_settings) over config.toml's defaults.

Every guild's row is read once when the bot starts (a small table) and kept in memory, so permission
checks and channel rules never touch the database on the event loop; /config writes through
(`GuildConfigs.update`, in the executor) and replaces the cached entry. A guild's events always reach
the same process (sharding routes by guild id), so no other process changes what this one caches.

`purge_expired` applies every server's retention period (on start, daily, and after /config retention).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import discord

from bot.config import Settings
from index.errors import QuotebotError
from index.storage import guild_settings as gs
from index.storage.store import Store
from index.types import Answer

log = logging.getLogger("quotebot.admin")


@dataclass(frozen=True)
class GuildConfig:
    """What applies in one server. Role and channel id lists: None = not set (defaults apply)."""

    threshold: float | None = None  # None: the Library's own threshold
    may_threshold: float | None = None
    moderator_role_ids: tuple[int, ...] | None = None  # None: [bot] moderator_role, by name
    admin_role_ids: tuple[int, ...] | None = None  # None: [bot] admin_role, by name
    answer_channel_ids: tuple[int, ...] | None = None  # None: every channel
    auto_answer_channel_id: int | None = None
    retention_days: int = 90
    private_answers: bool = False

    @property
    def custom_thresholds(self) -> bool:
        return self.threshold is not None or self.may_threshold is not None

    def answers_in(self, channel_id: int | None, parent_id: int | None = None) -> bool:
        """Whether questions are answered in this channel (a thread counts as its parent channel)."""
        if self.answer_channel_ids is None:
            return True
        return channel_id in self.answer_channel_ids or (
            parent_id is not None and parent_id in self.answer_channel_ids
        )


def resolve(row: gs.GuildSettings | None, settings: Settings) -> GuildConfig:
    bot = settings.bot
    if row is None:
        return GuildConfig(retention_days=bot.question_retention_days, private_answers=bot.private_answers)
    return GuildConfig(
        threshold=row.threshold,
        may_threshold=row.may_threshold,
        moderator_role_ids=gs.decode_ids(row.moderator_role_ids),
        admin_role_ids=gs.decode_ids(row.admin_role_ids),
        answer_channel_ids=gs.decode_ids(row.answer_channel_ids),
        auto_answer_channel_id=row.auto_answer_channel_id,
        retention_days=row.retention_days if row.retention_days is not None else bot.question_retention_days,
        private_answers=row.private_answers if row.private_answers is not None else bot.private_answers,
    )


class GuildConfigs:
    """The in-memory view of every guild's settings; `load` and `update` run in the executor."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._by_guild: dict[int, GuildConfig] = {}
        self._lock = threading.Lock()

    def load(self) -> None:
        rows = gs.all_settings(self.store)
        with self._lock:
            self._by_guild = {int(r.collection): resolve(r, self.settings) for r in rows}

    def get(self, guild_id: int | None) -> GuildConfig:
        cfg = self._by_guild.get(guild_id) if guild_id is not None else None
        return cfg if cfg is not None else resolve(None, self.settings)

    def update(self, guild_id: int, changes: Mapping[str, Any], updated_by: str | None) -> GuildConfig:
        row = gs.update_settings(self.store, str(guild_id), changes, updated_by=updated_by)
        cfg = resolve(row, self.settings)
        with self._lock:
            self._by_guild[guild_id] = cfg
        return cfg


_CONFIGS: weakref.WeakKeyDictionary[discord.Client, GuildConfigs] = weakref.WeakKeyDictionary()


def configs(bot: Any) -> GuildConfigs:
    """The bot's GuildConfigs (created on first use; loaded by the admin cog on start)."""
    found = _CONFIGS.get(bot)
    if found is None:
        found = _CONFIGS[bot] = GuildConfigs(bot.library.store, bot.settings)
    return found


def guild_config(bot: Any, guild_id: int | None) -> GuildConfig:
    return configs(bot).get(guild_id)


def decide(answer: Answer, cfg: GuildConfig, threshold: float, may_threshold: float) -> Answer:
    """The server's own thresholds applied to the Library's answer, from its `confidence`: a quote,
    "this may answer it", or a decline. `threshold` / `may_threshold`: the Library's (the defaults).

    A decline that the server's lower thresholds turn into a quote quotes the Library's best
    candidate; an answer that its higher thresholds turn into a decline has no related passages
    (the Library only looks those up when it declines itself)."""
    if not cfg.custom_thresholds:
        return answer
    candidate = answer.quote or answer.best
    if candidate is None:
        return answer
    t = cfg.threshold if cfg.threshold is not None else threshold
    m = min(cfg.may_threshold if cfg.may_threshold is not None else may_threshold, t)
    answered = answer.confidence >= m
    return dataclasses.replace(
        answer,
        quote=candidate if answered else None,
        confident=answer.confidence >= t,
        related=[] if answered else answer.related,
    )


async def purge_expired(bot: Any) -> gs.Deleted | None:
    """Delete questions and votes older than each server's retention period (in the write lane)."""
    try:
        d: gs.Deleted = await bot.work(
            gs.purge_expired_questions,
            bot.library.store,
            bot.settings.bot.question_retention_days,
        )
    except QuotebotError as e:
        log.warning("retention purge failed: %s", e)
        return None
    if d.questions or d.feedback:
        log.info("retention purge: %d questions and %d votes deleted", d.questions, d.feedback)
    return d
