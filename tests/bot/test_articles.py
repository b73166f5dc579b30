"""/articles add | list | remove | show, /unanswered, /reindex and /stats: permissions, the modal, file
uploads served by a real local HTTP server, pagination, autocomplete, and hostile article text."""

from __future__ import annotations

import re

from bot import replies
from tests.bot.conftest import (
    ADMIN,
    ADMINISTRATOR,
    GUILD_A,
    GUILD_B,
    MOD,
    MODERATOR,
    ROLE_CURATOR,
    Harness,
    attachment_option,
)
from tests.conftest import ASTRONOMY, sample_docs


async def test_members_are_refused_moderator_and_admin_commands(harness: Harness) -> None:
    for name, sub in (
        ("articles", "add"),
        ("articles", "list"),
        ("unanswered", None),
        ("reindex", None),
        ("stats", None),
    ):
        calls = await harness.slash(name, {}, sub=sub)
        assert len(calls) == 1, name
        assert calls[0].json["type"] == 4 and calls[0].ephemeral, name
        assert "Only moderators" in calls[0].content or "Only admins" in calls[0].content
    # A moderator is not an admin.
    calls = await harness.slash("reindex", **MOD)
    assert calls[0].ephemeral and "Only admins" in calls[0].content
    assert harness.library.count(str(GUILD_A)) == 0


async def test_moderator_role_by_name_is_allowed(harness: Harness) -> None:
    calls = await harness.slash("articles", sub="list", user_id=MODERATOR, roles=[ROLE_CURATOR])
    assert calls[0].json["type"] == 5 and calls[-1].json["embeds"][0]["title"] == "Articles (0)"


async def test_add_text_through_the_modal(harness: Harness) -> None:
    calls = await harness.slash("articles", {"text": True}, sub="add", option_types={"text": 5}, **MOD)
    modal = calls[-1].json
    assert modal["type"] == 9  # the modal is the first response
    custom_id = modal["data"]["custom_id"]
    inputs = [row["component"]["custom_id"] for row in modal["data"]["components"]]
    submit = {
        "custom_id": custom_id,
        "components": [
            {"type": 18, "component": {"type": 4, "custom_id": inputs[0], "value": "Planets and moons"}},
            {"type": 18, "component": {"type": 4, "custom_id": inputs[1], "value": ASTRONOMY}},
        ],
    }
    calls = await harness.gateway(harness.payload(5, submit, **MOD))
    assert calls[0].json["type"] == 5 and calls[0].ephemeral
    edits = [c.content for c in calls if c.method == "PATCH"]
    assert edits[0] == "Reading…"
    assert re.match(r"Added \*\*Planets and moons\*\*: 4 sentences, \d+ passages", edits[-1])
    [info] = harness.library.articles(str(GUILD_A))
    assert info.title == "Planets and moons" and info.added_by == str(MODERATOR)
    # Without options the modal opens too.
    calls = await harness.slash("articles", {}, sub="add", **MOD)
    assert calls[-1].json["type"] == 9


async def test_add_file_downloads_the_attachment(
    harness: Harness, file_server: tuple[str, dict[str, bytes]]
) -> None:
    base, files = file_server
    options, resolved = attachment_option(base, files, "space.txt", ASTRONOMY.encode())
    data = harness.command_data("articles", options, sub="add")
    data["resolved"] = resolved
    calls = await harness.call(harness.payload(2, data, **MOD))
    edits = [c.content for c in calls if c.method == "PATCH"]
    assert edits[:2] == ["Downloading…", "Reading…"]
    assert edits[-1].startswith("Added **space**: 4 sentences")
    assert harness.library.articles(str(GUILD_A))[0].title == "space"

    # Unsupported types and oversized files are refused before any download.
    files.clear()
    for name, size in (("virus.exe", 10), ("huge.txt", 10**9)):
        options, resolved = attachment_option(base, files, name, b"x", size=size)
        data = harness.command_data("articles", options, sub="add")
        data["resolved"] = resolved
        calls = await harness.call(harness.payload(2, data, **MOD))
        assert len(calls) == 1 and calls[0].ephemeral, name
    assert harness.library.count(str(GUILD_A)) == 1


async def test_add_url_error_is_reported_in_words(harness: Harness) -> None:
    calls = await harness.slash("articles", {"url": "http://127.0.0.1:9/private"}, sub="add", **MOD)
    final = [c.content for c in calls if c.method == "PATCH"][-1]
    assert final.startswith("Could not add the article:")


async def test_list_pages_remove_show_and_autocomplete(harness: Harness) -> None:
    from tests.conftest import make_doc

    docs = [make_doc(f"Fact number {i} is about the topic {i}.", f"Article {i:02d}") for i in range(23)]
    harness.library.add_documents(str(GUILD_A), docs)
    harness.library.add_documents(str(GUILD_B), [make_doc("Secret of guild B.", "Article B-only")])

    calls = await harness.slash("articles", sub="list", **MOD)
    sent = calls[-1]
    embed = sent.json["embeds"][0]
    assert embed["title"] == "Articles (23)" and embed["footer"]["text"] == "Page 1 of 3"
    assert "B-only" not in embed["description"]
    buttons = [c for row in sent.json["components"] for c in row["components"]]
    assert buttons[0]["disabled"] is True  # previous, on the first page
    message_id = next(m for m, msg in harness.rec.messages.items() if msg["embeds"])
    calls = await harness.click(buttons[1]["custom_id"], message_id, **MOD)
    page2 = calls[-1].json["embeds"][0]
    assert calls[0].json["type"] == 6 and page2["footer"]["text"] == "Page 2 of 3"

    # Autocomplete offers this guild's titles with "#<database id>" as the value (never read as a
    # source id).
    opts = [{"name": "article", "type": 3, "value": "Article 0", "focused": True}]
    calls = await harness.call(
        harness.payload(4, harness.command_data("articles", opts, sub="remove"), **MOD)
    )
    choices = calls[-1].json["data"]["choices"]
    assert calls[-1].json["type"] == 8 and 1 <= len(choices) <= 25
    assert all(c["name"].startswith("Article 0") and c["value"][1:].isdigit() for c in choices)
    assert all(c["value"].startswith("#") for c in choices)
    opts[0]["value"] = "B-only"
    calls = await harness.call(
        harness.payload(4, harness.command_data("articles", opts, sub="remove"), **MOD)
    )
    assert calls[-1].json["data"]["choices"] == []  # never another guild's titles
    calls = await harness.call(harness.payload(4, harness.command_data("articles", opts, sub="remove")))
    assert calls[-1].json["data"]["choices"] == []  # and nothing for members

    target = choices[0]
    calls = await harness.slash("articles", {"article": target["value"]}, sub="show", **MOD)
    shown = calls[-1].json["embeds"][0]
    assert shown["title"].startswith("Article 0")
    assert {f["name"]: f["value"] for f in shown["fields"]}["Sentences"] == "1"

    calls = await harness.slash("articles", {"article": target["value"]}, sub="remove", **MOD)
    assert calls[-1].content.startswith("Removed **Article 0")
    assert harness.library.count(str(GUILD_A)) == 22
    # Guild A cannot remove guild B's article even by its id.
    b_id = harness.library.articles(str(GUILD_B))[0].id
    calls = await harness.slash("articles", {"article": str(b_id)}, sub="remove", **MOD)
    assert calls[-1].ephemeral and "There is no article" in calls[-1].content
    assert harness.library.count(str(GUILD_B)) == 1
    # An exact title works as the autocomplete value.
    calls = await harness.slash("articles", {"article": "Article 22"}, sub="remove", **MOD)
    assert calls[-1].content.startswith("Removed **Article 22")


async def test_unanswered_lists_declines(harness: Harness) -> None:
    harness.library.add_documents(str(GUILD_A), sample_docs())
    await harness.slash("ask", {"question": "What is the capital of Peru?"})
    calls = await harness.slash("unanswered", **MOD)
    assert calls[-1].ephemeral and "What is the capital of Peru? (declined" in calls[-1].content


async def test_reindex_runs_in_background_and_stats(harness: Harness) -> None:
    harness.library.add_documents(str(GUILD_A), sample_docs())
    calls = await harness.slash("reindex", user_id=ADMIN, permissions=ADMINISTRATOR)
    assert calls[0].json["type"] == 4 and calls[0].ephemeral and "started" in calls[0].content
    assert calls[-1].method == "PATCH" and calls[-1].content.startswith("Reindex finished")
    calls = await harness.slash("stats", user_id=ADMIN, permissions=ADMINISTRATOR)
    fields = {f["name"]: f["value"] for f in calls[-1].json["embeds"][0]["fields"]}
    assert fields["Articles"] == "3" and fields["Model"] == "fake-hash-64"


HOSTILE = (
    (
        "@everyone look <@123> and <@&456> and <#789> </ask:1> @here.\n"
        "> fake quote line\n"
        "```\ncode that never closes\n"
        "[phishing](https://evil.example) **bold** ||spoiler|| # heading\n"
        "-# subtext\n"
    )
    + "word " * 2000
    + "end."
)


async def test_hostile_article_cannot_ping_or_break_out(harness: Harness) -> None:
    from tests.conftest import make_doc

    harness.library.add_documents(
        str(GUILD_A),
        [
            make_doc(
                HOSTILE, "@everyone [click](https://evil.example) ]]", url="https://example.org/x-y?a=b&c=d"
            )
        ],
    )
    answer = harness.library.ask(str(GUILD_A), "look everyone here fake quote", alternatives=3)
    for content in [replies.answer_content(answer), replies.decline_content(answer)]:
        assert len(content) <= 2000
        assert "@everyone" not in content and "@here" not in content
        for mention in ("<@123>", "<@&456>", "<#789>", "</ask:1>"):
            assert mention not in content
        # Every line of the quote is inside the block quote until the source line.
        lines = content.split("\n")
        quote_lines = [
            ln
            for ln in lines
            if not ln.startswith(("**Q:** ", "— ", "I couldn't", "Possibly", "The closest sentence I found"))
        ]
        assert all(ln.startswith(">") for ln in quote_lines), quote_lines
        assert not re.search(r"(?<!\\)\]\(https://evil", content)  # no masked link to the attacker
    embed = replies.sources_embed(answer)
    assert len(embed) <= 6000 and all(len(f.value or "") <= 1024 for f in embed.fields)

    harness.library.ask(str(GUILD_A), "x")  # warm
    calls = await harness.slash("ask", {"question": "look everyone here fake quote"})
    assert calls[-1].json["allowed_mentions"] == {"parse": []}
    assert len(calls[-1].content) <= 2000 and "@everyone" not in calls[-1].content
