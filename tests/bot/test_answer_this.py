"""Closing the loop through discord.py's real dispatch: an /unanswered entry's "Answer this" opens the
paste form with the question as the title; the moderator's text becomes an article, the question is
asked again, and the asker is told in the channel they asked in (if they and the channel are still
there). Bad input (a member, a deleted question, a gone asker or channel) is a clear ephemeral line."""

from __future__ import annotations

from typing import Any

from tests.bot.conftest import (
    CHANNEL_A,
    GUILD_A,
    MEMBER,
    MOD,
    Call,
    Harness,
    snowflake,
)
from tests.conftest import sample_docs

QUESTION = "What colour is the Great Red Spot of Jupiter?"
ANSWER_TEXT = (
    "The Great Red Spot of Jupiter is a giant storm whose colour is a deep red. It is larger than the Earth."
)


def components(call: Call) -> list[dict[str, Any]]:
    return [c for row in call.json.get("components", []) for c in row["components"]]


async def declined_question(h: Harness) -> int:
    h.library.add_documents(str(GUILD_A), sample_docs())
    follow = (await h.slash("ask", {"question": QUESTION}))[-1]
    assert follow.content.endswith("I couldn't find that in the articles.")
    return int(components(follow)[0]["custom_id"].split(":")[2])


async def open_form(h: Harness, qid: int, **who: Any) -> list[Call]:
    return await h.click(f"qb:ans:{qid}", snowflake(), **who)  # a fresh /unanswered message


async def submit(h: Harness, modal: dict[str, Any], text: str) -> list[Call]:
    inputs = [row["component"] for row in modal["data"]["components"]]
    submit = {
        "custom_id": modal["data"]["custom_id"],
        "components": [
            {
                "type": 18,
                "component": {"type": 4, "custom_id": inputs[0]["custom_id"], "value": inputs[0]["value"]},
            },
            {"type": 18, "component": {"type": 4, "custom_id": inputs[1]["custom_id"], "value": text}},
        ],
    }
    return await h.gateway(h.payload(5, submit, **MOD))


async def test_answer_this_adds_the_article_reasks_and_tells_the_asker(harness: Harness) -> None:
    h = harness
    qid = await declined_question(h)
    listing = (await h.slash("unanswered", **MOD))[-1]
    assert listing.ephemeral and f"1. {QUESTION} (declined" in listing.content
    [button] = components(listing)
    assert button["custom_id"] == f"qb:ans:{qid}" and button["label"] == "Answer 1"

    # The button opens the paste form, the question as its title.
    calls = await open_form(h, qid, **MOD)
    modal = calls[-1].json
    assert modal["type"] == 9 and modal["data"]["title"] == "Answer a question"
    title_input = modal["data"]["components"][0]["component"]
    assert title_input["value"] == QUESTION

    calls = await submit(h, modal, ANSWER_TEXT)
    edits = [c.content for c in calls if c.method == "PATCH"]
    assert edits[-1].startswith(f"Added **{QUESTION}**")
    [told] = [c for c in calls if c.path == f"/channels/{CHANNEL_A}/messages"]
    assert told.content.startswith(f"<@{MEMBER}> a moderator answered your question:\n**Q:** {QUESTION}\n")
    assert "> The Great Red Spot of Jupiter is a giant storm" in told.content
    assert told.json["allowed_mentions"] == {"parse": [], "users": [MEMBER]}  # the asker alone
    assert calls[-1].ephemeral and f"I told <@{MEMBER}> in <#{CHANNEL_A}>" in calls[-1].content
    # The question's outcome follows: it is answered now, so /unanswered no longer lists it.
    assert h.library.question(str(GUILD_A), qid).answered
    assert "No unanswered questions" in (await h.slash("unanswered", **MOD))[-1].content


async def test_answer_this_refuses_members_and_deleted_questions(harness: Harness) -> None:
    h = harness
    qid = await declined_question(h)
    calls = await open_form(h, qid)  # a member
    assert len(calls) == 1 and calls[0].ephemeral and "Only moderators" in calls[0].content
    calls = await open_form(h, 987654321, **MOD)  # deleted (or another server's)
    assert len(calls) == 1 and calls[0].ephemeral and "no longer on record" in calls[0].content
    assert h.library.count(str(GUILD_A)) == 3


async def test_a_gone_asker_or_channel_is_reported_and_nobody_is_pinged(harness: Harness) -> None:
    h = harness
    qid = await declined_question(h)
    # The asker left the server.
    h.rec.failures[("GET", f"/guilds/{GUILD_A}/members/{MEMBER}")] = 404
    modal = (await open_form(h, qid, **MOD))[-1].json
    calls = await submit(h, modal, ANSWER_TEXT)
    assert not [c for c in calls if c.path.startswith("/channels/")]
    assert calls[-1].ephemeral and "The asker has left the server" in calls[-1].content
    # The channel was deleted: the post fails, the moderator is told.
    del h.rec.failures[("GET", f"/guilds/{GUILD_A}/members/{MEMBER}")]
    h.rec.failures[("POST", f"/channels/{CHANNEL_A}/messages")] = 404
    modal = (await open_form(h, qid, **MOD))[-1].json
    calls = await submit(h, modal, ANSWER_TEXT + " Storms can last centuries.")
    assert calls[-1].ephemeral and f"couldn't post in <#{CHANNEL_A}> (404)" in calls[-1].content
    # A text that still does not answer it: the asker is not told.
    h.rec.failures.clear()
    q2 = int(
        components((await h.slash("ask", {"question": "Who painted the Mona Lisa?"}))[-1])[0][
            "custom_id"
        ].split(":")[2]
    )
    modal = (await open_form(h, q2, **MOD))[-1].json
    calls = await submit(h, modal, "Tulips bloom in spring in cold countries.")
    assert not [c for c in calls if c.path.startswith("/channels/")]
    assert "still couldn't answer it" in calls[-1].content
