"""Upload progress: a 1,000-sentence file's reply moves at least every 2 s (not in 512-sentence steps),
and is edited at most about once a second (Discord's rate limits)."""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from index.embedding import FakeEmbedder
from tests.bot.conftest import (
    GUILD_A,
    MOD,
    Recorder,
    attachment_option,
    make_settings,
    rain_article,
    running_bot,
)

PER_SENTENCE_S = 0.006  # about a real model's cost on two busy cores: 1,000 sentences in ~6 s


class SlowFakeEmbedder(FakeEmbedder):
    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        time.sleep(PER_SENTENCE_S * len(texts))
        return super().encode(texts, batch_size=batch_size)


async def test_upload_progress_moves_every_two_seconds(
    data_dir: Path, no_webhook_network: list[Recorder], file_server: tuple[str, dict[str, bytes]]
) -> None:
    edits: list[tuple[float, str]] = []
    async with running_bot(make_settings(data_dir), no_webhook_network, embedder=SlowFakeEmbedder()) as h:
        library = h.library
        record = h.rec.record

        def timed(method: str, url: str, body: Any, params: dict[str, Any] | None = None) -> Any:
            if method == "PATCH" and isinstance(body, dict) and "content" in body:
                edits.append((time.perf_counter(), str(body["content"])))
            return record(method, url, body, params)

        h.rec.record = timed  # type: ignore[method-assign]
        base, files = file_server
        options, resolved = attachment_option(base, files, "rain.txt", rain_article(1000).encode())
        data = h.command_data("articles", options, sub="add")
        data["resolved"] = resolved
        t0 = time.perf_counter()
        await h.call(h.payload(2, data, **MOD))
        took = time.perf_counter() - t0
        assert not h.errors

    texts = [t for _, t in edits]
    print(f"\nupload took {took:.1f} s; edits:", *(f"{t - t0:5.2f} s {c[:60]}" for t, c in edits), sep="\n  ")
    assert texts[0] == "Downloading…" and texts[1] == "Reading…", texts
    assert texts[-1].startswith("Added **rain**: 1000 sentences"), texts[-1]
    percents = [int(m[1]) for c in texts if (m := re.fullmatch(r"Embedding 1,000 sentences… (\d+)%", c))]
    assert percents == sorted(percents) and len(set(percents)) == len(percents), texts
    # Between "Reading…" and the outcome, the reply moves at least every 2 s (or every 10%)...
    times = [t for t, _ in edits[1:]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) <= 2.3, (
        f"the reply stood still for {max(gaps):.1f} s: {list(zip(gaps, texts[2:], strict=False))}"
    )
    assert len(percents) >= 3, texts
    # ...and progress edits come at most about once a second (the outcome is sent at once).
    assert min(gaps[:-1], default=1.0) >= 0.9, gaps
    assert library.count(str(GUILD_A)) == 1
