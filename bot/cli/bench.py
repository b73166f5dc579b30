"""`quotebot bench`: quotebot against the raw limits of its own parts."""

from __future__ import annotations

import argparse
from typing import TextIO

from bot.config import Settings


def cmd_bench(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.bench import run_bench

    return run_bench(args, settings, out)
