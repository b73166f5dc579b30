"""Settings from config.toml and the environment, validated once at start-up and passed down.

Every default and limit is declared once, in the section models: [index], [limits], [ingest] and
[fetch] in the library (index.settings, index.ingest.fetch.policy), [bot] and [metrics] here.
`Settings` gathers them, from these sources, highest first:

1. the explicit `data_dir=` argument of `load_settings` (the CLI's `--data`);
2. the environment: any key as `QUOTEBOT_<SECTION>__<KEY>` (e.g. `QUOTEBOT_INDEX__DENSE_K=60`,
   `QUOTEBOT_BOT__SHARD_ID=1`; lists as JSON, `QUOTEBOT_FETCH__ALLOW_NETWORKS='["127.0.0.0/8"]'`),
   then the older short names, kept as aliases: QUOTEBOT_DATA (index.data_dir),
   QUOTEBOT_DATABASE_URL (index.database_url), QUOTEBOT_MODEL (index.model), QUOTEBOT_SHARD_ID and
   QUOTEBOT_SHARD_COUNT (bot.shard_id, bot.shard_count). Empty variables are ignored;
3. the TOML file (the one given, or ./config.toml when present);
4. the defaults.

Secrets never live in the TOML file: the Discord token comes only from `DISCORD_TOKEN`
(`Settings.discord_token`, a SecretStr), and a file holding one is refused.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from index.errors import InputError
from index.ingest.fetch.policy import FetchPolicy
from index.settings import IndexSettings, IngestSettings, LibrarySettings, LimitsSettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class Settings(BaseSettings):
    """The whole configuration: one field per TOML section, plus the token from the environment.

    Built by `load_settings` (file + environment + `data_dir=`). Built directly, as tests do
    (`Settings(index=IndexSettings(...))`), it reads the environment but no file."""

    model_config = SettingsConfigDict(
        env_prefix="QUOTEBOT_",
        env_nested_delimiter="__",
        env_ignore_empty=True,
        case_sensitive=False,
        extra="forbid",
    )

    index: IndexSettings = Field(default_factory=IndexSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    fetch: FetchPolicy = Field(default_factory=FetchPolicy)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    bot: BotConfig = Field(default_factory=BotConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    discord_token: SecretStr | None = Field(default=None, validation_alias="DISCORD_TOKEN", repr=False)

    @field_validator("discord_token", mode="before")
    @classmethod
    def _token(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip() or None
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        given = _LOADING.get()
        env = _lower(os.environ if given is None else given.env)
        toml = {} if given is None else given.toml
        return (
            init_settings,
            _Environment(settings_cls, env),
            _Given(settings_cls, _aliases(env)),
            _Given(settings_cls, toml),
        )

    def library_settings(self) -> LibrarySettings:
        """The library's flat settings: the fields of every section LibrarySettings is made of
        ([index], [limits], [ingest]), and the sections it holds whole ([fetch])."""
        values: dict[str, Any] = {}
        for name in type(self).model_fields:
            section = getattr(self, name)
            if isinstance(section, BaseModel) and issubclass(LibrarySettings, type(section)):
                values.update({key: getattr(section, key) for key in type(section).model_fields})
            elif name in LibrarySettings.model_fields:
                values[name] = section
        return LibrarySettings.model_validate(values)


SECTIONS = tuple(name for name, f in Settings.model_fields.items() if f.validation_alias is None)
# The older environment names, each for one key (the QUOTEBOT_<SECTION>__<KEY> form wins over them).
ALIASES: dict[str, tuple[str, str]] = {
    "QUOTEBOT_DATA": ("index", "data_dir"),
    "QUOTEBOT_DATABASE_URL": ("index", "database_url"),
    "QUOTEBOT_MODEL": ("index", "model"),
    "QUOTEBOT_SHARD_ID": ("bot", "shard_id"),
    "QUOTEBOT_SHARD_COUNT": ("bot", "shard_count"),
}


@dataclass(frozen=True)
class _Loading:
    env: Mapping[str, str]
    toml: dict[str, Any]


# What `load_settings` hands to `settings_customise_sources` for the one Settings it builds.
_LOADING: ContextVar[_Loading | None] = ContextVar("quotebot_settings_loading", default=None)


def _lower(env: Mapping[str, str]) -> dict[str, str]:
    """Variable names as the settings sources match them (case-insensitively); empty values dropped."""
    return {k.lower(): v for k, v in env.items() if v != ""}


def _aliases(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, dict[str, str]] = {}
    for name, (section, key) in ALIASES.items():
        if (value := env.get(name.lower())) is not None:
            out.setdefault(section, {})[key] = value
    return out


class _Environment(EnvSettingsSource):
    """The environment source reading a given mapping (load_settings' `env=`) instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], env: dict[str, str]) -> None:
        self._given_env = env  # read by _load_env_vars, which the base __init__ calls
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self._given_env


class _Given(PydanticBaseSettingsSource):
    """Values already read (the TOML file, the aliases), as one settings source."""

    def __init__(self, settings_cls: type[BaseSettings], values: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self.values = values

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self.values


# A Discord bot token: base64url user id, a dot, a 6-character timestamp, a dot, a 27+ character HMAC.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{23,}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}")


def _looks_like_token(value: object) -> bool:
    if isinstance(value, dict):
        return any(_looks_like_token(v) for v in value.values())
    if isinstance(value, list):
        return any(_looks_like_token(v) for v in value)
    return isinstance(value, str) and _TOKEN.search(value) is not None


def _holds_token(raw: dict[str, object]) -> bool:
    """A top-level or [bot] key named like a token (`token`, `discord_token`), or a value anywhere
    that looks like one. Ordinary words ("Token Keepers" as a role name) are not tokens."""
    bot = raw.get("bot")
    keys = [*raw, *(bot if isinstance(bot, dict) else ())]
    return any("token" in str(k).lower() for k in keys) or _looks_like_token(raw)


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


@contextmanager
def _loading(env: Mapping[str, str], toml: dict[str, Any]) -> Iterator[None]:
    token = _LOADING.set(_Loading(env, toml))
    try:
        yield
    finally:
        _LOADING.reset(token)


def _origin(loc: tuple[int | str, ...], env: Mapping[str, str], data_dir: Path | None) -> str:
    """Where the bad value of `loc` came from, when that was the environment: " (from NAME)"."""
    if loc[:1] == ("discord_token",) or loc[:1] == ("DISCORD_TOKEN",):
        return " (from DISCORD_TOKEN)"
    if len(loc) < 2 or (data_dir is not None and loc[:2] == ("index", "data_dir")):
        return ""
    section, key = str(loc[0]), str(loc[1])
    names = [f"QUOTEBOT_{section}__{key}".upper()]
    names += [name for name, target in ALIASES.items() if target == (section, key)]
    names.append(f"QUOTEBOT_{section}".upper())
    lowered = _lower(env)
    return next((f" (from {n})" for n in names if n.lower() in lowered), "")


def _not_json(error: str, env: Mapping[str, str]) -> str:
    """One line for the settings sources' "error parsing value for field ..." (a list or a whole
    section given as something other than JSON)."""
    found = re.search(r'field "(\w+)"', error)
    section = found.group(1) if found else ""
    for name, value in _lower(env).items():
        if name == f"quotebot_{section}" or name.startswith(f"quotebot_{section}__"):
            try:
                json.loads(value)
            except ValueError:
                where = name.removeprefix("quotebot_").replace("__", ".")
                return f"Invalid setting {where}: {name.upper()} must be JSON, e.g. '[\"127.0.0.0/8\"]' for a list"
    return f"Invalid setting {section or 'from the environment'}: {error}"


def load_settings(
    path: Path | None = None, *, data_dir: Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read `path` (or ./config.toml when present), apply environment overrides (`env`, default
    os.environ) and `data_dir`, validate. Any problem is one InputError line."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
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
    given: dict[str, Any] = {} if data_dir is None else {"index": {"data_dir": str(data_dir)}}
    try:
        with _loading(env, raw):
            return Settings(**given)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        msg = first["msg"]
        if first["type"] == "value_error" and "error" in first.get("ctx", {}):
            msg = str(first["ctx"]["error"])  # our own validators' words, without "Value error, "
        raise InputError(f"Invalid setting {where}: {msg}{_origin(first['loc'], env, data_dir)}") from e
    except ValueError as e:  # SettingsError (not exported at the top by every version >= 2.2): an
        # environment value that is not JSON where a list or a whole section is expected
        raise InputError(_not_json(str(e), env)) from e
