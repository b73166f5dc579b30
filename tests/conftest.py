"""Shared fixtures: a Library over the fake embedder, the real bundled model (loaded once), Documents."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.embedding import FakeEmbedder
from index.library import Library
from index.settings import LibrarySettings
from index.types import Document

REPO = Path(__file__).resolve().parent.parent
PG_SERVER = "postgres@127.0.0.1:5432/test"
EXAMPLE_ARTICLE = REPO / "examples" / "north-korea-artillery-shells.txt"

GARDEN = (
    "Tomatoes need at least six hours of direct sunlight every day. "
    "Water the plants deeply twice a week rather than a little every day. "
    "Mulch keeps the soil moist and stops weeds from growing around the stems. "
    "Pinch out side shoots so that the plant puts its energy into fruit."
)
ASTRONOMY = (
    "The Moon orbits the Earth once every 27.3 days. "
    "Jupiter is the largest planet in the Solar System. "
    "Saturn's rings are made mostly of ice and rock. "
    "A light year is the distance light travels in one year."
)
BAKING = (
    "Bread rises because yeast produces carbon dioxide gas. "
    "Knead the dough for ten minutes until it feels smooth and elastic. "
    "Bake the loaf at 220 degrees Celsius for about thirty minutes. "
    "Let the bread cool on a wire rack before slicing it."
)


def make_doc(
    text: str,
    title: str = "Untitled",
    *,
    url: str | None = None,
    source_id: str | None = None,
    kind: str = "text",
) -> Document:
    """A Document as extraction would produce it."""
    return Document(text=text, title=title, url=url, source_id=source_id, kind=kind)


def sample_docs() -> list[Document]:
    """Three small articles on unrelated topics, with source ids and urls."""
    return [
        make_doc(GARDEN, "Growing tomatoes", url="https://example.org/tomatoes", source_id="garden"),
        make_doc(ASTRONOMY, "Planets and moons", url="https://example.org/space", source_id="space"),
        make_doc(BAKING, "Baking bread", url="https://example.org/bread", source_id="bread"),
    ]


# The decline threshold for libraries on the fake embedder: its hashed vectors score lower than the
# real model's (the shipped threshold is fitted to those), and this value separates the sample
# articles' on-topic questions from unrelated ones.
FAKE_THRESHOLD = 0.1


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def fake_library(tmp_path: Path, fake_embedder: FakeEmbedder) -> Iterator[Library]:
    lib = Library(LibrarySettings(data_dir=tmp_path), embedder=fake_embedder)
    yield lib
    lib.close()


@pytest.fixture(scope="session")
def real_embedder():  # type: ignore[no-untyped-def]
    """The bundled sentence-transformers model, loaded once per session (offline)."""
    from index.embedding import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


def pg_schema() -> Iterator[str]:
    """A fresh schema on the test server (dropped afterwards), so tests never see each other's rows.

    Skips when PostgreSQL is unreachable, fails instead when QUOTEBOT_REQUIRE_POSTGRES is set (CI).
    """
    psycopg = pytest.importorskip(
        "psycopg", reason="psycopg is not installed (pip install 'psycopg[binary]')"
    )
    name = f"qb_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = psycopg.connect(f"postgresql://{PG_SERVER}", connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as e:
        reason = f"PostgreSQL is not reachable at {PG_SERVER}: {str(e).strip().splitlines()[0]}"
        if os.environ.get("QUOTEBOT_REQUIRE_POSTGRES"):
            pytest.fail(reason + " (QUOTEBOT_REQUIRE_POSTGRES is set, as in CI)")
        pytest.skip(reason)
    with conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
        try:
            yield f"postgresql+psycopg://{PG_SERVER}?options=-csearch_path%3D{name}"
        finally:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL on each backend: a SQLite file, and a throwaway PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        yield from pg_schema()


FAKE_MODEL = "fake-hash-64"


def fake_model_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Prepare in-process `quotebot` runs with the fake embedder (in a clean working directory whose
    config.toml quotes whatever ranks first: the shipped judge was not fitted on the fake embedder).
    Returns run(data_dir, *argv) -> (exit code, stdout, stderr)."""
    import io

    import index.embedding
    from bot.cli import main

    monkeypatch.setattr(
        index.embedding,
        "SentenceTransformerEmbedder",
        lambda model_name=FAKE_MODEL, **kw: FakeEmbedder(model_id=model_name),
    )
    for var in ("QUOTEBOT_DATA", "QUOTEBOT_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("QUOTEBOT_MODEL", FAKE_MODEL)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "config.toml").write_text("[index]\nthreshold = 0.0\n")

    def run(data: Path, *argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        out = io.StringIO()
        code = main(["--data", str(data), *argv], out=out)
        return code, out.getvalue(), capsys.readouterr().err

    return run
