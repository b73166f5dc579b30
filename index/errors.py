"""User-facing failures of the index package, written for people to read.

    QuotebotError                 base class; str(e) is a message fit for a user
    ├── InputError                the input cannot be used (empty, binary, too large, malformed)
    │   └── UnsupportedFormat     a file type or content type we do not read
    ├── FetchError                a URL could not be fetched safely (blocked address, timeout, size)
    ├── NotFound                  no such article in this collection
    └── StoreError                the database or index is unusable (wrong schema, corrupt file)

"No good answer" is not an error: `Library.ask` returns an `Answer` whose `quote` is None.
"""

from __future__ import annotations

import errno


class QuotebotError(Exception):
    """Base of every user-facing failure; the message is shown to the user as is."""


class InputError(QuotebotError):
    """The input cannot be turned into an article."""


class UnsupportedFormat(InputError):
    """A file or content type quotebot does not read."""


class FetchError(QuotebotError):
    """A URL could not be fetched safely. `status`: the HTTP status when the site answered with an
    error (404, 410: the page is gone)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(QuotebotError):
    """No such article (or collection) here."""


class StoreError(QuotebotError):
    """The database or the vector index cannot be used."""


def os_reason(e: OSError) -> str:
    """An operating-system failure in a few words ("the disk is full", "Permission denied")."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    return e.strerror or str(e)
