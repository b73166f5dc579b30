"""/insights (moderators) and /help (everyone), both ephemeral, through discord.py's real dispatch; the
topic grouping of declined questions with the real model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from bot.cogs.insights import TOPIC_SIMILARITY
from index import insights as ins
from index.embedding import Embedder
from index.storage.models import Question
from tests.bot.conftest import (
    GUILD_A,
    GUILD_B,
    MANAGE_MESSAGES,
    MOD,
    MODERATOR,
    ROLE_CURATOR,
    Harness,
    snowflake,
)
from tests.conftest import sample_docs

MOON_Q = "How often does the Moon orbit the Earth?"
PASSWORDS = (
    "password reset how?",
    "I forgot my password, how can I reset it?",
    "How do I reset my password?",
)


def log(
    h: Harness, text: str, *, answered: bool, score: float, days_ago: float, article_id: int | None = None
) -> int:
    return h.library.store.log_question(
        Question(
            collection=str(GUILD_A),
            user_id=str(snowflake()),
            text=text,
            answered=answered,
            article_id=article_id,
            score=score,
            created_at=datetime.now(UTC) - timedelta(days=days_ago),
        )
    )


def fields(call: object) -> dict[str, str]:
    embed = call.json["embeds"][0]  # type: ignore[attr-defined]
    return {f["name"]: f["value"] for f in embed["fields"]}


async def test_insights_report_the_window(harness: Harness) -> None:
    h = harness
    h.library.add_documents(str(GUILD_A), sample_docs())
    space = next(a.id for a in h.library.articles(str(GUILD_A)) if a.title == "Planets and moons")
    # Asked through /ask (one asker each: the cooldown is per member): two quotes, four declines.
    quoted = []
    for q in (MOON_Q, "Which is the largest planet in the Solar System?"):
        follow = (await h.slash("ask", {"question": q}, user_id=snowflake()))[-1]
        assert "> " in follow.content
        quoted.append(int(follow.json["components"][0]["components"][0]["custom_id"].split(":")[2]))
    for q in (*PASSWORDS, "Who won the 1998 World Cup?"):
        follow = (await h.slash("ask", {"question": q}, user_id=snowflake()))[-1]
        assert follow.content.endswith("I couldn't find that in the articles."), follow.content
    # Votes: one helpful, two not helpful.
    h.library.record_feedback(str(GUILD_A), quoted[0], "1", True)
    h.library.record_feedback(str(GUILD_A), quoted[0], "2", False)
    h.library.record_feedback(str(GUILD_A), quoted[1], "3", False)
    # Older rows: a "may answer" 3 days ago (score under the confident threshold), and 20 days ago.
    log(h, "How long is the Moon's orbit?", answered=True, score=0.01, days_ago=3, article_id=space)
    log(h, "An old question nobody answered", answered=False, score=0.0, days_ago=20)

    calls = await h.slash("insights", **MOD)
    assert calls[0].ephemeral and calls[-1].ephemeral
    embed = calls[-1].json["embeds"][0]
    assert embed["title"] == "Questions in the last 7 days"
    assert embed["description"] == (
        '7 questions: 2 (29%) quoted, 1 (14%) "may answer", 4 (57%) declined.\nVotes: 1 helpful, 2 not helpful.'
    )
    got = fields(calls[-1])
    per_day = got["Per day"].strip("`\n").split("\n")
    assert len(per_day) == 7 and per_day[-1].split()[1] == "6" and per_day[-4].split()[1] == "1"
    assert got["Most-quoted articles"].startswith("1. Planets and moons — 3 times")
    topics = got["Top unanswered topics"].split("\n")
    assert topics[0].startswith("1. How do I reset my password? (×3) — also: ")
    assert topics[1] == "2. Who won the 1998 World Cup? (×1)"

    calls = await h.slash("insights", {"days": 30}, option_types={"days": 4}, **MOD)
    embed = calls[-1].json["embeds"][0]
    assert embed["title"] == "Questions in the last 30 days" and embed["description"].startswith(
        "8 questions"
    )
    assert len(fields(calls[-1])["Per day"].strip("`\n").split("\n")) == 30

    # Another server's numbers are its own.
    calls = await h.slash("insights", guild_id=GUILD_B, user_id=MODERATOR, permissions=MANAGE_MESSAGES)
    assert calls[-1].json["embeds"][0]["description"].startswith("0 questions")


async def test_insights_refuses_members_and_bad_days(harness: Harness) -> None:
    calls = await harness.slash("insights")
    assert len(calls) == 1 and calls[0].ephemeral and "Only moderators" in calls[0].content
    calls = await harness.slash("insights", {"days": 9}, option_types={"days": 4}, **MOD)
    assert len(calls) == 1 and calls[0].ephemeral and "7 or 30 days, not 9" in calls[0].content
    # The curator role (config.toml's moderator_role) may; the command is hidden from members.
    calls = await harness.slash("insights", user_id=MODERATOR, roles=[ROLE_CURATOR])
    assert calls[-1].json["embeds"][0]["description"].startswith("0 questions")
    synced = next(c for c in harness.rec.calls if c.method == "PUT" and c.path.endswith("/commands"))
    command = next(c for c in synced.json if c["name"] == "insights")
    assert int(command["default_member_permissions"]) == MANAGE_MESSAGES
    assert [c["value"] for c in command["options"][0]["choices"]] == [7, 30]


async def test_help_says_how_to_ask_what_is_indexed_and_who_adds(harness: Harness) -> None:
    calls = await harness.slash("help")
    assert len(calls) == 1 and calls[0].ephemeral
    assert "no articles yet" in calls[0].content
    harness.library.add_documents(str(GUILD_A), sample_docs())
    [call] = await harness.slash("help")
    text = call.content
    assert call.ephemeral and len(text) <= 2000
    assert "`/ask question:`" in text and "thread: True" in text and "Ask quotebot" in text
    assert "**What I've read:** 3 articles: " in text
    assert all(f"*{t}*" in text for t in ("Growing tomatoes", "Planets and moons", "Baking bread"))
    assert "**Who can add articles:** moderators (Manage Messages permission or the Curator role)" in text
    assert call.json["data"]["allowed_mentions"]["parse"] == []
    # Not in DMs.
    calls = await harness.slash("help", guild_id=None)
    assert calls[0].ephemeral and "only works in servers" in calls[0].content


def test_topics_group_paraphrases_with_the_real_model(real_embedder: Embedder) -> None:
    asked = [
        "How do I reset my password?",
        "How much does a ticket cost?",
        "I forgot my password, how can I reset it?",
        "Which city is Peru's capital?",
        "password reset how?",
        "What is the price of a ticket?",
        "What is the capital of Peru?",
        "Who won the 1998 World Cup?",
        "How do I reset my password?",
    ]
    vectors = np.asarray(real_embedder.encode(asked), dtype=np.float32)
    topics = ins.group_topics(asked, vectors, similarity=TOPIC_SIMILARITY, limit=3)
    assert [(t.example, t.count) for t in topics] == [
        ("How do I reset my password?", 4),
        ("How much does a ticket cost?", 2),
        ("Which city is Peru's capital?", 2),
    ]
    assert topics[0].others == ["I forgot my password, how can I reset it?", "password reset how?"]
