"""Asking never queues behind ingesting: with the real model, while a moderator uploads a 1,000-sentence
file in server A, /ask in server B and title autocomplete in server A keep answering quickly.

The figures (p50 / p99) are printed; the asserted bounds are generous (shared, noisy machines), and
whether the issue's goal (ask p99 < 1 s, autocomplete p99 < 0.5 s) was met is printed too.
"""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path

import discord

from index.embedding import Embedder
from index.library import Library
from tests.bot.conftest import (
    GUILD_A,
    GUILD_B,
    MOD,
    Harness,
    Recorder,
    attachment_option,
    make_settings,
    running_bot,
)
from tests.conftest import make_doc, sample_docs

N_SENTENCES = 1000
ASK_P99_BOUND_S = 2.5
AUTOCOMPLETE_P99_BOUND_S = 1.5


def big_article(n: int) -> str:
    return " ".join(
        f"Station {i} of the northern survey recorded {i * 7 % 97} millimetres of rain in the "
        f"{('spring', 'summer', 'autumn', 'winter')[i % 4]} of year {1900 + i % 120}."
        for i in range(n)
    )


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


async def timed_ask(h: Harness, guild_id: int) -> tuple[float, bool]:
    """One /ask through the real tree dispatch; (seconds until the answer was sent, answered?)."""
    data = h.command_data("ask", [{"name": "question", "type": 3, "value": "How often does the Moon orbit?"}])
    interaction = discord.Interaction(data=h.payload(2, data, guild_id=guild_id), state=h.state)  # type: ignore[arg-type]
    n = len(h.rec.calls)
    t0 = time.perf_counter()
    await h.bot.tree._call(interaction)
    dt = time.perf_counter() - t0
    sent = [c for c in h.rec.calls[n:] if c.method == "POST" and c.path.startswith("/webhooks/")]
    return dt, any("Moon" in c.content for c in sent)


async def timed_autocomplete(h: Harness, needle: str) -> tuple[float, int]:
    """Title autocomplete for /articles remove in server A; (seconds, number of choices)."""
    opts = [{"name": "article", "type": 3, "value": needle, "focused": True}]
    payload = h.payload(4, h.command_data("articles", opts, sub="remove"), **MOD)
    interaction = discord.Interaction(data=payload, state=h.state)  # type: ignore[arg-type]
    n = len(h.rec.calls)
    t0 = time.perf_counter()
    await h.bot.tree._call(interaction)
    dt = time.perf_counter() - t0
    replies = [c for c in h.rec.calls[n:] if c.path.endswith("/callback")]
    return dt, len(replies[-1].json["data"]["choices"]) if replies else -1


async def test_ask_and_autocomplete_never_wait_for_an_upload(
    data_dir: Path,
    no_webhook_network: list[Recorder],
    file_server: tuple[str, dict[str, bytes]],
    real_embedder: Embedder,
) -> None:
    gc.collect()
    library = Library(make_settings(data_dir).library_settings(), embedder=real_embedder)
    try:
        library.warm_up()  # as run_bot does before connecting
        async with running_bot(make_settings(data_dir, ask_cooldown_s=0), no_webhook_network, library) as h:
            library.add_documents(str(GUILD_B), sample_docs())
            library.add_documents(
                str(GUILD_A),
                [make_doc(f"Survey note {i} is short.", f"Survey note {i:02d}") for i in range(12)],
            )
            # Warm both paths (shelf load, first reader pass) before measuring.
            assert (await timed_ask(h, GUILD_B))[1]
            assert (await timed_autocomplete(h, "Survey"))[1] > 0

            base, files = file_server
            options, resolved = attachment_option(base, files, "rain.txt", big_article(N_SENTENCES).encode())
            data = h.command_data("articles", options, sub="add")
            data["resolved"] = resolved
            upload = discord.Interaction(data=h.payload(2, data, **MOD), state=h.state)  # type: ignore[arg-type]
            n_before = len(h.rec.calls)
            t0 = time.perf_counter()
            uploading = asyncio.get_running_loop().create_task(h.bot.tree._call(upload))

            asks: list[float] = []
            completes: list[float] = []
            empty = unanswered = 0
            await asyncio.sleep(0.3)  # the upload is downloaded and encoding
            while not uploading.done():
                dt, ok = await timed_ask(h, GUILD_B)
                asks.append(dt)
                unanswered += not ok
                dt, k = await timed_autocomplete(h, "Survey")
                completes.append(dt)
                empty += k <= 0
                await asyncio.sleep(0.1)
            await uploading
            upload_s = time.perf_counter() - t0
            await h.settle()
    finally:
        library.close()

    edits = [c.content for c in h.rec.calls[n_before:] if c.method == "PATCH"]
    assert edits and edits[-1].startswith("Added **rain**"), edits[-3:]
    ask50, ask99 = pct(asks, 0.5), pct(asks, 0.99)
    ac50, ac99 = pct(completes, 0.5), pct(completes, 0.99)
    print(
        f"\nupload of {N_SENTENCES} sentences took {upload_s:.1f} s; during it:"
        f"\n  /ask (server B): n={len(asks)} p50={ask50 * 1000:.0f} ms p99={ask99 * 1000:.0f} ms "
        f"max={max(asks) * 1000:.0f} ms  goal p99 < 1 s: {'PASS' if ask99 < 1.0 else 'FAIL'}"
        f"\n  autocomplete (server A): n={len(completes)} p50={ac50 * 1000:.0f} ms "
        f"p99={ac99 * 1000:.0f} ms  goal p99 < 0.5 s: {'PASS' if ac99 < 0.5 else 'FAIL'}"
    )
    assert unanswered == 0, "an /ask during the upload got no answer"
    assert empty == 0, "title autocomplete returned an empty list during the upload"
    assert ask99 < ASK_P99_BOUND_S, f"/ask p99 {ask99:.2f} s during the upload"
    assert ac99 < AUTOCOMPLETE_P99_BOUND_S, f"autocomplete p99 {ac99:.2f} s during the upload"
    assert len(asks) >= 3, f"too few asks during the upload ({len(asks)}): the upload took {upload_s:.1f} s"
