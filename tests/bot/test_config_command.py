"""/config through discord.py's real dispatch: per-server settings stored in the database (by role and
channel id, config.toml only as the default), applied when answering, shown by /config show; bad
input is a clear ephemeral error and changes nothing; moderator and admin commands carry
default_permissions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import discord
from sqlmodel import select

from bot.guild_config import configs
from index.library import Library
from index.storage import guild_settings as gs
from index.storage.models import Question
from tests.bot.conftest import (
    ADMIN,
    ADMINISTRATOR,
    BOT_USER_ID,
    CHANNEL_A,
    GUILD_A,
    GUILD_B,
    MANAGE_MESSAGES,
    MEMBER,
    MODERATOR,
    ROLE_CURATOR,
    Call,
    Harness,
    Recorder,
    make_settings,
    message_payload,
    running_bot,
    snowflake,
)
from tests.conftest import sample_docs

MOON = "The Moon orbits the Earth once every 27.3 days."
MOON_Q = "How often does the Moon orbit the Earth?"
ROLE_HELPER = 820000000000000002
CHANNEL_QA = 810000000000000011  # a second text channel in guild A
CHANNEL_AUTO = 810000000000000012
FORUM = 810000000000000013
CATEGORY = 810000000000000014
AS_ADMIN: dict[str, Any] = {"user_id": ADMIN, "permissions": ADMINISTRATOR}


def add_channel(
    h: Harness, channel_id: int, ctype: int = 0, name: str = "qa", guild_id: int = GUILD_A
) -> None:
    h.state.parse_channel_create(
        {
            "id": str(channel_id),
            "type": ctype,
            "guild_id": str(guild_id),
            "name": name,
            "position": 1,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            **({"available_tags": [], "flags": 0} if ctype == 15 else {}),
        }
    )


def add_thread(h: Harness, thread_id: int, parent_id: int, name: str) -> None:
    h.state.parse_thread_create(
        {
            "id": str(thread_id),
            "type": 11,
            "guild_id": str(GUILD_A),
            "parent_id": str(parent_id),
            "name": name,
            "owner_id": str(MEMBER),
            "message_count": 1,
            "member_count": 1,
            "rate_limit_per_user": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": "2025-01-01T00:00:00+00:00",
                "locked": False,
            },
        }
    )


def setup_guild(h: Harness) -> None:
    h.add_guild(GUILD_A, CHANNEL_A, [(ROLE_CURATOR, "Curator"), (ROLE_HELPER, "Helper")])
    add_channel(h, CHANNEL_QA, name="qa")
    add_channel(h, CHANNEL_AUTO, name="help")
    add_channel(h, FORUM, 15, name="questions")
    add_channel(h, CATEGORY, 4, name="a category")


async def config(h: Harness, sub: str, options: dict[str, Any] | None = None, **who: Any) -> Call:
    types = {"days": 4, "reset": 5, "confident": 10, "may": 10}
    calls = await h.slash("config", options, sub=sub, option_types=types, **(who or AS_ADMIN))
    return calls[-1]


async def ask_in(h: Harness, channel: dict[str, Any], question: str, **who: Any) -> list[Call]:
    p = h.payload(2, h.command_data("ask", [{"name": "question", "type": 3, "value": question}]), **who)
    p["channel"] = {"guild_id": str(GUILD_A), **channel}
    p["channel_id"] = channel["id"]
    return await h.call(p)


def message(
    content: str, channel_id: int, *, author: int = MEMBER, message_id: int | None = None
) -> dict[str, Any]:
    return message_payload(content, channel_id, author=author, message_id=message_id)


async def post(h: Harness, msg: dict[str, Any]) -> list[Call]:
    n = len(h.rec.calls)
    h.state.parse_message_create(msg)
    await h.settle()
    return [c for c in h.rec.since(n) if c.path.startswith("/channels/") and not c.path.endswith("/typing")]


def stored(h: Harness, guild_id: int = GUILD_A) -> gs.GuildSettings | None:
    return gs.get_settings(h.library.store, str(guild_id))


async def test_commands_carry_default_permissions(harness: Harness) -> None:
    sync = next(c for c in harness.rec.calls if c.method == "PUT" and c.path.endswith("/commands"))
    perms = {c["name"]: c.get("default_member_permissions") for c in sync.json}
    perms = {k: None if v is None else str(v) for k, v in perms.items()}
    manage_guild = str(discord.Permissions(manage_guild=True).value)
    assert perms["articles"] == perms["unanswered"] == str(MANAGE_MESSAGES)
    assert perms["config"] == perms["reindex"] == perms["stats"] == manage_guild
    assert perms["ask"] is None and perms["forget-me"] is None  # everyone sees these
    subs = {o["name"] for o in next(c for c in sync.json if c["name"] == "config")["options"]}
    assert subs == {"show", "thresholds", "roles", "channels", "auto-answer", "retention", "answers"}


async def test_config_is_for_admins_only(harness: Harness) -> None:
    for who in ({"user_id": MEMBER}, {"user_id": MODERATOR, "permissions": MANAGE_MESSAGES}):
        call = await config(harness, "retention", {"days": 7}, **who)
        assert call.ephemeral and "Only admins" in call.content
    assert stored(harness) is None
    # Manage Server (the command's default permission) is enough.
    call = await config(
        harness,
        "retention",
        {"days": 7},
        user_id=MODERATOR,
        permissions=discord.Permissions(manage_guild=True).value,
    )
    assert "Retention saved" in call.content
    row = stored(harness)
    assert row is not None and row.retention_days == 7 and row.updated_by == str(MODERATOR)


async def test_show_lists_the_defaults_then_the_servers_settings(harness: Harness) -> None:
    setup_guild(harness)
    call = await config(harness, "show")
    assert call.ephemeral
    text = call.content
    assert "Quote confidently from: 0.10 (default)" in text
    assert "Moderators: Manage Messages, or the role named `Curator` (config.toml)" in text
    assert "Answer channels: every channel (default)" in text
    assert "Auto-answer (confident answers only): off" in text
    assert "kept: 90 days" in text and "Answers: public" in text
    await config(harness, "roles", {"moderators": f"<@&{ROLE_HELPER}>", "admins": "none"})
    await config(harness, "channels", {"answer_in": f"<#{CHANNEL_QA}>, {CHANNEL_A}"})
    await config(harness, "thresholds", {"confident": 0.8, "may": 0.5})
    await config(harness, "answers", {"visibility": "private"})
    text = (await config(harness, "show")).content
    assert "Quote confidently from: 0.80\n" in text and '"This may answer it" from: 0.50' in text
    assert f"Moderators: Manage Messages, or <@&{ROLE_HELPER}>" in text
    assert "Admins: Administrator only" in text
    assert f"Answer channels: <#{CHANNEL_QA}>, <#{CHANNEL_A}>" in text
    assert "Answers: private" in text
    # A channel deleted since is shown as such.
    harness.state.parse_channel_delete({"id": str(CHANNEL_QA), "guild_id": str(GUILD_A), "type": 0})
    assert f"deleted channel {CHANNEL_QA}" in (await config(harness, "show")).content
    # Guild B is untouched.
    assert stored(harness, GUILD_B) is None


async def test_roles_by_id_replace_the_role_name_and_survive_a_restart(
    harness: Harness, data_dir: Path, no_webhook_network: list[Recorder]
) -> None:
    setup_guild(harness)
    curator = {"user_id": MEMBER, "roles": [ROLE_CURATOR]}
    helper = {"user_id": MEMBER + 1, "roles": [ROLE_HELPER]}
    assert not (await harness.slash("articles", sub="list", **curator))[-1].content.startswith("Only")
    assert "Only moderators" in (await harness.slash("articles", sub="list", **helper))[-1].content

    call = await config(harness, "roles", {"moderators": str(ROLE_HELPER)})
    assert "Roles saved" in call.content
    row = stored(harness)
    assert row is not None and row.moderator_role_ids == str(ROLE_HELPER) and row.admin_role_ids is None
    refused = (await harness.slash("articles", sub="list", **curator))[-1]
    assert refused.ephemeral and f"<@&{ROLE_HELPER}>" in refused.content  # says which role counts
    assert "Only" not in (await harness.slash("articles", sub="list", **helper))[-1].content
    # Admin roles by id: the helper may now run admin commands (and /config).
    assert "Only admins" in (await harness.slash("stats", **helper))[-1].content
    await config(harness, "roles", {"admins": f"<@&{ROLE_HELPER}>"})
    assert "Only admins" not in (await harness.slash("stats", **helper))[-1].content
    assert "Settings for this server" in (await config(harness, "show", **helper)).content

    # Stored in the database: a restarted bot applies them.
    await harness.bot.close()
    async with running_bot(make_settings(data_dir), no_webhook_network, errors=harness.errors) as h2:
        setup_guild(h2)
        assert "Only" not in (await h2.slash("articles", sub="list", **helper))[-1].content
        assert "Only moderators" in (await h2.slash("articles", sub="list", **curator))[-1].content
        # `default` goes back to config.toml's role name.
        await config(h2, "roles", {"moderators": "default"})
        assert "Only" not in (await h2.slash("articles", sub="list", **curator))[-1].content


async def test_bad_input_is_a_clear_error_and_changes_nothing(harness: Harness) -> None:
    setup_guild(harness)
    await config(harness, "retention", {"days": 30})
    before = stored(harness)
    assert before is not None
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("roles", {"moderators": "820000000000000099"}, "no role with id 820000000000000099"),
        ("roles", {"moderators": f"{ROLE_HELPER} helpers"}, "not a role id or mention"),
        ("roles", {"admins": str(GUILD_A)}, "@everyone"),
        ("roles", {}, "Give `moderators`, `admins`"),
        ("channels", {"answer_in": "810000000000000099"}, "no channel with id 810000000000000099"),
        ("channels", {"answer_in": str(CATEGORY)}, "is not a text, forum or voice channel"),
        ("channels", {"answer_in": "general"}, "not a channel id or mention"),
        ("auto-answer", {"channel": f"<#{CHANNEL_QA}> <#{CHANNEL_AUTO}>"}, "Give one channel"),
        ("auto-answer", {"channel": "810000000000000099"}, "no channel with id"),
        ("retention", {"days": 0}, "Retention must be 1 to 3650 days, not 0"),
        ("retention", {"days": 10**12}, "not 1,000,000,000,000"),
        ("thresholds", {"confident": 1.5}, "must be a number from 0 to 1"),
        ("thresholds", {"confident": 0.4, "may": 0.6}, "can't be above the confident threshold"),
        ("thresholds", {"confident": 0.4, "reset": True}, "not both"),
        ("thresholds", {}, "Give `confident`"),
    ]
    for sub, options, expected in cases:
        call = await config(harness, sub, options)
        assert call.ephemeral and expected in call.content, (sub, options, call.content)
    after = stored(harness)
    assert after is not None and after.model_dump() == before.model_dump()
    assert configs(harness.bot).get(GUILD_A).answer_channel_ids is None


async def test_answer_channels_limit_where_questions_are_answered(harness: Harness) -> None:
    setup_guild(harness)
    harness.library.add_documents(str(GUILD_A), sample_docs())
    harness.library.add_documents(str(GUILD_B), sample_docs())
    await config(harness, "channels", {"answer_in": f"<#{CHANNEL_QA}>"})
    general = {"id": str(CHANNEL_A), "type": 0, "name": "general"}
    qa = {"id": str(CHANNEL_QA), "type": 0, "name": "qa"}
    calls = await ask_in(harness, general, MOON_Q, user_id=MEMBER + 1)
    assert len(calls) == 1 and calls[0].ephemeral
    assert calls[0].content == f"I answer questions in <#{CHANNEL_QA}> in this server."
    assert MOON in (await ask_in(harness, qa, MOON_Q, user_id=MEMBER + 2))[-1].content
    # A thread of an answer channel counts as that channel.
    thread = snowflake()
    add_thread(harness, thread, CHANNEL_QA, "a thread")
    in_thread = {"id": str(thread), "type": 11, "name": "a thread", "parent_id": str(CHANNEL_QA)}
    assert MOON in (await ask_in(harness, in_thread, MOON_Q, user_id=MEMBER + 3))[-1].content
    # Mentions elsewhere are ignored (no reply at all); in the answer channel they are answered.
    assert await post(harness, message(f"<@{BOT_USER_ID}> {MOON_Q}", CHANNEL_A, author=MEMBER + 4)) == []
    sent = await post(harness, message(f"<@{BOT_USER_ID}> {MOON_Q}", CHANNEL_QA, author=MEMBER + 4))
    assert len(sent) == 1 and sent[0].path == f"/channels/{CHANNEL_QA}/messages" and MOON in sent[0].content
    # Other servers still answer everywhere.
    assert MOON in (await harness.slash("ask", {"question": MOON_Q}, guild_id=GUILD_B))[-1].content
    # `all` lifts the limit.
    await config(harness, "channels", {"answer_in": "all"})
    assert MOON in (await ask_in(harness, general, MOON_Q, user_id=MODERATOR))[-1].content


async def test_private_answers_are_ephemeral(harness: Harness) -> None:
    harness.library.add_documents(str(GUILD_A), sample_docs())
    call = await config(harness, "answers", {"visibility": "private"})
    assert "Answers: private" in call.content
    calls = await harness.slash("ask", {"question": MOON_Q})
    assert calls[0].json["type"] == 5 and calls[0].ephemeral  # deferred ephemerally
    assert calls[-1].ephemeral and MOON in calls[-1].content
    assert "qb:fb:" in str(calls[-1].json["components"])  # buttons still there
    # A mention cannot be answered privately: a hint instead of a public answer.
    sent = await post(harness, message(f"<@{BOT_USER_ID}> {MOON_Q}", CHANNEL_A))
    assert len(sent) == 1 and "private in this server" in sent[0].content and MOON not in sent[0].content
    # Guild B and public again.
    harness.library.add_documents(str(GUILD_B), sample_docs())
    assert not (await harness.slash("ask", {"question": MOON_Q}, guild_id=GUILD_B))[-1].ephemeral
    await config(harness, "answers", {"visibility": "public"})
    calls = await harness.slash("ask", {"question": MOON_Q}, user_id=MODERATOR)
    assert not calls[0].ephemeral and not calls[-1].ephemeral and MOON in calls[-1].content


async def test_server_thresholds_decide_the_answer(harness: Harness) -> None:
    lib = harness.library
    lib.add_documents(str(GUILD_A), sample_docs())
    lib.add_documents(str(GUILD_B), sample_docs())
    first = (await harness.slash("ask", {"question": MOON_Q}))[-1]
    assert MOON in first.content and "This may answer it" not in first.content
    confidence = lib.ask(str(GUILD_A), MOON_Q).confidence
    assert 0.02 < confidence < 0.98
    # Above this answer's confidence: declined here (and logged as declined, so /unanswered lists it).
    await config(harness, "thresholds", {"confident": confidence + 0.01, "may": confidence + 0.01})
    declined = (await harness.slash("ask", {"question": MOON_Q}, user_id=MODERATOR))[-1]
    assert declined.content.startswith(f"**Q:** {MOON_Q}\nI couldn't find that in the articles.")
    qid = int(str(declined.json["components"]).split("qb:more:")[1].split("'")[0])
    q = lib.question(str(GUILD_A), qid)
    assert not q.answered and q.start is None
    assert qid in [q.id for q, _ in lib.unanswered(str(GUILD_A))]
    # Between the two: "this may answer it".
    await config(harness, "thresholds", {"may": confidence - 0.01})
    may = (await harness.slash("ask", {"question": MOON_Q}, user_id=ADMIN))[-1]
    assert "This may answer it" in may.content and MOON in may.content
    # Guild B keeps the defaults.
    b = (await harness.slash("ask", {"question": MOON_Q}, guild_id=GUILD_B))[-1]
    assert MOON in b.content and "This may answer it" not in b.content
    # Lower than the Library's: a question the Library declines is quoted here.
    peru = "Where is the capital of Peru's system?"  # one word of the articles: low, not 0
    low = lib.ask(str(GUILD_A), peru)
    assert low.quote is None and low.best is not None
    await config(harness, "thresholds", {"confident": low.confidence - 0.001, "may": low.confidence - 0.001})
    quoted = (await harness.slash("ask", {"question": peru}, user_id=MEMBER + 5))[-1]
    assert low.best.text in quoted.content
    assert "I couldn't find" not in quoted.content
    await config(harness, "thresholds", {"reset": True})
    row = stored(harness)
    assert row is not None and row.threshold is None and row.may_threshold is None


async def test_auto_answer_replies_only_when_confident(harness: Harness) -> None:
    setup_guild(harness)
    harness.library.add_documents(str(GUILD_A), sample_docs())
    call = await config(harness, "auto-answer", {"channel": f"<#{CHANNEL_AUTO}>"})
    assert f"Auto-answer (confident answers only): <#{CHANNEL_AUTO}>" in call.content
    sent = await post(harness, message(MOON_Q, CHANNEL_AUTO, author=MEMBER + 7))
    assert len(sent) == 1 and sent[0].path == f"/channels/{CHANNEL_AUTO}/messages"
    assert f"> {MOON}" in sent[0].content and "qb:fb:" in str(sent[0].json["components"])
    # Logged with the asker (it has feedback buttons).
    with harness.library.store.session() as s:
        rows = s.exec(select(Question).where(Question.collection == str(GUILD_A))).all()
    assert [(q.text, q.user_id, q.answered) for q in rows] == [(MOON_Q, str(MEMBER + 7), True)]
    # Not confident: silence, and nothing logged. Other channels without a mention: silence.
    assert await post(harness, message("What is the capital of Peru?", CHANNEL_AUTO, author=MEMBER + 8)) == []
    assert await post(harness, message(MOON_Q, CHANNEL_A, author=MEMBER + 9)) == []
    # Raising the confident threshold above the answer's confidence silences it too.
    conf = harness.library.ask(str(GUILD_A), MOON_Q).confidence
    await config(harness, "thresholds", {"confident": min(1.0, conf + 0.01)})
    assert await post(harness, message(MOON_Q, CHANNEL_AUTO, author=MEMBER + 10)) == []
    await config(harness, "thresholds", {"reset": True})

    # A forum: each new post (its title and first message) is answered, not the replies in it.
    await config(harness, "auto-answer", {"channel": str(FORUM)})
    post_id = snowflake()
    add_thread(harness, post_id, FORUM, MOON_Q)
    sent = await post(
        harness, message("Asking for a school project.", post_id, message_id=post_id, author=MEMBER + 11)
    )
    assert len(sent) == 1 and sent[0].path == f"/channels/{post_id}/messages" and MOON in sent[0].content
    assert await post(harness, message(MOON_Q, post_id, author=MEMBER + 12)) == []
    # Off.
    await config(harness, "auto-answer", {"channel": "off"})
    assert await post(harness, message(MOON_Q, CHANNEL_AUTO, author=MEMBER + 13)) == []
    assert configs(harness.bot).get(GUILD_A).auto_answer_channel_id is None


async def test_auto_answer_needs_the_message_intent(
    data_dir: Path, library: Library, no_webhook_network: list[Recorder]
) -> None:
    async with running_bot(
        make_settings(data_dir, mention_questions=False), no_webhook_network, library
    ) as h:
        setup_guild(h)
        call = await config(h, "auto-answer", {"channel": str(CHANNEL_AUTO)})
        assert call.ephemeral and "mention_questions = true" in call.content
        assert gs.get_settings(library.store, str(GUILD_A)) is None
