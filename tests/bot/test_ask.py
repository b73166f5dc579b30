"""/ask end to end through discord.py's CommandTree with a real Library (fake embedder)."""

from __future__ import annotations

from tests.bot.conftest import GUILD_A, Harness
from tests.conftest import sample_docs


async def test_ask_answers_with_a_block_quote(harness: Harness) -> None:
    harness.library.add_documents(str(GUILD_A), sample_docs())
    calls = await harness.slash("ask", {"question": "How often does the Moon orbit the Earth?"})
    for c in calls:
        print(c)
    assert calls[0].path.endswith("/callback")
    assert calls[0].json["type"] == 5  # deferred "thinking"
    follow = calls[-1]
    assert follow.method == "POST" and follow.path.startswith("/webhooks/")
    assert "> The Moon orbits the Earth once every 27.3 days." in follow.content
    assert follow.json["allowed_mentions"]["parse"] == []
