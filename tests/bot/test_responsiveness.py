"""The event loop stays responsive while a large article is ingested and while a reindex runs: all
Library work leaves the loop through the bot's executor, and an /ask issued meanwhile completes."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import discord
import numpy as np
import pytest

from index.embedding import Embedder, FakeEmbedder
from index.library import Library
from tests.bot.conftest import (
    ADMIN,
    ADMINISTRATOR,
    GUILD_A,
    MOD,
    Harness,
    Recorder,
    attachment_option,
    make_settings,
    rain_article,
    running_bot,
)
from tests.conftest import sample_docs

MAX_LAG_S = 0.100
MOON = "The Moon orbits the Earth once every 27.3 days."


class SlowFakeEmbedder(FakeEmbedder):
    """The fake embedder with a real model's per-batch cost (spent in the worker thread)."""

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        time.sleep(0.004 * max(1, len(texts) // batch_size))
        return super().encode(texts, batch_size=batch_size)


async def max_lag_during(harness: Harness, *work: Awaitable[Any]) -> float:
    """The worst overshoot of a 5 ms sleep while `work` runs."""
    lag = 0.0

    async def sleeper() -> None:
        nonlocal lag
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.005)
            lag = max(lag, time.perf_counter() - t0 - 0.005)

    probe = asyncio.get_running_loop().create_task(sleeper())
    harness.ignore.add(probe)
    me = asyncio.current_task()
    assert me is not None
    harness.ignore.add(me)  # the test itself, waiting on `work`
    try:
        await asyncio.gather(*work)
    finally:
        probe.cancel()
    return lag


async def ask_now(harness: Harness, delay_s: float) -> None:
    """An /ask through the tree while something else is running (no settle: that would wait for it)."""
    await asyncio.sleep(delay_s)
    data = harness.command_data(
        "ask", [{"name": "question", "type": 3, "value": "How often does the Moon orbit the Earth?"}]
    )
    interaction = discord.Interaction(data=harness.payload(2, data), state=harness.state)  # type: ignore[arg-type]
    await harness.bot.tree._call(interaction)


async def run_scenario(harness: Harness, files: tuple[str, dict[str, bytes]], n_sentences: int) -> None:
    base, store = files
    harness.library.add_documents(str(GUILD_A), sample_docs())
    options, resolved = attachment_option(base, store, "rain.txt", rain_article(n_sentences).encode())
    data = harness.command_data("articles", options, sub="add")
    data["resolved"] = resolved
    add = harness.payload(2, data, **MOD)

    lag = await max_lag_during(harness, harness.call(add), ask_now(harness, 0.3))
    assert lag < MAX_LAG_S, f"event loop lagged {lag * 1000:.0f} ms during the ingest"
    rain = [a for a in harness.library.articles(str(GUILD_A)) if a.title == "rain"]
    assert rain and rain[0].n_sentences >= n_sentences
    # (the answer phrase is in bold inside the quote)
    assert any(MOON in c.content.replace("**", "") for c in harness.rec.calls), (
        "the /ask issued meanwhile did not complete",
        "\n".join(c.content[:200] for c in harness.rec.calls),
    )

    n = len(harness.rec.calls)
    lag = await max_lag_during(
        harness, harness.slash("reindex", user_id=ADMIN, permissions=ADMINISTRATOR), ask_now(harness, 0.01)
    )
    assert lag < MAX_LAG_S, f"event loop lagged {lag * 1000:.0f} ms during the reindex"
    later = harness.rec.since(n)
    assert any(c.content.startswith("Reindex finished") for c in later)
    # The quote may carry its answer phrase in bold ("once every **27.3 days**").
    assert any(MOON in c.content.replace("**", "") for c in later), "\n".join(c.content[:200] for c in later)


async def test_loop_stays_responsive_with_fake_model(
    data_dir: Path, no_webhook_network: list[Recorder], file_server: tuple[str, dict[str, bytes]]
) -> None:
    gc.collect()  # earlier tests' garbage would be collected mid-measurement, holding the GIL
    settings = make_settings(data_dir, ask_cooldown_s=0)
    async with running_bot(settings, no_webhook_network, embedder=SlowFakeEmbedder()) as h:
        await run_scenario(h, file_server, 2500)
        assert not h.errors


@pytest.mark.slow
async def test_loop_stays_responsive_with_real_model(
    data_dir: Path,
    no_webhook_network: list[Recorder],
    file_server: tuple[str, dict[str, bytes]],
    real_embedder: Embedder,
) -> None:
    gc.collect()  # as in the fake-model test: earlier tests' garbage, collected mid-measurement
    library = Library(make_settings(data_dir).library_settings(), embedder=real_embedder)
    try:
        library.warm_up()  # as run_bot does before connecting
        async with running_bot(make_settings(data_dir, ask_cooldown_s=0), no_webhook_network, library) as h:
            await run_scenario(h, file_server, 2000)
            assert not h.errors
    finally:
        library.close()
