"""One settings model owns every default: config.example.toml checked against it, the environment
overrides (QUOTEBOT_<SECTION>__<KEY> and the older short names), their precedence, the one-line
errors, the token kept out of the file, and LibrarySettings agreeing with the sections."""

from __future__ import annotations

import contextlib
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from bot.config import ALIASES, SECTIONS, Settings, load_settings
from index.errors import InputError
from index.ingest.fetch import FetchPolicy
from index.settings import IndexSettings, IngestSettings, LibrarySettings, LimitsSettings

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config.example.toml"
LIBRARY_ONLY = {"exhaustive_limit"}  # set by code, no TOML key
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GAbCdE.abcdefghijklmnopqrstuvwxyz0123"  # the shape, not a real one


def section_models() -> dict[str, type[BaseModel]]:
    out: dict[str, type[BaseModel]] = {}
    for name in SECTIONS:
        model = Settings.model_fields[name].annotation
        assert isinstance(model, type) and issubclass(model, BaseModel), name
        out[name] = model
    return out


def example_keys() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(keys set, keys shown commented out as `# key = value`) per section of the example."""
    shown = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    commented: dict[str, dict[str, Any]] = {}
    section = ""
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            section = line.strip("[] ")
        elif line.startswith("#") and section:
            with contextlib.suppress(tomllib.TOMLDecodeError):  # prose is no key
                commented.setdefault(section, {}).update(tomllib.loads(line.lstrip("# ")))
    return shown, commented


def load(tmp_path: Path, toml: str | None = None, **kw: Any) -> Settings:
    path = None
    if toml is not None:
        path = tmp_path / "config.toml"
        path.write_text(toml, encoding="utf-8")
    kw.setdefault("env", {})
    return load_settings(path, **kw)


@pytest.fixture(autouse=True)
def _no_config_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config.toml unless a test writes one


# -- config.example.toml against the model ---------------------------------------------------------


def test_the_example_has_every_section_and_nothing_else() -> None:
    shown, commented = example_keys()
    assert set(shown) == set(SECTIONS)
    assert set(commented) <= set(SECTIONS)


@pytest.mark.parametrize("section", SECTIONS)
def test_the_example_documents_every_key_of_the_section(section: str) -> None:
    shown, commented = example_keys()
    model = section_models()[section]
    keys = set(shown[section]) | set(commented.get(section, {}))
    assert keys - set(model.model_fields) == set(), "keys in the example that are no setting"
    assert set(model.model_fields) - keys == set(), "settings missing from the example"
    assert not set(shown[section]) & set(commented.get(section, {})), "a key both set and commented out"


@pytest.mark.parametrize("section", SECTIONS)
def test_the_example_shows_the_defaults(section: str) -> None:
    shown, commented = example_keys()
    model = section_models()[section]
    default = model()
    for key, value in shown[section].items():
        # Read through the model, so "quotebot-data" means Path("quotebot-data") and [] means ().
        assert getattr(model.model_validate({key: value}), key) == getattr(default, key), f"{section}.{key}"
    for key in commented.get(section, {}):
        assert getattr(default, key) is None, f"{section}.{key} is commented out, so it must default to unset"


def test_the_example_loads_as_the_defaults() -> None:
    assert load_settings(EXAMPLE, env={}).model_dump() == load_settings(None, env={}).model_dump()


# -- one model: sections and LibrarySettings agree --------------------------------------------------


def test_no_key_is_in_two_sections() -> None:
    seen: dict[str, str] = {}
    for section, model in section_models().items():
        for key in model.model_fields:
            assert key not in seen, f"{key} is in [{seen[key]}] and [{section}]"
            seen[key] = section
    assert not LIBRARY_ONLY & set(seen)


def test_library_settings_is_the_sections_flat() -> None:
    flat = (
        set(IndexSettings.model_fields) | set(LimitsSettings.model_fields) | set(IngestSettings.model_fields)
    )
    assert set(LibrarySettings.model_fields) == flat | {"fetch"} | LIBRARY_ONLY
    assert LibrarySettings.model_fields["fetch"].annotation is FetchPolicy


def test_library_settings_defaults_equal_the_section_defaults() -> None:
    assert load_settings(None, env={}).library_settings().model_dump() == LibrarySettings().model_dump()
    lib = LibrarySettings()
    for model in (IndexSettings, LimitsSettings, IngestSettings):
        for key, value in model().model_dump().items():
            assert getattr(lib, key) == value, key
    assert lib.fetch == FetchPolicy()


def test_library_settings_carry_every_section_value(tmp_path: Path) -> None:
    toml = (
        "[index]\ndense_k = 7\nnprobe = 8\nthreshold = 0.4\n"
        "[limits]\nmax_articles = 9\n"
        '[fetch]\ntimeout_s = 2.5\nallow_networks = ["127.0.0.0/8"]\n'
        "[ingest]\nmax_bulk_urls = 11\nrefresh_hours = 3\n"
    )
    ls = load(tmp_path, toml, data_dir=tmp_path / "d").library_settings()
    assert (ls.dense_k, ls.nprobe, ls.threshold, ls.max_articles, ls.max_bulk_urls) == (7, 8, 0.4, 9, 11)
    assert ls.fetch == FetchPolicy(timeout_s=2.5, allow_networks=("127.0.0.0/8",))
    assert ls.data_dir == tmp_path / "d" and ls.index_dir == tmp_path / "d" / "index"
    assert ls.db_url == f"sqlite:///{(tmp_path / 'd').resolve() / 'quotebot.db'}"


def test_library_settings_stay_mutable_and_fetch_policy_frozen() -> None:
    ls = LibrarySettings()
    ls.threshold = 0.5  # tests move thresholds on a live library
    assert ls.threshold == 0.5
    with pytest.raises(ValidationError):
        ls.fetch.timeout_s = 1.0  # type: ignore[misc]
    assert ls.model_copy(update={"database_url": "sqlite:///x.db"}).db_url == "sqlite:///x.db"


def test_constraints_are_declared_once_and_hold_everywhere() -> None:
    with pytest.raises(ValidationError, match="not an IP network"):
        FetchPolicy(allow_networks=("nowhere",))
    with pytest.raises(ValidationError, match="User-Agent"):
        FetchPolicy(user_agent="quotebot\r\nX-Evil: 1")
    with pytest.raises(ValidationError, match="passage_overlap"):
        LibrarySettings(passage_sentences=2, passage_overlap=2)
    assert LibrarySettings(passage_sentences=1).passage_overlap == 0  # the default follows down
    assert LibrarySettings(database_url="").database_url is None


# -- the environment ------------------------------------------------------------------------------


def test_any_key_from_the_environment(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        env={
            "QUOTEBOT_INDEX__DENSE_K": "60",
            "QUOTEBOT_INDEX__THRESHOLD": "0.25",
            "QUOTEBOT_LIMITS__MAX_ARTICLES": "5",
            "QUOTEBOT_FETCH__ALLOW_NETWORKS": '["127.0.0.0/8"]',
            "QUOTEBOT_INGEST__REFRESH_HOURS": "6",
            "QUOTEBOT_BOT__SHARD_ID": "1",
            "QUOTEBOT_BOT__SHARD_COUNT": "2",
            "QUOTEBOT_BOT__MENTION_QUESTIONS": "false",
            "QUOTEBOT_METRICS__PORT": "9100",
        },
    )
    assert (s.index.dense_k, s.index.threshold, s.limits.max_articles) == (60, 0.25, 5)
    assert s.fetch.allow_networks == ("127.0.0.0/8",) and s.ingest.refresh_hours == 6
    assert (s.bot.shard_id, s.bot.shard_count, s.bot.mention_questions) == (1, 2, False)
    assert s.metrics.port == 9100
    assert s.library_settings().dense_k == 60


def test_environment_over_file_over_defaults(tmp_path: Path) -> None:
    toml = "[index]\ndense_k = 20\nlexical_k = 30\n"
    s = load(tmp_path, toml, env={"QUOTEBOT_INDEX__DENSE_K": "60"})
    assert (s.index.dense_k, s.index.lexical_k, s.index.passage_k) == (60, 30, 8)


def test_the_data_dir_argument_wins_over_everything(tmp_path: Path) -> None:
    toml = f'[index]\ndata_dir = "{tmp_path / "file"}"\n'
    env = {"QUOTEBOT_INDEX__DATA_DIR": str(tmp_path / "env"), "QUOTEBOT_DATA": str(tmp_path / "alias")}
    assert load(tmp_path, toml).index.data_dir == tmp_path / "file"
    assert (
        load(tmp_path, toml, env={"QUOTEBOT_DATA": str(tmp_path / "alias")}).index.data_dir
        == tmp_path / "alias"
    )
    assert load(tmp_path, toml, env=env).index.data_dir == tmp_path / "env"  # the full name over the alias
    assert load(tmp_path, toml, env=env, data_dir=tmp_path / "arg").index.data_dir == tmp_path / "arg"


@pytest.mark.parametrize(("name", "target"), sorted(ALIASES.items()))
def test_the_short_names_still_work(tmp_path: Path, name: str, target: tuple[str, str]) -> None:
    values = {
        "QUOTEBOT_DATA": str(tmp_path / "data"),
        "QUOTEBOT_DATABASE_URL": "sqlite:///elsewhere.db",
        "QUOTEBOT_MODEL": "fake-hash-64",
        "QUOTEBOT_SHARD_ID": "1",
        "QUOTEBOT_SHARD_COUNT": "3",
    }
    env = {name: values[name]}
    if target[0] == "bot":  # shard_id and shard_count come as a pair
        env = {"QUOTEBOT_SHARD_ID": "1", "QUOTEBOT_SHARD_COUNT": "3"}
    section, key = target
    got = getattr(getattr(load(tmp_path, "", env=env), section), key)
    assert str(got) == values[name]


def test_empty_variables_are_ignored(tmp_path: Path) -> None:
    s = load(
        tmp_path, "[index]\nmodel = 'from-file'\n", env={"QUOTEBOT_MODEL": "", "QUOTEBOT_INDEX__DENSE_K": ""}
    )
    assert (s.index.model, s.index.dense_k) == ("from-file", 40)


def test_env_replaces_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUOTEBOT_INDEX__DENSE_K", "99")
    assert load_settings(None, env={}).index.dense_k == 40
    assert load_settings(None).index.dense_k == 99


def test_config_toml_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[index]\ndense_k = 12\n", encoding="utf-8")
    assert load_settings(None, env={}).index.dense_k == 12


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"QUOTEBOT_INDEX__DENSE_K": "many"}, ["index.dense_k", "integer", "QUOTEBOT_INDEX__DENSE_K"]),
        ({"QUOTEBOT_INDEX__DENSE_K": "0"}, ["index.dense_k", "greater than or equal to 1"]),
        ({"QUOTEBOT_INDEX__DENS_K": "60"}, ["index.dens_k", "not permitted", "QUOTEBOT_INDEX__DENS_K"]),
        ({"QUOTEBOT_FETCH__ALLOW_NETWORKS": "127.0.0.0/8"}, ["fetch.allow_networks", "JSON"]),
        ({"QUOTEBOT_FETCH__ALLOW_NETWORKS": '["nowhere"]'}, ["fetch.allow_networks", "not an IP network"]),
        (
            {"QUOTEBOT_MODEL": ""} | {"QUOTEBOT_SHARD_ID": "5", "QUOTEBOT_SHARD_COUNT": "2"},
            ["below shard_count"],
        ),
        ({"QUOTEBOT_METRICS__PORT": "70000"}, ["metrics.port", "QUOTEBOT_METRICS__PORT"]),
    ],
)
def test_a_bad_environment_value_is_one_line(tmp_path: Path, env: dict[str, str], words: list[str]) -> None:
    with pytest.raises(InputError) as e:
        load(tmp_path, env=env)
    message = str(e.value)
    assert message.startswith("Invalid setting ") and "\n" not in message
    for word in words:
        assert word in message


def test_a_bad_file_value_is_one_line(tmp_path: Path) -> None:
    for toml, start in [
        ("[index]\ndense_k = 0\n", "Invalid setting index.dense_k: "),
        ("[index]\nbogus = 1\n", "Invalid setting index.bogus: "),
        ("bogus = 1\n", "Invalid setting bogus: "),
        ("ingest = 3\n", "Invalid setting ingest: must be a table"),
        ("[index]\npassage_sentences = 2\npassage_overlap = 2\n", "Invalid setting index: passage_overlap"),
    ]:
        with pytest.raises(InputError) as e:
            load(tmp_path, toml)
        assert str(e.value).startswith(start) and "\n" not in str(e.value), toml


# -- the token ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "toml",
    [
        '[bot]\ntoken = "x"\n',
        '[bot]\ndiscord_token = "x"\n',
        'discord_token = "x"\n',
        f'[bot]\nmoderator_role = "{TOKEN}"\n',
        f'[index]\nmodel = "{TOKEN}"\n',
    ],
)
def test_a_token_in_the_file_is_refused(tmp_path: Path, toml: str) -> None:
    with pytest.raises(
        InputError, match=r"^Do not put the Discord token in the config file; set DISCORD_TOKEN"
    ):
        load(tmp_path, toml)


def test_a_role_named_token_is_no_token(tmp_path: Path) -> None:
    assert load(tmp_path, '[bot]\nmoderator_role = "Token Keepers"\n').bot.moderator_role == "Token Keepers"


def test_the_token_comes_from_discord_token_as_a_secret(tmp_path: Path) -> None:
    s = load(tmp_path, env={"DISCORD_TOKEN": f"  {TOKEN}\n"})
    assert s.discord_token is not None and s.discord_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(s) and TOKEN not in str(s.model_dump())
    assert load(tmp_path, env={"DISCORD_TOKEN": " "}).discord_token is None
    assert load(tmp_path).discord_token is None
    assert load(tmp_path, env={"QUOTEBOT_DISCORD_TOKEN": TOKEN}).discord_token is None  # one name only
