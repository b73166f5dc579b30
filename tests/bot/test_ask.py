"""Asking end to end through discord.py's real dispatch with a real Library (fake embedder):
/ask, declines, option parsing, cooldown, DMs, persistent buttons (across a restart), guild
isolation, "@quotebot question" and the "Ask quotebot" message menu."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bot.config import Settings
from tests.bot.conftest import (
    APP_ID,
    BOT_USER_ID,
    CHANNEL_A,
    GUILD_A,
    GUILD_B,
    MEMBER,
    MODERATOR,
    Harness,
    Recorder,
    custom_ids,
    make_settings,
    message_payload,
    running_bot,
    snowflake,
)
from tests.conftest import sample_docs

MOON = "The Moon orbits the Earth once every 27.3 days."
MOON_Q = "How often does the Moon orbit the Earth?"


def user_message(
    content: str,
    *,
    author: int = MEMBER,
    guild_id: int | None = GUILD_A,
    bot: bool = False,
    mentions: list[int] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    return message_payload(content, author=author, guild_id=guild_id, bot=bot, mentions=list(mentions))


async def test_commands_synced_to_the_dev_guild(harness: Harness) -> None:
    syncs = [c for c in harness.rec.calls if c.method == "PUT" and c.path.endswith("/commands")]
    assert [c.path for c in syncs] == [f"/applications/{APP_ID}/guilds/{GUILD_A}/commands"]
    names = {c["name"] for c in syncs[0].json}
    assert {"ask", "articles", "unanswered", "reindex", "stats", "Ask quotebot"} <= names
    assert all(c.get("contexts") == [0] for c in syncs[0].json)  # guild-only everywhere


async def test_ask_answers_with_a_block_quote(harness: Harness) -> None:
    harness.library.add_documents(str(GUILD_A), sample_docs())
    calls = await harness.slash("ask", {"question": MOON_Q})
    assert calls[0].path.endswith("/callback") and calls[0].json["type"] == 5  # deferred, thinking
    follow = calls[-1]
    assert follow.method == "POST" and follow.path.startswith(f"/webhooks/{APP_ID}/")
    assert f"> {MOON}" in follow.content
    assert "confidence (" in follow.content
    assert "https://example.org/space#:~:text=" in follow.content
    assert follow.json["allowed_mentions"]["parse"] == []
    assert not follow.ephemeral
    qid = harness.library.unanswered  # the question was logged with the asker
    q = harness.library.question(str(GUILD_A), int(custom_ids(follow)[0].split(":")[2]))
    assert q.text == MOON_Q and q.user_id == str(MEMBER) and q.answered
    assert qid is not None


async def test_ask_declines_in_one_line(harness: Harness) -> None:
    harness.library.add_documents(str(GUILD_A), sample_docs())
    calls = await harness.slash("ask", {"question": "What is the capital of Peru?"})
    content = calls[-1].content
    # The question is echoed (other members cannot see a slash command's options), then the decline;
    # possibly related passages are only behind "More sources" (test_conversation).
    assert content == "**Q:** What is the capital of Peru?\nI couldn't find that in the articles."
    assert calls[-1].json["allowed_mentions"]["parse"] == []


async def test_option_parsing_and_limits(harness: Harness) -> None:
    harness.library.add_documents(str(GUILD_A), sample_docs())
    # Whitespace and odd spacing arrive intact and are normalised by the library.
    calls = await harness.slash("ask", {"question": "  How often does the   Moon orbit the Earth?  "})
    assert f"> {MOON}" in calls[-1].content
    # A question longer than the library's limit: a clear ephemeral message, not a crash.
    calls = await harness.slash("ask", {"question": "why " * 600}, user_id=MODERATOR)
    assert calls[-1].ephemeral and "please keep it under" in calls[-1].content


async def test_cooldown_refuses_the_fourth_ask(harness: Harness) -> None:
    harness.library.add_documents(str(GUILD_A), sample_docs())
    for _ in range(3):
        calls = await harness.slash("ask", {"question": MOON_Q})
        assert calls[0].json["type"] == 5
    calls = await harness.slash("ask", {"question": MOON_Q})
    assert len(calls) == 1 and calls[0].json["type"] == 4 and calls[0].ephemeral
    assert "try again in" in calls[0].content
    # Another member, or the same member in another guild, is not slowed down.
    calls = await harness.slash("ask", {"question": MOON_Q}, user_id=MODERATOR)
    assert calls[0].json["type"] == 5
    calls = await harness.slash("ask", {"question": MOON_Q}, guild_id=GUILD_B)
    assert calls[0].json["type"] == 5


async def test_dm_is_refused(harness: Harness) -> None:
    calls = await harness.slash("ask", {"question": MOON_Q}, guild_id=None)
    assert len(calls) == 1 and calls[0].ephemeral and "only works in servers" in calls[0].content


async def test_guilds_never_see_each_others_articles(harness: Harness) -> None:
    harness.library.add_documents(str(GUILD_A), sample_docs())
    a = await harness.slash("ask", {"question": MOON_Q}, guild_id=GUILD_A)
    b = await harness.slash("ask", {"question": MOON_Q}, guild_id=GUILD_B)
    assert MOON in a[-1].content
    assert b[-1].content == f"**Q:** {MOON_Q}\nI couldn't find that in the articles."
    # Guild B cannot vote on (or read) guild A's question through a forged button.
    qid = custom_ids(a[-1])[0].split(":")[2]
    calls = await harness.click(f"qb:more:{qid}", 1, guild_id=GUILD_B)
    assert calls[-1].ephemeral and "no longer on record" in calls[-1].content
    assert "Moon" not in "".join(c.content for c in calls)


async def test_buttons_record_feedback_and_survive_a_restart(
    harness: Harness, data_dir: Path, no_webhook_network: list[Recorder]
) -> None:
    harness.library.add_documents(str(GUILD_A), sample_docs())
    follow = (await harness.slash("ask", {"question": MOON_Q}))[-1]
    ids = custom_ids(follow)
    qid = int(ids[0].split(":")[2])
    assert ids == [f"qb:more:{qid}", f"qb:fb:{qid}:1", f"qb:fb:{qid}:0"]
    message_id = next(m for m, msg in harness.rec.messages.items() if msg["components"])

    calls = await harness.click(f"qb:fb:{qid}:0", message_id, user_id=MODERATOR)
    assert calls[0].json["type"] == 5 and calls[0].ephemeral
    assert "moderators will see" in calls[-1].content
    rows = harness.library.unanswered(str(GUILD_A))
    assert [(q.id, votes) for q, votes in rows] == [(qid, 1)]

    calls = await harness.click(f"qb:more:{qid}", message_id)
    embed = calls[-1].json["embeds"][0]
    assert calls[-1].ephemeral and embed["title"].startswith("More sources for")
    assert 1 <= len(embed["fields"]) <= 25

    # "Restart": a new bot and library on the same data directory handle the old buttons.
    await harness.bot.close()
    async with running_bot(make_settings(data_dir), no_webhook_network, errors=harness.errors) as h2:
        h2.rec.messages[message_id] = harness.rec.messages[message_id]  # the message Discord still shows
        calls = await h2.click(f"qb:fb:{qid}:1", message_id, user_id=MODERATOR)
        assert "noted as helpful" in calls[-1].content
        assert h2.library.unanswered(str(GUILD_A)) == []  # the vote changed: no longer "not helpful"
        calls = await h2.click(f"qb:more:{qid}", message_id)
        assert calls[-1].json["embeds"][0]["fields"]


async def test_ask_by_mention(harness: Harness) -> None:
    harness.library.add_documents(str(GUILD_A), sample_docs())
    n = len(harness.rec.calls)
    harness.state.parse_message_create(user_message(f"<@{BOT_USER_ID}> {MOON_Q}", mentions=[BOT_USER_ID]))
    await harness.settle()
    sent = [c for c in harness.rec.since(n) if c.path == f"/channels/{CHANNEL_A}/messages"]
    assert len(sent) == 1
    assert f"> {MOON}" in sent[0].content
    assert sent[0].json["allowed_mentions"] == {"parse": [], "replied_user": False}
    assert sent[0].json["message_reference"]["channel_id"] == CHANNEL_A or sent[0].json["message_reference"]
    assert re.search(r"qb:fb:\d+:1", str(sent[0].json["components"]))

    # Bots, DMs and messages that do not mention the bot are ignored.
    n = len(harness.rec.calls)
    harness.state.parse_message_create(
        user_message(f"<@{BOT_USER_ID}> {MOON_Q}", bot=True, author=snowflake(), mentions=[BOT_USER_ID])
    )
    harness.state.parse_message_create(user_message(MOON_Q))
    await harness.settle()
    assert harness.rec.since(n) == []


async def test_ask_quotebot_message_menu(harness: Harness) -> None:
    harness.library.add_documents(str(GUILD_A), sample_docs())
    target = user_message(MOON_Q)
    data = {
        "id": str(snowflake()),
        "name": "Ask quotebot",
        "type": 3,
        "target_id": target["id"],
        "resolved": {"messages": {target["id"]: target}},
    }
    calls = await harness.call(harness.payload(2, data))
    assert calls[0].json["type"] == 5
    assert f"> {MOON}" in calls[-1].content
    assert calls[-1].json["allowed_mentions"]["parse"] == []


async def test_mention_questions_off_means_no_message_intent(data_dir: Path) -> None:
    from bot.client import intents_for

    on = intents_for(make_settings(data_dir).bot)
    off = intents_for(make_settings(data_dir, mention_questions=False).bot)
    assert on.guilds and on.guild_messages and on.message_content and not on.members
    assert off.guilds and not off.guild_messages and not off.message_content
    assert isinstance(make_settings(data_dir), Settings)
