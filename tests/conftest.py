"""Shared fixtures: a Library over the fake embedder, the real bundled model (loaded once), Documents."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from index.embedding import FakeEmbedder
from index.extract import Document
from index.library import Library, LibrarySettings

REPO = Path(__file__).resolve().parent.parent
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
