"""Privacy through discord.py's real dispatch: /forget-me, deletion when the bot leaves a server, the
retention purge (on start, after /config retention, then daily), and what the invite link asks for."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import discord
from sqlmodel import select

from bot.checks import INVITE_PERMISSIONS
from bot.cogs.admin import PURGE_INTERVAL_S
from index.library import Library
from index.storage.models import Feedback, Question
from tests.bot.conftest import (
    ADMIN,
    ADMINISTRATOR,
    GUILD_A,
    GUILD_B,
    MEMBER,
    MODERATOR,
    Harness,
    Recorder,
    make_settings,
    running_bot,
    snowflake,
)
from tests.conftest import sample_docs

MOON_Q = "How often does the Moon orbit the Earth?"
README = Path(__file__).resolve().parents[2] / "README.md"


def questions(lib: Library) -> set[tuple[str, str | None, str]]:
    with lib.store.session() as s:
        return {(q.collection, q.user_id, q.text) for q in s.exec(select(Question)).all()}


def votes(lib: Library) -> set[tuple[str, str]]:
    with lib.store.session() as s:
        return {(f.collection, f.user_id) for f in s.exec(select(Feedback)).all()}


async def ask(h: Harness, question: str, user: int, guild: int = GUILD_A) -> int:
    """/ask; the logged question's id (from the answer's buttons)."""
    follow = (await h.slash("ask", {"question": question}, user_id=user, guild_id=guild))[-1]
    m = re.search(r"qb:more:(\d+)", str(follow.json["components"]))
    assert m is not None
    return int(m[1])


async def vote(h: Harness, qid: int, user: int, guild: int = GUILD_A) -> None:
    calls = await h.click(f"qb:fb:{qid}:0", snowflake(), user_id=user, guild_id=guild)
    assert "moderators will see" in calls[-1].content


async def test_forget_me_deletes_the_callers_questions_and_votes(harness: Harness) -> None:
    lib = harness.library
    lib.add_documents(str(GUILD_A), sample_docs())
    lib.add_documents(str(GUILD_B), sample_docs())
    mine = await ask(harness, MOON_Q, MEMBER)
    await ask(harness, "What is the capital of Peru?", MEMBER)
    theirs = await ask(harness, MOON_Q, MODERATOR)
    elsewhere = await ask(harness, MOON_Q, MEMBER, GUILD_B)
    await vote(harness, mine, MODERATOR)  # a vote on my question: goes with it
    await vote(harness, theirs, MEMBER)  # my vote on theirs: goes
    await vote(harness, elsewhere, MEMBER, GUILD_B)  # another server: stays
    calls = await harness.slash("forget-me", user_id=MEMBER)
    assert calls[0].ephemeral and calls[-1].ephemeral
    assert calls[-1].content == "Deleted your questions (2) and votes (2) in this server."
    assert questions(lib) == {(str(GUILD_A), str(MODERATOR), MOON_Q), (str(GUILD_B), str(MEMBER), MOON_Q)}
    assert votes(lib) == {(str(GUILD_B), str(MEMBER))}
    assert lib.count(str(GUILD_A)) == len(sample_docs())  # articles are not touched
    again = (await harness.slash("forget-me", user_id=MEMBER))[-1]
    assert again.content.startswith("Nothing to delete")


async def test_forgetting_another_member_is_for_admins(harness: Harness) -> None:
    lib = harness.library
    lib.add_documents(str(GUILD_A), sample_docs())
    await ask(harness, MOON_Q, MODERATOR)
    refused = (await harness.slash("forget-me", {"user": f"<@{MODERATOR}>"}, user_id=MEMBER))[-1]
    assert refused.ephemeral and "Only admins" in refused.content
    bad = (await harness.slash("forget-me", {"user": "bob"}, user_id=ADMIN, permissions=ADMINISTRATOR))[-1]
    assert bad.ephemeral and "not a user id or mention" in bad.content
    assert questions(lib) == {(str(GUILD_A), str(MODERATOR), MOON_Q)}
    done = (
        await harness.slash("forget-me", {"user": str(MODERATOR)}, user_id=ADMIN, permissions=ADMINISTRATOR)
    )[-1]
    assert done.content == f"Deleted <@{MODERATOR}>'s questions (1) and votes (0) in this server."
    assert done.json["allowed_mentions"]["parse"] == []
    assert questions(lib) == set()


async def test_leaving_a_server_deletes_its_questions_and_votes(harness: Harness) -> None:
    lib = harness.library
    lib.add_documents(str(GUILD_A), sample_docs())
    lib.add_documents(str(GUILD_B), sample_docs())
    qa = await ask(harness, MOON_Q, MEMBER)
    await vote(harness, qa, MODERATOR)
    qb = await ask(harness, MOON_Q, MEMBER, GUILD_B)
    await vote(harness, qb, MODERATOR, GUILD_B)
    # GUILD_DELETE without "unavailable": the bot was removed (discord.py dispatches on_guild_remove).
    harness.state.parse_guild_delete({"id": str(GUILD_A)})
    await harness.settle()
    assert questions(lib) == {(str(GUILD_B), str(MEMBER), MOON_Q)}
    assert votes(lib) == {(str(GUILD_B), str(MODERATOR))}
    assert lib.count(str(GUILD_A)) == len(sample_docs())  # the articles stay for a re-invite
    # An outage (unavailable guild) deletes nothing.
    harness.state.parse_guild_delete({"id": str(GUILD_B), "unavailable": True})
    await harness.settle()
    assert questions(lib) == {(str(GUILD_B), str(MEMBER), MOON_Q)}


def old_question(lib: Library, guild: int, text: str, days: float) -> None:
    lib.store.log_question(
        Question(
            collection=str(guild),
            user_id=str(MEMBER),
            text=text,
            created_at=datetime.now(UTC) - timedelta(days=days),
        )
    )


async def test_retention_purge_on_start_after_config_and_daily(
    data_dir: Path, library: Library, no_webhook_network: list[Recorder]
) -> None:
    old_question(library, GUILD_A, "from last year", 365)
    old_question(library, GUILD_A, "from last month", 30)
    old_question(library, GUILD_B, "from last month in B", 30)
    old_question(library, GUILD_B, "ancient in B", 91)
    async with running_bot(make_settings(data_dir), no_webhook_network, library) as h:
        await h.settle()
        # On start: the default 90 days.
        assert {t for _, _, t in questions(library)} == {"from last month", "from last month in B"}
        # A shorter period in guild A: applied at once, guild B keeps the default.
        call = (
            await h.slash(
                "config",
                {"days": 7},
                sub="retention",
                option_types={"days": 4},
                user_id=ADMIN,
                permissions=ADMINISTRATOR,
            )
        )[-1]
        assert "kept: 7 days" in call.content
        assert {t for _, _, t in questions(library)} == {"from last month in B"}
        # Then daily: the next purge is scheduled a day ahead, and runs when it fires.
        cog: Any = h.bot.get_cog("Admin")  # (a fresh module per bot: load_extension re-imports it)
        assert type(cog).__name__ == "AdminCog" and cog._purge_timer is not None
        loop = asyncio.get_running_loop()
        assert abs(cog._purge_timer.when() - loop.time() - PURGE_INTERVAL_S) < 60
        old_question(library, GUILD_A, "8 days old", 8)
        cog._purge_timer._run()  # what the event loop does when the timer is due
        await h.settle()
        assert {t for _, _, t in questions(library)} == {"from last month in B"}
        assert cog._purge_timer is not None and cog._purge_timer.when() - loop.time() > PURGE_INTERVAL_S - 60
    assert cog._purge_timer is None  # closing the bot stops the daily purge


def test_invite_link_asks_for_send_messages_in_threads() -> None:
    p = INVITE_PERMISSIONS
    assert p.send_messages and p.send_messages_in_threads and p.embed_links and p.read_message_history
    assert not p.administrator and not p.manage_messages
    text = README.read_text(encoding="utf-8")
    assert f"permissions={p.value}" in text and f"`{p.value}`" in text
    assert "**Send Messages in Threads**" in text
    assert isinstance(p, discord.Permissions)
