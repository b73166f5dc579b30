"""Lanes: the bot's work off the event loop, kept apart so asking never queues behind writing.

- the **ask lane** (questions, autocomplete, list / show, feedback): quick reads, its own threads;
- the **write lane** (ingest, reindex, remove): one thread, so writes never crowd out the CPU;
- the **fetch lane** (URL ingest): downloads wait on the network here, not in the write lane.

Separate threads are not enough on their own: the model is one (its calls are serialised by the
embedder's lock) and a 1,000-sentence encode holds it, and the cores, for seconds. So the library's
embedder is wrapped: a write- or fetch-lane encode runs in small chunks (each about
`CHUNK_TARGET_S` long, sized from the measured rate) and, before each chunk, waits while any ask-lane
work is queued or running (at most `MAX_YIELD_S` at a time, so a stream of questions cannot starve
an upload). A question therefore waits for at most one chunk. Each chunk also reports how many
sentences it encoded to the calling job's `on_encoded` hook (upload progress).

`Depths` counts each lane's jobs waiting for a thread and running (the metrics endpoint's
`quotebot_lane_queue_depth` / `quotebot_lane_running` gauges).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

import numpy as np

from index.embedding import Embedder, EncodedTexts, TokenVectors
from index.errors import QuotebotError

CHUNK_TARGET_S = 0.1  # a background encode yields to questions this often
CHUNK_MIN, CHUNK_MAX, CHUNK_START = 4, 256, 16
MAX_YIELD_S = 1.0  # a background chunk waits at most this long for questions to finish

ASK, WRITE, FETCH = "ask", "write", "fetch"
LANES = (ASK, WRITE, FETCH)
_local = threading.local()
T = TypeVar("T")


def current_lane() -> str | None:
    """The lane of the calling thread (None outside the bot's lanes)."""
    return getattr(_local, "lane", None)


def _enter_lane(name: str) -> None:
    _local.lane = name


def lane_initializer(name: str) -> Callable[[], None]:
    """A ThreadPoolExecutor initializer that marks its threads as `name`'s."""

    def init() -> None:
        _enter_lane(name)

    return init


class Depths:
    """Jobs per lane waiting for a thread (`waiting`) and running (`running`), thread-safe; a job
    cancelled before it started (shutdown) stops counting as waiting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting = dict.fromkeys(LANES, 0)
        self._running = dict.fromkeys(LANES, 0)

    def submit(self, executor: Executor, lane: str, fn: Callable[[], T]) -> Future[T]:
        """`executor.submit(fn)`, counted under `lane`."""
        started = False

        def job() -> T:
            nonlocal started
            with self._lock:
                started = True
                self._waiting[lane] -= 1
                self._running[lane] += 1
            try:
                return fn()
            finally:
                with self._lock:
                    self._running[lane] -= 1

        def done(_: Future[T]) -> None:
            with self._lock:
                if not started:  # cancelled while queued
                    self._waiting[lane] -= 1

        with self._lock:
            self._waiting[lane] += 1
        try:
            future = executor.submit(job)
        except BaseException:
            with self._lock:
                self._waiting[lane] -= 1
            raise
        future.add_done_callback(done)
        return future

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        """(waiting, running) per lane, now."""
        with self._lock:
            return dict(self._waiting), dict(self._running)


class ShuttingDown(QuotebotError):
    """A background encode gave up at a chunk boundary because the bot is stopping (nothing of
    the batch being encoded was stored)."""


class Gate:
    """Counts ask-lane work (queued or running); background encodes wait while there is any, and
    give up (ShuttingDown) once the bot is stopping."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._asking = 0
        self.stopping = False

    def stop(self) -> None:
        with self._cond:
            self.stopping = True
            self._cond.notify_all()

    @property
    def asking(self) -> int:
        return self._asking

    def enter(self) -> None:
        with self._cond:
            self._asking += 1

    def leave(self, *_: object) -> None:
        with self._cond:
            self._asking -= 1
            if self._asking <= 0:
                self._asking = 0
                self._cond.notify_all()

    def wait_clear(self, timeout_s: float = MAX_YIELD_S) -> float:
        """Wait (up to `timeout_s`) until no ask-lane work is pending; the seconds waited."""
        t0 = time.monotonic()
        with self._cond:
            self._cond.wait_for(lambda: self._asking == 0 or self.stopping, timeout=timeout_s)
        if self.stopping:
            raise ShuttingDown(
                "quotebot is restarting, so this was not finished: please add it again in a minute."
            )
        return time.monotonic() - t0


def set_encoded_hook(hook: Callable[[int], None] | None) -> None:
    """In a lane thread: `hook(n)` is called after each chunk of n sentences this thread encodes."""
    _local.on_encoded = hook


class YieldingEmbedder:
    """Wraps the library's embedder: background lanes encode in chunks that yield to questions."""

    def __init__(self, inner: Embedder, gate: Gate) -> None:
        self.inner = inner
        self.gate = gate
        self.model_id = inner.model_id
        self.dim = inner.dim
        self._chunk = CHUNK_START

    def __getattr__(self, name: str) -> Any:  # anything else the real embedder offers
        return getattr(self.inner, name)

    @staticmethod
    def _background() -> bool:
        return current_lane() in (WRITE, FETCH)

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        if not self._background() or not texts:
            return self.inner.encode(texts, batch_size=batch_size)
        parts: list[np.ndarray] = []
        i = 0
        while i < len(texts):
            self.gate.wait_clear()
            n = self._chunk
            t0 = time.perf_counter()
            parts.append(self.inner.encode(texts[i : i + n], batch_size=batch_size))
            dt = time.perf_counter() - t0
            k = len(texts[i : i + n])
            i += k
            if k == n and dt > 0:  # a full chunk: size the next one from this one's rate
                self._chunk = max(CHUNK_MIN, min(CHUNK_MAX, round(CHUNK_TARGET_S * k / dt)))
            hook = getattr(_local, "on_encoded", None)
            if hook is not None:
                hook(k)
        return np.concatenate(parts)

    def encode_tokens(self, texts: list[str], *, batch_size: int = 64) -> list[TokenVectors]:
        if self._background():
            self.gate.wait_clear()
        return self.inner.encode_tokens(texts, batch_size=batch_size)

    def encode_states(self, texts: list[str], *, max_tokens: int, batch_size: int = 64) -> EncodedTexts:
        if self._background():
            self.gate.wait_clear()
        return self.inner.encode_states(texts, max_tokens=max_tokens, batch_size=batch_size)


def install(library: Any, gate: Gate) -> None:
    """Put a YieldingEmbedder for `gate` in front of the library's embedder (loading the model if
    it is not loaded yet; run_bot has warmed it up by then)."""

    def wrap(inner: Any) -> Any:
        if isinstance(inner, YieldingEmbedder):  # a bot restarted over the same library
            inner = inner.inner
        return YieldingEmbedder(inner, gate)

    library.wrap_embedder(wrap)
