"""Settings from config.toml and the environment, validated once at start-up and passed down.

Secrets never live in the TOML file: the Discord token comes only from `DISCORD_TOKEN`.
Environment overrides: QUOTEBOT_DATA (data_dir), QUOTEBOT_DATABASE_URL (database_url),
QUOTEBOT_MODEL (model), QUOTEBOT_SHARD_ID and QUOTEBOT_SHARD_COUNT (bot.shard_id, bot.shard_count).
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from index.errors import InputError
from index.ingest.fetch import FetchPolicy
from index.library import LibrarySettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IndexConfig(_Section):
    """[index]: storage, model and retrieval."""

    data_dir: Path = Path("quotebot-data")
    database_url: str = ""  # empty = SQLite file in data_dir
    model: str = "all-MiniLM-L6-v2"
    batch_size: int = Field(default=64, ge=1, le=1024)
    passage_sentences: int = Field(default=4, ge=1, le=32)
    passage_overlap: int = Field(default=1, ge=0, le=31)
    dense_k: int = Field(default=40, ge=1, le=1000)
    lexical_k: int = Field(default=40, ge=0, le=1000)
    passage_k: int = Field(default=8, ge=1, le=200)
    ivf_threshold: int = Field(default=50_000, ge=1000)
    nprobe: int = Field(default=64, ge=1, le=4096)  # recall@10 0.965 on real MiniLM vectors (bench real)
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    may_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    reader: bool = True
    reader_cache_sentences: int = Field(default=20_000, ge=0)
    max_loaded_collections: int = Field(default=0, ge=0)  # guild indexes kept in memory; 0 = no limit

    @field_validator("data_dir")
    @classmethod
    def _a_folder(cls, value: Path) -> Path:
        # The data directory is created on first use: whatever part of it exists must be a folder.
        for part in (value, *value.parents):
            if part.exists():
                if not part.is_dir():
                    raise ValueError(f"{part} is a file, not a directory")
                break
        return value


class LimitsConfig(_Section):
    """[limits]: what users may send."""

    max_article_bytes: int = Field(default=20_000_000, ge=1000)
    max_question_chars: int = Field(default=2000, ge=10)
    max_articles: int = Field(default=100_000, ge=1)


class FetchConfig(_Section):
    """[fetch]: the guarded URL fetcher for /articles add url:."""

    max_bytes: int = Field(default=10_000_000, ge=1000)
    timeout_s: float = Field(default=15.0, gt=0, le=300)
    max_redirects: int = Field(default=5, ge=0, le=20)
    allow_networks: list[str] = []  # e.g. ["127.0.0.0/8"] in tests only; never in production

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)  # as index.ingest.fetch reads them
            except ValueError as e:
                raise ValueError(f"{network!r} is not an IP network (e.g. 127.0.0.0/8)") from e
        return value


class IngestConfig(_Section):
    """[ingest]: bulk ingest and keeping web articles current."""

    max_bulk_urls: int = Field(default=1000, ge=1, le=100_000)  # pages one sitemap or feed may add
    refresh_hours: float = Field(default=0.0, ge=0, le=24 * 365)  # the bot re-fetches web articles; 0 = off


class BotConfig(_Section):
    """[bot]: the Discord side."""

    dev_guild_id: int | None = None  # sync commands to this guild instantly; global sync otherwise
    moderator_role: str = ""  # role name that may curate articles besides Manage Messages
    admin_role: str = ""  # role name that may reindex besides Administrator
    mention_questions: bool = True  # answer "@quotebot question" (needs the message content intent)
    ask_cooldown_s: float = Field(default=10.0, ge=0)
    ask_cooldown_rate: int = Field(default=3, ge=1)
    workers: int = Field(default=1, ge=1, le=8)  # threads of the ask lane (at least 2 run; see bot.lanes)
    articles_per_page: int = Field(default=10, ge=1, le=25)
    log_questions: bool = True
    # Defaults for servers that have not set their own with /config:
    question_retention_days: int = Field(default=90, ge=1, le=3650)  # questions and votes kept this long
    private_answers: bool = False  # /ask answers only the asker sees (ephemeral)
    # Scale-out: run one process per shard, each with shard_id 0..shard_count-1 (a guild's events go to
    # shard (guild_id >> 22) % shard_count). Unset = one process receives every guild.
    # A process may also serve several shards: shard_ids = [0, 1] (with shard_count).
    shard_count: int | None = Field(default=None, ge=1)
    shard_id: int | None = Field(default=None, ge=0)
    shard_ids: list[int] | None = None

    @model_validator(mode="after")
    def _shard_pair(self) -> BotConfig:
        if self.shard_id is not None and self.shard_ids is not None:
            raise ValueError("set shard_id or shard_ids, not both")
        ids = self.shard_id_list
        if (self.shard_count is None) != (ids is None):
            raise ValueError("set both shard_id (or shard_ids) and shard_count, or neither")
        count = self.shard_count
        if (
            count is not None
            and ids is not None
            and (not ids or any(i < 0 or i >= count for i in ids) or len(set(ids)) != len(ids))
        ):
            raise ValueError(f"shard_id must be below shard_count ({count}), each once")
        return self

    @property
    def shard_id_list(self) -> list[int] | None:
        """The shards this process serves (None: unsharded)."""
        return [self.shard_id] if self.shard_id is not None else self.shard_ids


class MetricsConfig(_Section):
    """[metrics]: the optional Prometheus endpoint of `quotebot run` (bot/metrics.py)."""

    port: int = Field(default=0, ge=0, le=65535)  # 0 = off
    host: str = "127.0.0.1"  # the address it listens on; "0.0.0.0" for every interface

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.strip()
        if not value or any(c.isspace() or c in "/[]" for c in value):
            raise ValueError(f"{value!r} is not an address to listen on (e.g. 127.0.0.1 or 0.0.0.0)")
        return value


class Settings(_Section):
    """The whole configuration."""

    index: IndexConfig = Field(default_factory=IndexConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    fetch: FetchConfig = Field(default_factory=FetchConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    bot: BotConfig = Field(default_factory=BotConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)

    def library_settings(self) -> LibrarySettings:
        ix, lim, f = self.index, self.limits, self.fetch
        return LibrarySettings(
            data_dir=ix.data_dir,
            database_url=ix.database_url or None,
            model=ix.model,
            batch_size=ix.batch_size,
            passage_sentences=ix.passage_sentences,
            passage_overlap=min(ix.passage_overlap, ix.passage_sentences - 1),
            dense_k=ix.dense_k,
            lexical_k=ix.lexical_k,
            passage_k=ix.passage_k,
            ivf_threshold=ix.ivf_threshold,
            nprobe=ix.nprobe,
            threshold=ix.threshold,
            may_threshold=ix.may_threshold,
            reader=ix.reader,
            reader_cache_sentences=ix.reader_cache_sentences,
            max_loaded_collections=ix.max_loaded_collections,
            max_article_bytes=lim.max_article_bytes,
            max_question_chars=lim.max_question_chars,
            max_articles=lim.max_articles,
            max_bulk_urls=self.ingest.max_bulk_urls,
            fetch=FetchPolicy(
                max_bytes=f.max_bytes,
                timeout_s=f.timeout_s,
                max_redirects=f.max_redirects,
                allow_networks=tuple(f.allow_networks),
            ),
        )


SECTIONS = ("index", "limits", "fetch", "bot", "metrics")
# A Discord bot token: base64url user id, a dot, a 6-character timestamp, a dot, a 27+ character HMAC.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{23,}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}")


def _looks_like_token(value: object) -> bool:
    if isinstance(value, dict):
        return any(_looks_like_token(v) for v in value.values())
    if isinstance(value, list):
        return any(_looks_like_token(v) for v in value)
    return isinstance(value, str) and _TOKEN.search(value) is not None


def _holds_token(raw: dict[str, object]) -> bool:
    """A [bot] key named like a token (`token`, `discord_token`), or a value anywhere that looks like
    one. Ordinary words ("Token Keepers" as a role name) are not tokens."""
    bot = raw.get("bot")
    return (isinstance(bot, dict) and any("token" in str(k).lower() for k in bot)) or _looks_like_token(raw)


def _read_toml(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise InputError(f"Config file not found: {path}") from e
    except IsADirectoryError as e:
        raise InputError(f"Config file {path} is a directory, not a TOML file.") from e
    except OSError as e:
        raise InputError(f"Cannot read config file {path}: {e.strerror or e}") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path} is not valid TOML: {e}") from e


def load_settings(
    path: Path | None = None, *, data_dir: Path | None = None, env: dict[str, str] | None = None
) -> Settings:
    """Read `path` (or ./config.toml when present), apply environment overrides, validate."""
    env = dict(os.environ) if env is None else env
    raw: dict[str, object] = {}
    if path is None and Path("config.toml").exists():
        path = Path("config.toml")
    if path is not None:
        raw = _read_toml(path)
    if _holds_token(raw):
        raise InputError("Do not put the Discord token in the config file; set DISCORD_TOKEN instead.")
    for name in SECTIONS:
        section = raw.get(name, {})
        if not isinstance(section, dict):
            raise InputError(
                f"Invalid setting {name}: must be a table ([{name}] section), not {type(section).__name__}"
            )
    index = dict(raw.get("index", {}))  # type: ignore[call-overload]
    if env.get("QUOTEBOT_DATA"):
        index["data_dir"] = env["QUOTEBOT_DATA"]
    if env.get("QUOTEBOT_DATABASE_URL"):
        index["database_url"] = env["QUOTEBOT_DATABASE_URL"]
    if env.get("QUOTEBOT_MODEL"):
        index["model"] = env["QUOTEBOT_MODEL"]
    if data_dir is not None:
        index["data_dir"] = str(data_dir)
    raw["index"] = index
    bot = dict(raw.get("bot", {}))  # type: ignore[call-overload]
    for key in ("shard_id", "shard_count"):
        if env.get(f"QUOTEBOT_{key.upper()}"):
            bot[key] = env[f"QUOTEBOT_{key.upper()}"]
    raw["bot"] = bot
    try:
        return Settings.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        msg = first["msg"]
        if first["type"] == "value_error" and "error" in first.get("ctx", {}):
            msg = str(first["ctx"]["error"])  # our own validators' words, without "Value error, "
        raise InputError(f"Invalid setting {where}: {msg}") from e
