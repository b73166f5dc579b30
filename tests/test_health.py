"""`quotebot health`: one line, exit 0 when the database, its schema and the index files are usable
(and, with --bot, the running bot's heartbeat is fresh and connected), exit 1 with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from index.embedding import FakeEmbedder
from index.health import HEARTBEAT_FILE, write_heartbeat
from index.library import Library
from index.settings import LibrarySettings
from index.types import Document
from tests.conftest import REPO, pg_schema


def health(data: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("QUOTEBOT_")}
    e.update(env or {})
    r = subprocess.run(
        [sys.executable, "-m", "bot", "--data", str(data), "health", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=e,
        timeout=120,
    )
    out = (r.stdout + r.stderr).strip()
    assert len(out.splitlines()) == 1 and "Traceback" not in out, out
    return r.returncode, out


def make(data: Path, url: str | None = None) -> None:
    lib = Library(LibrarySettings(data_dir=data, database_url=url), embedder=FakeEmbedder())
    lib.add_documents("local", [Document("Health checks answer in one line.", "Health")])
    lib.close()


def test_health_of_a_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "d"
    code, line = health(data)
    assert code == 1 and "no database" in line
    make(data)
    code, line = health(data)
    assert code == 0 and line.startswith("healthy") and "1 collections" in line
    (data / "index" / "local.faiss").write_bytes(b"garbage")
    code, line = health(data)
    assert code == 1 and "cannot be read" in line


def test_health_refuses_an_old_schema(tmp_path: Path) -> None:
    from alembic import command

    from index.storage import migrations
    from index.storage.database import make_engine

    data = tmp_path / "d"
    data.mkdir()
    engine = make_engine(f"sqlite:///{data / 'quotebot.db'}")
    with engine.begin() as conn:
        command.upgrade(migrations.alembic_config(conn), "0002")
    engine.dispose()
    code, line = health(data)
    assert code == 1 and "revision 0002" in line


def test_health_of_a_running_bot_reads_its_heartbeat(tmp_path: Path) -> None:
    data = tmp_path / "d"
    make(data)
    code, line = health(data, "--bot")
    assert code == 1 and "no bot heartbeat" in line
    write_heartbeat(data, connected=True, latency_s=0.042)
    code, line = health(data, "--bot")
    assert code == 0 and "bot connected" in line and "42 ms" in line
    write_heartbeat(data, connected=False, latency_s=None)
    code, line = health(data, "--bot")
    assert code == 1 and "not connected" in line
    hb = data / HEARTBEAT_FILE
    state = json.loads(hb.read_text())
    state.update(connected=True, at=time.time() - 600)
    hb.write_text(json.dumps(state))
    code, line = health(data, "--bot")
    assert code == 1 and "s old" in line, line


def test_health_on_postgresql_and_an_unreachable_server(tmp_path: Path) -> None:
    code, line = health(
        tmp_path / "x", env={"QUOTEBOT_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    )
    assert code == 1 and "unreachable" in line
    for url in pg_schema():
        make(tmp_path / "pg", url)
        code, line = health(tmp_path / "pg", env={"QUOTEBOT_DATABASE_URL": url})
        assert code == 0 and "healthy" in line, line
