"""The bot's Prometheus metrics, served at http://<[metrics] host>:<port>/metrics while `quotebot run`
runs (off by default: `[metrics] port = 0`).

Each QuoteBot has its own `Metrics` (its own CollectorRegistry, so nothing is global and two bots in
one process never mix). Counters and histograms move as the bot works:

- `quotebot_questions_total{outcome="quoted|may|declined|error"}` and `quotebot_answer_seconds`:
  every question asked (/ask, the message menu, a mention, an auto-answered post), timed from the
  moment it entered the ask lane to its answer (queue wait included). An auto-answered post the
  bot stays quiet on counts as declined; a question refused with an error reply (too long, no
  articles yet, a failure) counts as error.
- `quotebot_ingest_total{status="added|replaced|unchanged|failed"}` (articles) and
  `quotebot_ingest_seconds` (one per /articles add or refresh, fetch included).

Gauges are read when scraped (a custom collector; cheap): `quotebot_collection_articles{collection}`
(one grouped COUNT over the article table), `quotebot_lane_queue_depth{lane="ask|write|fetch"}` (jobs
waiting for a lane thread), `quotebot_lane_running{lane}` (jobs running) and
`quotebot_gateway_latency_seconds` (heartbeat round trip averaged over the shards; NaN while unknown).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot import lanes
from index.types import AddResult, BulkResult, RefreshResult

log = logging.getLogger("quotebot.metrics")

T = TypeVar("T")

OUTCOMES = {"quote": "quoted", "may": "may", "decline": "declined"}  # Answer.kind -> outcome label
ERROR = "error"
INGEST_STATUSES = ("added", "replaced", "unchanged", "failed")
ANSWER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
INGEST_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)


def ingest_counts(result: object) -> dict[str, int]:
    """Articles per status in what an add / refresh call returned."""
    out = dict.fromkeys(INGEST_STATUSES, 0)
    if isinstance(result, AddResult):
        out[result.status] += 1
    elif isinstance(result, list):
        for r in result:
            if isinstance(r, AddResult):
                out[r.status] += 1
    elif isinstance(result, BulkResult):
        out.update(result.counts())
    elif isinstance(result, RefreshResult):
        out["replaced"] = len(result.changed)
        out["unchanged"] = len(result.unchanged)
        out["failed"] = len(result.failed)
    return out


def article_counts(library: Any) -> dict[str, int]:
    """Articles per collection (one grouped COUNT)."""
    return dict(library.store.article_counts())


class _Scraped(Collector):
    """Gauges computed at scrape time (in the HTTP server's thread)."""

    def __init__(
        self,
        depths: Callable[[], tuple[Mapping[str, int], Mapping[str, int]]],
        latency: Callable[[], float | None],
        articles: Callable[[], Mapping[str, int]] | None,
    ) -> None:
        self.depths, self.latency, self.articles = depths, latency, articles

    def collect(self) -> Iterator[Metric]:
        waiting, running = self.depths()
        queue = GaugeMetricFamily(
            "quotebot_lane_queue_depth", "Jobs waiting for a thread in each work lane.", labels=["lane"]
        )
        busy = GaugeMetricFamily("quotebot_lane_running", "Jobs running in each work lane.", labels=["lane"])
        for lane in lanes.LANES:
            queue.add_metric([lane], waiting.get(lane, 0))
            busy.add_metric([lane], running.get(lane, 0))
        yield queue
        yield busy
        lat = self.latency()
        yield GaugeMetricFamily(
            "quotebot_gateway_latency_seconds",
            "Discord gateway heartbeat round trip (average over shards; NaN while unknown).",
            value=math.nan if lat is None else lat,
        )
        sizes = GaugeMetricFamily(
            "quotebot_collection_articles",
            "Articles stored per collection (Discord server).",
            labels=["collection"],
        )
        if self.articles is not None:
            try:
                for name, n in sorted(self.articles().items()):
                    sizes.add_metric([name], n)
            except Exception as e:  # database away (or closed at shutdown): the other metrics still come
                log.warning("metrics: could not count articles: %s", e)
        yield sizes

    def describe(self) -> Iterator[Metric]:
        return iter(())  # computed at scrape time: nothing to check at registration


class Metrics:
    """One bot's metrics and, when started, the HTTP endpoint serving them."""

    def __init__(
        self,
        *,
        depths: Callable[[], tuple[Mapping[str, int], Mapping[str, int]]] = lambda: ({}, {}),
        latency: Callable[[], float | None] = lambda: None,
        articles: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.questions = Counter(
            "quotebot_questions", "Questions answered, by outcome.", ["outcome"], registry=self.registry
        )
        for outcome in (*OUTCOMES.values(), ERROR):
            self.questions.labels(outcome=outcome)  # every series from the start, at 0
        self.answer_seconds = Histogram(
            "quotebot_answer_seconds",
            "Seconds from a question entering the ask lane to its answer.",
            buckets=ANSWER_BUCKETS,
            registry=self.registry,
        )
        self.ingests = Counter(
            "quotebot_ingest", "Articles ingested, by status.", ["status"], registry=self.registry
        )
        for status in INGEST_STATUSES:
            self.ingests.labels(status=status)
        self.ingest_seconds = Histogram(
            "quotebot_ingest_seconds",
            "Seconds one /articles add or refresh took (download included).",
            buckets=INGEST_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Scraped(depths, latency, articles))
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- recording ----------------------------------------------------------------------------------

    def answered(self, kind: str, seconds: float) -> None:
        """One question: `kind` is Answer.kind ("quote", "may", "decline") or "error"."""
        self.questions.labels(outcome=OUTCOMES.get(kind, ERROR)).inc()
        self.answer_seconds.observe(seconds)

    def ingested(self, counts: Mapping[str, int], seconds: float) -> None:
        """One add / refresh call: articles per status, and how long it took."""
        for status in INGEST_STATUSES:
            if counts.get(status):
                self.ingests.labels(status=status).inc(counts[status])
        self.ingest_seconds.observe(seconds)

    async def answering(self, call: Awaitable[T]) -> T:
        """Await a question's answer (an Answer, or None for an auto-answer left unsaid) and
        record its outcome and time; an exception counts as "error" and goes on."""
        t0 = time.perf_counter()
        try:
            answer = await call
        except Exception:
            self.answered(ERROR, time.perf_counter() - t0)
            raise
        kind = getattr(answer, "kind", "decline")
        self.answered(kind, time.perf_counter() - t0)
        return answer

    async def ingesting(self, call: Awaitable[T]) -> T:
        """Await an add / refresh call and record its articles by status and its time; an
        exception counts as one failed article and goes on."""
        t0 = time.perf_counter()
        try:
            result = await call
        except Exception:
            self.ingested({"failed": 1}, time.perf_counter() - t0)
            raise
        self.ingested(ingest_counts(result), time.perf_counter() - t0)
        return result

    # -- the endpoint -------------------------------------------------------------------------------

    @property
    def port(self) -> int | None:
        """The port the endpoint listens on (None when not serving)."""
        return None if self._server is None else int(self._server.server_port)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Start serving /metrics on host:port (0 = any free port) in a daemon thread; the port."""
        if self._server is not None:
            return int(self._server.server_port)
        self._server, self._thread = start_http_server(port, host, registry=self.registry)
        log.info("metrics at http://%s:%d/metrics", host, self._server.server_port)
        return int(self._server.server_port)

    def stop(self) -> None:
        """Stop the endpoint (its port is free again when this returns)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
