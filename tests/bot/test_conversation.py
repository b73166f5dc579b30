"""The conversation through discord.py's real dispatch: what an answer shows, the one-line decline with
its passages behind "More sources" (to the clicker only), and follow-ups in a thread answered with the
thread's earlier answer as context (the real model, on the sample article and a distractor)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import BotConfig, Settings
from index.embedding import Embedder
from index.library import Library
from index.settings import IndexSettings
from tests.bot.conftest import (
    APP_ID,
    BOT_USER_ID,
    CHANNEL_A,
    GUILD_A,
    Harness,
    Recorder,
    assert_clean,
    custom_ids,
    message_payload,
    running_bot,
    snowflake,
    thread_payload,
)
from tests.conftest import EXAMPLE_ARTICLE, sample_docs

MOON_Q = "How often does the Moon orbit the Earth?"
SPOKESMAN_Q = "Who is the National Security Council spokesman?"
SHIPMENTS_Q = "What did he say about the shipments?"
KIRBY_SHIPMENTS = "We’re still monitoring this to determine whether the shipments are actually received."
PORT = (
    "The harbour master said the grain shipments would resume next week. "
    "He said the shipments had been delayed by storms. "
    "The port handles most of the country's wheat exports."
)


def in_channel(payload: dict[str, Any], channel: dict[str, Any]) -> dict[str, Any]:
    payload["channel"], payload["channel_id"] = channel, channel["id"]
    return payload


def mention(content: str, channel_id: int) -> dict[str, Any]:
    return message_payload(f"<@{BOT_USER_ID}> {content}", channel_id)


# -- what an answer and a decline show (fake embedder) ----------------------------------------------


async def test_answer_shows_question_bold_phrase_source_and_confidence(harness: Harness) -> None:
    harness.library.add_documents(str(GUILD_A), sample_docs())
    content = (await harness.slash("ask", {"question": MOON_Q}))[-1].content
    lines = content.split("\n")
    assert lines[0] == f"**Q:** {MOON_Q}"
    assert lines[1].startswith("> The Moon orbits the Earth")
    assert lines[-1].startswith("— [Planets and moons](<https://example.org/space#:~:text=")
    assert "confidence (" in lines[-1]


async def test_decline_is_one_line_and_more_sources_goes_to_the_clicker_only(harness: Harness) -> None:
    harness.library.add_documents(str(GUILD_A), sample_docs())
    follow = (await harness.slash("ask", {"question": "What is the capital of Peru?"}))[-1]
    assert follow.content == "**Q:** What is the capital of Peru?\nI couldn't find that in the articles."
    assert not follow.ephemeral and "> " not in follow.content  # no passage is posted publicly
    more = next(i for i in custom_ids(follow) if i.startswith("qb:more:"))
    message_id = next(m for m, msg in harness.rec.messages.items() if msg["components"])
    calls = await harness.click(more, message_id, user_id=snowflake())
    assert calls[0].ephemeral and calls[-1].ephemeral  # another member clicks: only they see it
    embed = calls[-1].json["embeds"][0]
    assert embed["title"] == "More sources for: What is the capital of Peru?"
    assert embed["fields"] and all(f["value"].startswith("> ") for f in embed["fields"])
    assert not any(c.path.startswith("/channels/") for c in calls)  # nothing posted to the channel


# -- follow-ups in a thread (the real model) --------------------------------------------------------


@pytest.fixture
async def real(
    tmp_path: Path,
    real_embedder: Embedder,
    no_webhook_network: list[Recorder],
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[Harness]:
    """A bot over a Library on the real model (the shipped thresholds), with the sample article and
    a distractor whose "he" also talks about shipments."""
    caplog.set_level(logging.WARNING)
    settings = Settings(
        index=IndexSettings(data_dir=tmp_path / "data"),
        bot=BotConfig(dev_guild_id=GUILD_A, moderator_role="Curator", admin_role=""),  # type: ignore[call-arg]
    )
    library = Library(settings.library_settings(), embedder=real_embedder)
    try:
        library.add_text(str(GUILD_A), EXAMPLE_ARTICLE.read_text(), title="North Korea shells")
        library.add_text(str(GUILD_A), PORT, title="Port reopens after storms")
        async with running_bot(settings, no_webhook_network, library) as h:
            yield h
            await h.settle()
    finally:
        library.close()
    assert_clean(h, caplog)


async def test_follow_ups_in_a_thread_use_the_earlier_answer(real: Harness) -> None:
    h = real
    # /ask with thread: the answer, then a thread opened on it.
    calls = await h.slash("ask", {"question": SPOKESMAN_Q, "thread": True}, option_types={"thread": 5})
    answer = next(c for c in calls if c.path.startswith(f"/webhooks/{APP_ID}/") and c.method == "POST")
    assert answer.content.startswith(f"**Q:** {SPOKESMAN_Q}\n") and "Kirby" in answer.content
    [opened] = [c for c in calls if c.path.endswith("/threads")]
    assert opened.method == "POST" and opened.json["name"] == SPOKESMAN_Q
    assert opened.path.startswith(f"/channels/{CHANNEL_A}/messages/")
    thread_id = int(opened.path.split("/")[4])
    thread = thread_payload(thread_id, CHANNEL_A, SPOKESMAN_Q)
    h.state.parse_thread_create(thread)  # the gateway's THREAD_CREATE

    # Without context, "he" and "the shipments" are the harbour master's.
    plain = (await h.slash("ask", {"question": SHIPMENTS_Q}, user_id=snowflake()))[-1].content
    assert "*Port reopens after storms*" in plain, plain

    # In the thread: the spokesman's article is favoured, so "he" is Kirby.
    follow = (await h.call(in_channel(h.payload(2, h.command_data("ask", [
        {"name": "question", "type": 3, "value": SHIPMENTS_Q}
    ])), thread)))[-1]  # fmt: skip
    assert follow.content.startswith(f"**Q:** {SHIPMENTS_Q}\n")
    assert KIRBY_SHIPMENTS in follow.content.replace("**", ""), follow.content
    assert "*North Korea shells*" in follow.content and "storms" not in follow.content
    assert not any(c.path.endswith("/threads") for c in h.rec.calls[-3:])  # no thread in a thread

    # A mention in the thread follows the conversation too.
    n = len(h.rec.calls)
    h.state.parse_message_create(mention("and what did he say about the quantity?", thread_id))
    await h.settle()
    [reply] = [c for c in h.rec.since(n) if c.path == f"/channels/{thread_id}/messages"]
    assert "specific estimate on the quantity" in reply.content.replace("**", ""), reply.content
    # The follow-up was logged with the asker, like any question.
    qid = int(custom_ids(reply)[0].split(":")[2])
    assert h.library.question(str(GUILD_A), qid).text == "and what did he say about the quantity?"


async def test_a_thread_that_cannot_be_opened_is_a_clear_ephemeral_error(harness: Harness) -> None:
    harness.library.add_documents(str(GUILD_A), sample_docs())
    # The channel is gone by the time the thread is opened (or the bot may not create threads).
    harness.rec.failures[("POST", "*/threads")] = 404
    calls = await harness.slash("ask", {"question": MOON_Q, "thread": True}, option_types={"thread": 5})
    answer = [c for c in calls if c.method == "POST" and c.path.startswith("/webhooks/")]
    assert "> The Moon orbits" in answer[0].content and not answer[0].ephemeral
    assert answer[-1].ephemeral and "couldn't open a thread" in answer[-1].content
    assert harness.bot.get_cog("Ask").threads == {}  # type: ignore[union-attr]
    # A follow-up in a thread whose article was removed since: answered from the whole collection.
    cog: Any = harness.bot.get_cog("Ask")
    from index.answering.followup import Context

    thread = thread_payload(snowflake(), CHANNEL_A, "old thread")
    cog.threads[int(thread["id"])] = Context(MOON_Q, 999_999, "gone")
    payload = harness.payload(
        2, harness.command_data("ask", [{"name": "question", "type": 3, "value": MOON_Q}])
    )
    calls = await harness.call(in_channel(payload, thread))
    assert "> The Moon orbits" in calls[-1].content


async def test_an_auto_answered_forum_post_takes_follow_ups(harness: Harness) -> None:
    from tests.bot.test_config_command import FORUM, add_thread, config, message, post, setup_guild

    h = harness
    setup_guild(h)
    h.library.add_documents(str(GUILD_A), sample_docs())
    await config(h, "auto-answer", {"channel": str(FORUM)})
    post_id = snowflake()
    add_thread(h, post_id, FORUM, MOON_Q)
    sent = await post(h, message("Asking for a school project.", post_id, message_id=post_id))
    assert len(sent) == 1 and "> The Moon orbits" in sent[0].content
    cog: Any = h.bot.get_cog("Ask")
    context = cog.threads[post_id]
    assert context.question == f"{MOON_Q} Asking for a school project." and "Moon" in context.quote
    # A mention in the post is a follow-up: answered from the same article, and the context moves on.
    sent = await post(h, mention("and which is the largest planet?", post_id))
    [reply] = [c for c in sent if c.path == f"/channels/{post_id}/messages"]
    assert "> Jupiter is the largest planet" in reply.content.replace("**", "")
    assert "Jupiter" in cog.threads[post_id].quote
