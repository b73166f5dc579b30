"""Load: 500 concurrent asks across 10 collections through one executor thread, as the bot runs
them, keep the event loop responsive; 10,000 questions do not grow memory."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from index.embedding import FakeEmbedder
from index.library import Library
from index.settings import LibrarySettings
from index.types import Document
from tests.conftest import sample_docs
from tests.reliability.crash_driver import article_text, question

COLLECTIONS = [f"guild{i}" for i in range(10)]
ARTICLES = 20


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Library]:
    library = Library(
        LibrarySettings(data_dir=tmp_path_factory.mktemp("load"), threshold=0.0), embedder=FakeEmbedder()
    )
    for c in COLLECTIONS:
        docs = [Document(article_text(f"{c}a{i}", 6), f"Article {c}a{i}") for i in range(ARTICLES)]
        library.add_documents(c, sample_docs() + docs)
    yield library
    library.close()


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
async def test_500_concurrent_asks_keep_the_event_loop_responsive(lib: Library) -> None:
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    done = asyncio.Event()

    async def monitor() -> None:
        while not done.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - t - 0.005)

    async def one(i: int) -> tuple[str, int]:
        c = COLLECTIONS[i % len(COLLECTIONS)]
        k = (i // len(COLLECTIONS)) % ARTICLES
        ans = await loop.run_in_executor(executor, lib.ask, c, question(f"{c}a{k}", i % 6))
        assert ans.quote is not None
        return ans.quote.article.title, k

    with ThreadPoolExecutor(max_workers=1) as executor:
        watcher = asyncio.create_task(monitor())
        started = time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(500)))
        elapsed = time.perf_counter() - started
        done.set()
        await watcher
    assert len(results) == 500
    right = sum(title.endswith(f"a{k}") for title, k in results)
    assert right == 500, right
    p99 = float(np.percentile(lags, 99))
    print(
        f"\n500 asks in {elapsed:.1f} s; loop lag p50 {np.median(lags) * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms"
    )
    assert p99 < 0.050


@pytest.mark.slow
def test_memory_is_flat_over_10000_questions(lib: Library) -> None:
    def ask(n: int, offset: int) -> None:
        for i in range(offset, offset + n):
            c = COLLECTIONS[i % len(COLLECTIONS)]
            lib.ask(c, question(f"{c}a{(i // 10) % ARTICLES}", i % 6))

    ask(1_000, 0)
    gc.collect()
    warm = rss_bytes()
    ask(9_000, 1_000)
    gc.collect()
    growth = rss_bytes() - warm
    print(f"\nRSS after 1,000 questions {warm / 1e6:.0f} MB, after 10,000 +{growth / 1e6:.1f} MB")
    assert growth < 20_000_000
