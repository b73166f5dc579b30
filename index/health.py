"""`quotebot health`: one line and an exit code for a container's HEALTHCHECK or a monitor.

Checks, without changing anything (no migration, no index rebuild): the database answers, its
schema is at this code's head revision, every collection's index file that exists can be read, and
(for a running bot, `bot=True`) the bot's heartbeat file is fresh and says the gateway is connected.
The bot writes that file (`<data_dir>/bot-health.json`) every few seconds while it runs.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from index.errors import StoreError
from index.storage import migrations
from index.storage.database import probe
from index.storage.vectors import VectorIndex, index_file

HEARTBEAT_FILE = "bot-health.json"
HEARTBEAT_MAX_AGE_S = 90.0


@dataclass(frozen=True)
class Health:
    ok: bool
    line: str


def write_heartbeat(data_dir: Path, *, connected: bool, latency_s: float | None) -> None:
    """Record the bot's state for `health --bot` (atomically: a reader never sees half a file)."""
    path = Path(data_dir) / HEARTBEAT_FILE
    body = json.dumps(
        {"pid": os.getpid(), "connected": connected, "at": time.time(), "latency_s": latency_s}
    ).encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".bot-health.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check(
    db_url: str, data_dir: Path, *, bot: bool = False, max_age_s: float = HEARTBEAT_MAX_AGE_S
) -> Health:
    if db_url.startswith("sqlite:///"):
        db_file = Path(db_url.removeprefix("sqlite:///"))
        if not db_file.exists():
            return Health(
                False, f"unhealthy: no database at {db_file} yet (quotebot creates it on first use)"
            )
    try:
        found = probe(db_url)
    except StoreError as e:
        return Health(False, f"unhealthy: {e}")
    revs, collections = found.revisions, found.collections
    head = migrations.head_revision()
    if revs != {head}:
        have = ", ".join(sorted(revs)) or "none"
        return Health(False, f"unhealthy: database schema at revision {have}, this quotebot needs {head}")
    index_dir = Path(data_dir) / "index"
    for c in collections:
        path = index_file(index_dir, c)
        if path.exists() and VectorIndex.load(path) is None:
            return Health(False, f"unhealthy: index file {path} cannot be read")
    parts = [f"database ok (schema {head}, {len(collections)} collections)", "indexes readable"]
    if bot:
        hb = Path(data_dir) / HEARTBEAT_FILE
        try:
            state = json.loads(hb.read_text())
            age = time.time() - float(state["at"])
            connected = bool(state["connected"])
        except (OSError, ValueError, KeyError, TypeError):
            return Health(False, f"unhealthy: no bot heartbeat in {hb} (is `quotebot run` running?)")
        if age > max_age_s:
            return Health(False, f"unhealthy: the bot's last heartbeat is {age:.0f} s old")
        if not connected:
            return Health(
                False, f"unhealthy: the bot is not connected to Discord (heartbeat {age:.0f} s ago)"
            )
        lat = state.get("latency_s")
        parts.append(
            f"bot connected (heartbeat {age:.0f} s ago"
            + (f", gateway latency {float(lat) * 1000:.0f} ms)" if isinstance(lat, int | float) else ")")
        )
    return Health(True, "healthy: " + ", ".join(parts))
