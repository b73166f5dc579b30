"""Permissions and isolation as properties: random sequences of commands by members, moderators and
admins across two guilds, checked against a model of who may do what and which articles exist where.

Random but reproducible (seeded); every command goes through the real CommandTree dispatch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from index.types import Document
from tests.bot.conftest import (
    ADMIN,
    ADMINISTRATOR,
    GUILD_A,
    GUILD_B,
    MANAGE_MESSAGES,
    MEMBER,
    MEMBER_PERMS,
    MODERATOR,
    ROLE_CURATOR,
    Harness,
)


@dataclass(frozen=True)
class Actor:
    name: str
    user_id: int
    permissions: int
    roles: tuple[int, ...] = ()

    def moderator_in(self, guild: int) -> bool:
        # The Curator role exists in guild A only; Administrator implies moderator.
        return bool(self.permissions & (MANAGE_MESSAGES | ADMINISTRATOR)) or (
            guild == GUILD_A and ROLE_CURATOR in self.roles
        )

    def admin_in(self, guild: int) -> bool:
        return bool(self.permissions & ADMINISTRATOR)


ACTORS = (
    Actor("member", MEMBER, MEMBER_PERMS),
    Actor("moderator", MODERATOR, MANAGE_MESSAGES),
    Actor("curator", MEMBER + 10, MEMBER_PERMS, (ROLE_CURATOR,)),
    Actor("admin", ADMIN, ADMINISTRATOR),
)
WORDS = ("lighthouse", "glacier", "orchard", "volcano", "monastery", "canal", "observatory", "vineyard")


def _article(guild: int, word: str) -> Document:
    text = f"The {word} of guild {guild} was founded in 1820 by the old council. It is open every day."
    return Document(text, f"{word} {guild}", source_id=f"{guild}-{word}")


async def test_random_command_sequences_respect_roles_and_guilds(harness: Harness) -> None:
    lib = harness.library
    words = {GUILD_A: WORDS[:4], GUILD_B: WORDS[4:]}
    for g, ws in words.items():
        lib.add_documents(str(g), [_article(g, w) for w in ws])
    alive = {g: {a.id: a.title.split()[0] for a in lib.articles(str(g))} for g in words}

    rng = random.Random(20261124)
    seen = {"refused": 0, "allowed": 0, "removed": 0, "cross_guild_remove": 0, "answered": 0}
    for step in range(80):
        actor = rng.choice(ACTORS)
        guild = rng.choice((GUILD_A, GUILD_B))
        other = GUILD_B if guild == GUILD_A else GUILD_A
        who = {
            "user_id": actor.user_id,
            "permissions": actor.permissions,
            "roles": list(actor.roles),
            "guild_id": guild,
        }
        op = rng.choice(("ask", "list", "remove", "show", "reindex", "stats", "unanswered"))
        where = f"step {step}: {actor.name} in {guild} runs {op}"

        if op == "ask":
            word = rng.choice(WORDS)
            calls = await harness.slash("ask", {"question": f"When was the {word} founded?"}, **who)
            text = calls[-1].content
            if "slow down" in text.lower() or "cooldown" in text.lower() or "try again" in text.lower():
                continue
            seen["answered"] += 1
            # Only this guild's live articles may ever be quoted.
            for g, arts in alive.items():
                for w in set(words[g]) - set(arts.values()) if g == guild else set(words[g]):
                    assert f"The {w} of guild" not in text, where
            continue

        if op in ("list", "unanswered", "remove", "show"):
            allowed = actor.moderator_in(guild)
        else:
            allowed = actor.admin_in(guild)

        if op == "remove":
            # Sometimes aim at the other guild's article by its database id.
            pool = [(guild, i) for i in alive[guild]] + [(other, i) for i in alive[other]]
            if not pool:
                continue
            owner, target = rng.choice(pool)
            calls = await harness.slash("articles", {"article": str(target)}, sub="remove", **who)
            removed = allowed and owner == guild
            if removed:
                del alive[guild][target]
                seen["removed"] += 1
            elif allowed:
                seen["cross_guild_remove"] += 1
        elif op == "show":
            pool = list(alive[guild].items()) + list(alive[other].items())
            if not pool:
                continue
            target, word = rng.choice(pool)
            calls = await harness.slash("articles", {"article": str(target)}, sub="show", **who)
            if allowed and target not in alive[guild]:
                assert word not in "".join(c.content for c in calls), where
        elif op == "list":
            calls = await harness.slash("articles", sub="list", **who)
        else:
            calls = await harness.slash(op, **who)

        refused = calls[0].ephemeral and (
            "Only moderators" in calls[0].content or "Only admins" in calls[0].content
        )
        assert refused == (not allowed), where
        seen["refused" if refused else "allowed"] += 1
        if op == "list" and allowed:
            shown = " ".join(
                str(e.get("description", "")) for c in calls for e in c.json.get("embeds", []) or []
            )
            for w in words[other]:
                assert w not in shown, where
        # The model and the library agree after every step: nobody removed what they may not.
        for g in words:
            assert {a.id for a in lib.articles(str(g))} == set(alive[g]), where
    await harness.settle()
    # The sequence exercised every kind of outcome (so the checks above had something to check).
    assert all(n > 0 for n in seen.values()), seen
