"""What the command groups of the CLI share: the collection of `--guild`, the library, a progress bar,
untrusted text on one line (`flat`) and an error's message on one line (`error_line`), exit codes."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bot.config import Settings
from bot.safe_text import visible
from index.errors import InputError

LOCAL_COLLECTION = "local"
EXIT_USER = 1
EXIT_DOCTOR = 3


def collection_of(args: argparse.Namespace) -> str:
    g = getattr(args, "guild", None)
    if g is None:
        return LOCAL_COLLECTION
    if not str(g).isdigit():
        raise InputError(f"--guild must be a Discord guild id (digits), not {g!r}.")
    return str(g)


@contextmanager
def progress_bar(
    label: str, enabled: bool, unit: str = "sent"
) -> Iterator[Callable[[int, int], None] | None]:
    """A tqdm bar on a terminal, nothing otherwise."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bar: Any = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=label, unit=unit, file=sys.stderr, leave=False)
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


def open_library(settings: Settings) -> Any:
    from index.library import Library

    return Library(settings.library_settings())


def flat(text: str | None) -> str:
    """Untrusted text on one line: whitespace runs as one space, controls and bidi overrides escaped."""
    return visible(" ".join((text or "").split()), multiline=False)


_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)")


def error_line(e: BaseException) -> str:
    """An error's message on one line: SQLAlchemy's "[SQL: ...]" and "(Background on this error at:
    ...)" lines joined or dropped, controls and bidi overrides of echoed input escaped."""
    return flat(_BACKGROUND.sub("", str(e))) or e.__class__.__name__
