"""`quotebot bench`: quotebot against the raw limits of its own parts, measured in one run on the same data.

The measuring is index/evaluation/bench.py (its docstring lists the parts); this module reads the
options, prints the header line, then the table and, last, the machine-readable `BENCH key=value ...`
line. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, TextIO

from bot.config import Settings

if TYPE_CHECKING:
    from index.evaluation.bench_report import Report


def cmd_bench(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    return run_bench(args, settings, out)


def run_bench(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from index.evaluation import bench

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    quick = bool(getattr(args, "quick", False))
    skip = {s.strip() for s in str(getattr(args, "skip", "") or "").split(",") if s.strip()}
    bench.check_parts(skip)
    report = bench.Report()
    print(bench.environment(quick, report), file=out)
    bench.measure(settings.library_settings(), report, quick=quick, skip=skip)
    render(report, out)
    return 0


def render(report: Report, out: TextIO) -> None:
    """The table (quotebot vs raw / peer, goals met), the notes, then the BENCH line."""
    from index.evaluation.bench_report import Row

    head = Row("part", "measure", "quotebot", "raw/peer", "ratio", "goal", "met")
    cols = [head, *report.rows]
    fields = ("part", "measure", "quotebot", "other", "ratio", "goal", "met")
    widths = [max(len(getattr(r, f)) for r in cols) for f in fields]

    def line(r: Row) -> str:
        return "  ".join(getattr(r, f).ljust(w) for f, w in zip(fields, widths, strict=True)).rstrip()

    print(line(head), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in report.rows:
        print(line(r), file=out)
    for n in report.notes:
        print(f"note: {n}", file=out)
    print("BENCH " + " ".join(f"{k}={v}" for k, v in report.keys.items()), file=out)
