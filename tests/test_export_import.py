"""`quotebot export` / `quotebot import`: a round trip between two data directories keeps titles, exact
texts, source ids and dates, answers quote the same sentences, and re-importing changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.embedding import FakeEmbedder
from index.library import Library
from index.settings import LibrarySettings
from tests.conftest import FAKE_MODEL, fake_model_cli, make_doc, sample_docs

# Texts a careless exporter would damage: non-ASCII, emoji, CRLF, a line separator, tabs, edge spaces.
TRICKY = (
    "  Ünïcödé façades\tglow at dusk 😀.\r\nThe Moon rises over the harbour at nine.\u2028"
    'A "quoted" word and a back\\slash stay intact.  '
)
QUESTIONS = [
    "How many hours of sunlight do tomatoes need?",
    "What is the largest planet in the Solar System?",
    "How long should you knead the dough?",
    "When does the Moon rise over the harbour?",
]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run `quotebot --data DIR ...` in-process with the fake embedder: (exit code, stdout, stderr)."""
    return fake_model_cli(tmp_path, monkeypatch, capsys)


def library(data: Path) -> Library:
    return Library(LibrarySettings(data_dir=data, model=FAKE_MODEL, threshold=0.0), embedder=FakeEmbedder())


def fill(data: Path, collection: str) -> None:
    lib = library(data)
    try:
        lib.add_documents(collection, sample_docs(), added_by="alice")
        lib.add_documents(collection, [make_doc(TRICKY, "Harbour notes")], added_by="bob")  # no source id
    finally:
        lib.close()


def snapshot(data: Path, collection: str) -> dict[str, tuple[str, str, str | None, str, str | None, str]]:
    """source id -> (title, text, url, kind, added_by, created_at)."""
    lib = library(data)
    try:
        out = {}
        for info in lib.articles(collection):
            _, text = lib.article_text(collection, info.id)
            out[info.source_id or str(info.id)] = (
                info.title,
                text,
                info.url,
                info.kind,
                info.added_by,
                info.created_at,
            )
        return out
    finally:
        lib.close()


def answers(data: Path, collection: str) -> list[tuple[str | None, str | None, int | None, int | None]]:
    lib = library(data)
    try:
        out = []
        for q in QUESTIONS:
            best = lib.ask(collection, q).best
            assert best is not None
            out.append((best.text, best.article.title, best.start, best.end))
        return out
    finally:
        lib.close()


@pytest.mark.parametrize("guild", [None, "123456789012345678"])
def test_round_trip_between_two_data_dirs(cli, tmp_path: Path, guild: str | None) -> None:  # type: ignore[no-untyped-def]
    collection = guild or "local"
    where = ["--guild", guild] if guild else []
    a, b = tmp_path / "a", tmp_path / "b"
    fill(a, collection)

    code, exported, err = cli(a, "export", *where)
    assert code == 0, err
    assert "exported 4 articles" in err
    lines = exported.splitlines()
    assert len(lines) == 4 and all(line.isascii() for line in lines)
    records = [json.loads(line) for line in lines]
    assert set(records[0]) == {"id", "title", "text", "url", "kind", "added_by", "created_at"}
    dump = tmp_path / "export.jsonl"
    dump.write_text(exported, encoding="utf-8")

    code, out, err = cli(b, "import", str(dump), *where)
    assert code == 0, err
    assert "4 added, 0 replaced, 0 unchanged" in out

    before, after = snapshot(a, collection), snapshot(b, collection)
    assert after == before  # titles, texts, urls, kinds, authors, dates; keyed by source id
    tricky_id = next(k for k, v in before.items() if v[0] == "Harbour notes")
    assert after[tricky_id][1].encode("utf-8") == TRICKY.encode("utf-8")
    assert answers(b, collection) == answers(a, collection)

    # Idempotent: the same file again changes nothing.
    code, out, err = cli(b, "import", str(dump), *where)
    assert code == 0, err
    assert "0 added, 0 replaced, 4 unchanged" in out
    assert snapshot(b, collection) == before

    # Exporting the copy gives the same records (the article without a source id kept its old id as one).
    code, again, _ = cli(b, "export", *where)
    assert [json.loads(x) for x in again.splitlines()] == records


def test_collections_stay_apart(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = tmp_path / "a"
    fill(a, "local")
    code, out, _ = cli(a, "export", "--guild", "42")
    assert code == 0 and out == ""
    dump = tmp_path / "local.jsonl"
    dump.write_text(cli(a, "export")[1], encoding="utf-8")
    code, out, err = cli(a, "import", str(dump), "--guild", "42")
    assert code == 0, err
    assert "4 added" in out
    assert snapshot(a, "42") == snapshot(a, "local")


def test_a_bad_line_is_reported_and_the_rest_imported(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = json.dumps({"id": "kites", "title": "Kites", "text": "Kites fly best in steady winds."})
    dump = tmp_path / "bad.jsonl"
    dump.write_text(good + "\n" + json.dumps({"id": "x", "title": "No text"}) + "\n", encoding="utf-8")
    b = tmp_path / "b"
    code, out, err = cli(b, "import", str(dump))
    assert code == 1 and "1 added" in out and "1 records refused" in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("quotebot:") and ":2:" in lines[0] and '"text"' in lines[0]
    assert list(snapshot(b, "local")) == ["kites"]
    code, _, err = cli(b, "import", str(tmp_path / "missing.jsonl"))
    assert code == 1 and "Cannot read" in err
