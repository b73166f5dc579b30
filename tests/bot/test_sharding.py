"""Scale-out by sharding: one process per shard, configured by [bot] shard_id/shard_count or the
environment, validated at start-up and handed to discord.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.client import QuoteBot
from bot.config import load_settings
from index.errors import InputError
from index.library import Library


def settings_with(tmp_path: Path, toml: str = "", **env: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "config.toml"
    path.write_text(toml, encoding="utf-8")
    return load_settings(path, data_dir=tmp_path / "data", env=env)


def test_unsharded_by_default(tmp_path: Path, fake_library: Library) -> None:
    settings = settings_with(tmp_path)
    assert (settings.bot.shard_id, settings.bot.shard_count) == (None, None)
    bot = QuoteBot(settings, fake_library, sync_commands=False)
    try:
        assert (bot.shard_id, bot.shard_count) == (None, None)
    finally:
        bot.executor.shutdown()


def test_shard_from_config_and_environment(tmp_path: Path, fake_library: Library) -> None:
    settings = settings_with(tmp_path, "[bot]\nshard_count = 4\nshard_id = 1\n")
    assert (settings.bot.shard_id, settings.bot.shard_count) == (1, 4)
    settings = settings_with(tmp_path, "[bot]\nshard_count = 4\nshard_id = 1\n", QUOTEBOT_SHARD_ID="3")
    assert (settings.bot.shard_id, settings.bot.shard_count) == (3, 4)
    settings = settings_with(tmp_path, QUOTEBOT_SHARD_ID="0", QUOTEBOT_SHARD_COUNT="2")
    bot = QuoteBot(settings, fake_library, sync_commands=False)
    try:
        assert (bot.shard_ids, bot.shard_count) == ([0], 2)
    finally:
        bot.executor.shutdown()


def test_one_process_serves_several_shards(tmp_path: Path, fake_library: Library) -> None:
    settings = settings_with(tmp_path, "[bot]\nshard_count = 4\nshard_ids = [1, 3]\n")
    assert settings.bot.shard_id_list == [1, 3]
    bot = QuoteBot(settings, fake_library, sync_commands=False)
    try:
        assert (bot.shard_ids, bot.shard_count) == ([1, 3], 4)
    finally:
        bot.executor.shutdown()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[bot]\nshard_id = 0\n", "set both shard_id"),
        ("[bot]\nshard_count = 2\n", "set both shard_id"),
        ("[bot]\nshard_count = 2\nshard_id = 2\n", "below shard_count"),
        ("[bot]\nshard_count = 2\nshard_ids = [0, 2]\n", "below shard_count"),
        ("[bot]\nshard_count = 2\nshard_ids = [0, 0]\n", "each once"),
        ("[bot]\nshard_count = 2\nshard_id = 0\nshard_ids = [1]\n", "not both"),
        ("[bot]\nshard_count = 0\nshard_id = 0\n", "bot.shard_count"),
    ],
)
def test_bad_shard_settings_are_one_clear_error(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        settings_with(tmp_path, toml)
