"""The benchmark's table (`Report`: rows of quotebot vs the raw / peer figure, goals, the BENCH keys)
and its timing helpers. bot/cli/bench.py renders the table; progress goes to stderr."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

COLLECTION = "bench"  # the benchmark's library collection (in a throwaway data dir)


def progress(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


@dataclass
class Row:
    part: str
    measure: str
    quotebot: str
    other: str = ""
    ratio: str = ""
    goal: str = ""
    met: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def row(
        self,
        part: str,
        measure: str,
        mine: float | str,
        other: float | str | None = None,
        *,
        fmt: str = "{:.3f}",
        goal: str = "",
        ok: bool | None = None,
        ratio: float | None = None,
    ) -> None:
        def f(v: float | str | None) -> str:
            if v is None:
                return ""
            return v if isinstance(v, str) else fmt.format(v)

        if ratio is None and isinstance(mine, float | int) and isinstance(other, float | int) and other:
            ratio = float(mine) / float(other)
        self.rows.append(
            Row(
                part,
                measure,
                f(mine),
                f(other),
                "" if ratio is None else f"{ratio:.2f}",
                goal,
                "" if ok is None else ("yes" if ok else "NO"),
            )
        )

    def key(self, name: str, value: float | int | str) -> None:
        if isinstance(value, float):
            value = f"{value:.4g}" if math.isfinite(value) else "nan"
        self.keys[name] = str(value)


def median_ms(xs: Sequence[float]) -> float:
    return float(np.median(xs)) * 1000 if len(xs) else math.nan


def p95_ms(xs: Sequence[float]) -> float:
    return float(np.percentile(xs, 95)) * 1000 if len(xs) else math.nan


def rss_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def cycle(items: Sequence[str], n: int) -> list[str]:
    return [items[i % len(items)] for i in range(n)] if items else []
