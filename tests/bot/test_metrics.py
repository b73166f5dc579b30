"""The Prometheus endpoint ([metrics] port, off by default): scraped over HTTP on 127.0.0.1 after
questions asked and articles added through payload-built interactions (the real CommandTree
dispatch), the counters, histograms and scrape-time gauges moving as they should."""

from __future__ import annotations

import asyncio
import math
import socket
import threading
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import MetricsConfig, load_settings
from bot.metrics import Metrics, ingest_counts
from index.errors import InputError
from tests.bot.conftest import (
    ADMIN,
    GUILD_A,
    GUILD_B,
    MEMBER,
    MOD,
    Harness,
    free_port,
)
from tests.conftest import ASTRONOMY, make_doc

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.status == 200
        return str(r.read().decode())


async def scrape(port: int) -> Samples:
    """Every sample the endpoint serves, by (name, sorted labels); fetched off the event loop."""
    text = await asyncio.to_thread(scrape_text, port)
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def turn_on(harness: Harness) -> int:
    """[metrics] port set to a free port on 127.0.0.1, then what serve() starts (the heartbeat
    task is left to run beside the test)."""
    bot = harness.bot
    port = free_port()
    bot.settings = bot.settings.model_copy(update={"metrics": MetricsConfig(port=port, host="127.0.0.1")})
    bot.start_monitoring()
    harness.ignore.update(t for t in bot._background if t.get_name() == "quotebot-heartbeat")
    assert bot.metrics.port == port
    return port


async def paste(harness: Harness, title: str, text: str) -> list[str]:
    """/articles add text: through the modal, as a moderator; the reply's edits."""
    calls = await harness.slash("articles", {"text": True}, sub="add", option_types={"text": 5}, **MOD)
    modal = calls[-1].json
    inputs = [row["component"]["custom_id"] for row in modal["data"]["components"]]
    submit = {
        "custom_id": modal["data"]["custom_id"],
        "components": [
            {"type": 18, "component": {"type": 4, "custom_id": inputs[0], "value": title}},
            {"type": 18, "component": {"type": 4, "custom_id": inputs[1], "value": text}},
        ],
    }
    calls = await harness.gateway(harness.payload(5, submit, **MOD))
    return [c.content for c in calls if c.method == "PATCH"]


async def test_scrape_counts_questions_ingests_and_collection_sizes(harness: Harness) -> None:
    port = turn_on(harness)
    before = await scrape(port)
    for outcome in ("quoted", "may", "declined", "error"):
        assert ("quotebot_questions_total", (("outcome", outcome),)) in before  # every series, at 0
        assert value(before, "quotebot_questions_total", outcome=outcome) == 0
    for status in ("added", "replaced", "unchanged", "failed"):
        assert ("quotebot_ingest_total", (("status", status),)) in before
    assert value(before, "quotebot_answer_seconds_count") == 0
    assert not [k for k in before if k[0] == "quotebot_collection_articles"]
    for lane in ("ask", "write", "fetch"):
        assert ("quotebot_lane_queue_depth", (("lane", lane),)) in before
        assert value(before, "quotebot_lane_queue_depth", lane=lane) == 0
    assert math.isnan(before[("quotebot_gateway_latency_seconds", ())])  # the harness never connects

    # Ingest: an added article, the same text again (unchanged), and a fetch that fails.
    edits = await paste(harness, "Planets and moons", ASTRONOMY)
    assert edits[-1].startswith("Added **Planets and moons**")
    edits = await paste(harness, "Planets and moons", ASTRONOMY)
    assert edits[-1].startswith("Already had **Planets and moons**")
    calls = await harness.slash("articles", {"url": "http://127.0.0.1:9/private"}, sub="add", **MOD)
    assert [c.content for c in calls if c.method == "PATCH"][-1].startswith("Could not add the article:")
    harness.library.add_documents(str(GUILD_B), [make_doc("Guild B keeps bees.", "Bees")])

    # Questions: a quote, a decline, and one refused with an error reply (too long).
    calls = await harness.slash("ask", {"question": "How often does the Moon orbit the Earth?"})
    assert "> The Moon orbits the Earth once every 27.3 days." in calls[-1].content
    calls = await harness.slash("ask", {"question": "What is the capital of Peru?"}, user_id=ADMIN)
    assert "I couldn't find that in the articles." in calls[-1].content
    calls = await harness.slash("ask", {"question": "why " * 600}, user_id=MEMBER)
    assert calls[-1].ephemeral and "please keep it under" in calls[-1].content

    after = await scrape(port)
    assert value(after, "quotebot_questions_total", outcome="quoted") == 1
    assert value(after, "quotebot_questions_total", outcome="declined") == 1
    assert value(after, "quotebot_questions_total", outcome="error") == 1
    assert value(after, "quotebot_questions_total", outcome="may") == 0
    assert value(after, "quotebot_answer_seconds_count") == 3
    assert value(after, "quotebot_answer_seconds_sum") > 0
    assert value(after, "quotebot_answer_seconds_bucket", le="+Inf") == 3
    assert value(after, "quotebot_ingest_total", status="added") == 1
    assert value(after, "quotebot_ingest_total", status="unchanged") == 1
    assert value(after, "quotebot_ingest_total", status="failed") == 1
    assert value(after, "quotebot_ingest_total", status="replaced") == 0
    assert value(after, "quotebot_ingest_seconds_count") == 3
    assert value(after, "quotebot_collection_articles", collection=str(GUILD_A)) == 1
    assert value(after, "quotebot_collection_articles", collection=str(GUILD_B)) == 1

    # The collection gauge follows a removal (it is counted when scraped).
    [info] = harness.library.articles(str(GUILD_A))
    calls = await harness.slash("articles", {"article": f"#{info.id}"}, sub="remove", **MOD)
    assert calls[-1].content.startswith("Removed **Planets and moons**")
    final = await scrape(port)
    assert not [
        k
        for k in final
        if k[0] == "quotebot_collection_articles" and dict(k[1])["collection"] == str(GUILD_A)
    ]
    assert value(final, "quotebot_collection_articles", collection=str(GUILD_B)) == 1

    # Closing the bot closes the endpoint.
    await harness.bot.close()
    with pytest.raises(OSError):
        scrape_text(port)


async def test_lane_queue_depth_counts_waiting_and_running_jobs(harness: Harness) -> None:
    port = turn_on(harness)
    release = threading.Event()
    started = threading.Event()

    def slow() -> None:
        started.set()
        release.wait(10)

    bot = harness.bot
    jobs = [asyncio.ensure_future(bot.work(slow)) for _ in range(3)]  # one write thread: 1 runs, 2 wait
    fetch = asyncio.ensure_future(bot.fetching(slow))
    try:
        await asyncio.to_thread(started.wait, 5)
        await asyncio.sleep(0.05)
        busy = await scrape(port)
        assert value(busy, "quotebot_lane_queue_depth", lane="write") == 2
        assert value(busy, "quotebot_lane_running", lane="write") == 1
        assert value(busy, "quotebot_lane_queue_depth", lane="fetch") == 0
        assert value(busy, "quotebot_lane_running", lane="fetch") == 1
        assert value(busy, "quotebot_lane_queue_depth", lane="ask") == 0
    finally:
        release.set()
        await asyncio.gather(*jobs, fetch)
    idle = await scrape(port)
    for lane in ("ask", "write", "fetch"):
        assert value(idle, "quotebot_lane_queue_depth", lane=lane) == 0
        assert value(idle, "quotebot_lane_running", lane=lane) == 0


async def test_off_by_default_and_a_taken_port_is_one_clear_error(harness: Harness) -> None:
    bot = harness.bot
    assert bot.settings.metrics.port == 0
    bot.start_monitoring()  # as serve() does
    harness.ignore.update(t for t in bot._background if t.get_name() == "quotebot-heartbeat")
    assert bot.metrics.port is None  # nothing listens

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        bot.settings = bot.settings.model_copy(update={"metrics": MetricsConfig(port=port)})
        with pytest.raises(InputError, match=rf"Cannot serve metrics on 127.0.0.1:{port}"):
            bot.start_monitoring()


def test_metrics_settings(tmp_path: Path) -> None:
    assert load_settings(env={}).metrics == MetricsConfig(port=0, host="127.0.0.1")
    config = tmp_path / "config.toml"
    config.write_text('[metrics]\nport = 9464\nhost = "0.0.0.0"\n')
    m = load_settings(config, env={}).metrics
    assert (m.port, m.host) == (9464, "0.0.0.0")
    for bad, words in (
        ("port = 70000", "Invalid setting metrics.port"),
        ('host = ""', "Invalid setting metrics.host"),
        ("path = '/x'", "Invalid setting metrics.path"),
    ):
        config.write_text(f"[metrics]\n{bad}\n")
        with pytest.raises(InputError, match=words):
            load_settings(config, env={})
    # The documented defaults parse to the defaults.
    example = Path(__file__).resolve().parents[2] / "config.example.toml"
    assert load_settings(example, env={}).metrics == MetricsConfig()


def test_ingest_counts_and_recording_without_a_server() -> None:
    m = Metrics()
    assert m.port is None
    m.answered("quote", 0.2)
    m.answered("may", 0.3)
    m.answered("nonsense", 0.1)  # anything unknown is an error
    assert m.registry.get_sample_value("quotebot_questions_total", {"outcome": "quoted"}) == 1
    assert m.registry.get_sample_value("quotebot_questions_total", {"outcome": "may"}) == 1
    assert m.registry.get_sample_value("quotebot_questions_total", {"outcome": "error"}) == 1
    m.ingested({"added": 2, "failed": 1}, 1.5)
    assert m.registry.get_sample_value("quotebot_ingest_total", {"status": "added"}) == 2
    assert m.registry.get_sample_value("quotebot_ingest_seconds_count") == 1
    assert ingest_counts(None) == {"added": 0, "replaced": 0, "unchanged": 0, "failed": 0}
    m.stop()  # not serving: nothing to stop
