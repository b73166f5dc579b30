"""`quotebot eval`: score answers on a question set (same metrics as score.py)."""

from __future__ import annotations

import argparse
from typing import TextIO

from bot.config import Settings


def cmd_eval(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.evaluate import run_eval

    return run_eval(args, settings, out)
