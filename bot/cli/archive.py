"""`quotebot export | import`: a collection's articles as JSON Lines (the format is bot/archive.py)."""

from __future__ import annotations

import argparse
from typing import TextIO

from bot.cli.common import collection_of
from bot.config import Settings


def cmd_export(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot import archive

    return archive.cmd_export(args, settings, out, collection_of(args))


def cmd_import(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot import archive

    return archive.cmd_import(args, settings, out, collection_of(args))
