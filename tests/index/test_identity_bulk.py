"""Articles have identities (issue 13): an edited file, page or paste added again replaces the old
one (its old text never quoted again), the same text is a no-op; folders and zip archives ingest in
bulk with one progress count, and hostile archives change nothing."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.embedding import FakeEmbedder
from index.errors import InputError
from index.ingest.sources import canonical_url, file_key, paste_key
from index.library import Library
from index.settings import LibrarySettings
from tests.index.test_extract import PDF_PAGES, make_pdf

C = "local"


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[Library]:
    library = Library(LibrarySettings(data_dir=tmp_path / "data", threshold=0.0), embedder=FakeEmbedder())
    yield library
    library.close()


def quoted(lib: Library, question: str) -> str:
    ans = lib.ask(C, question)
    assert ans.quote is not None
    return ans.quote.text


def test_canonical_urls_drop_what_does_not_name_the_page() -> None:
    a = canonical_url("HTTPS://Example.COM:443/a/b?utm_source=x&id=3&fbclid=y#section")
    assert a == "https://example.com/a/b?id=3"
    assert canonical_url("http://example.com") == "http://example.com/"
    assert canonical_url("http://example.com:8080/x") == "http://example.com:8080/x"
    assert len(canonical_url("https://example.com/" + "a" * 600)) <= 512


def test_paste_keys_come_from_titles() -> None:
    assert paste_key("Server Rules!") == paste_key("server rules") == "paste:server-rules"
    assert paste_key("") is None and paste_key(None) is None


def test_an_edited_file_ingested_again_replaces_the_old_one(
    lib: Library, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    f = tmp_path / "notes.txt"
    f.write_text("The ferry leaves at seven in the morning. Tickets cost four euros.")
    [first] = lib.add_file(C, Path("notes.txt"))
    assert first.status == "added" and first.article.source_id == "notes.txt"
    assert [r.status for r in lib.add_file(C, f)] == ["unchanged"]  # same file by another path
    f.write_text("The ferry leaves at nine in the morning. Tickets cost six euros.")
    [second] = lib.add_file(C, f)
    assert second.status == "replaced"
    assert [a.source_id for a in lib.articles(C)] == ["notes.txt"]
    assert "nine" in quoted(lib, "When does the ferry leave?")
    for q in ("When does the ferry leave at seven?", "Do tickets cost four euros?"):
        ans = lib.ask(C, q)
        assert all("seven" not in x.text and "four" not in x.text for x in [ans.best, *ans.related] if x)


def test_a_pasted_text_under_the_same_title_replaces_and_is_stored_exactly(lib: Library) -> None:
    rules = (
        "Server rules\n"
        "1. Be kind to each other.\n"
        "Click here to verify your account in #verify before posting.\n"
        "Subscribe to the patch notes role to get pinged on updates.\n"
    )
    first = lib.add_text(C, rules, title="Server rules")
    assert first.status == "added" and first.article.source_id == "paste:server-rules"
    assert lib.add_text(C, rules, title="Server rules").status == "unchanged"
    second = lib.add_text(C, rules.replace("kind", "patient"), title="Server Rules")
    assert second.status == "replaced" and lib.count(C) == 1
    # Two pastes without titles are two articles.
    lib.add_text(C, "An untitled note about kites.")
    lib.add_text(C, "Another untitled note about boats.")
    assert lib.count(C) == 3


def write_folder(root: Path, n: int) -> dict[str, str]:
    """n files of mixed kinds, some in subfolders, plus files a folder ingest must skip."""
    made: dict[str, str] = {}
    for i in range(n):
        sub = root / f"part{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        word = f"topic{i}x"
        kind = i % 5
        if kind == 0:
            p = sub / f"a{i}.txt"
            p.write_text(f"The {word} plain note says hello number {i}.")
        elif kind == 1:
            p = sub / f"b{i}.md"
            p.write_text(f"# Heading {i}\n\nThe {word} markdown page explains item {i}.\n")
        elif kind == 2:
            p = sub / f"c{i}.html"
            p.write_text(
                f"<html><head><title>Page {i}</title></head><body><article><p>The {word} web page "
                f"describes thing {i} in some detail for readers.</p></article></body></html>"
            )
        elif kind == 3:
            p = sub / f"d{i}.jsonl"
            p.write_text(
                json.dumps({"id": f"rec-{i}", "title": f"Rec {i}", "text": f"The {word} record {i}."})
            )
        else:
            p = sub / f"e{i}.pdf"
            p.write_bytes(make_pdf([[f"The {word} pdf document {i} is here."]]))
        made[word] = str(p.relative_to(root))
    (root / ".hidden").mkdir()
    (root / ".hidden" / "secret.txt").write_text("Hidden files are never ingested.")
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    return made


def test_a_folder_of_200_mixed_files_ingests_with_one_progress_count(lib: Library, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    made = write_folder(root, 200)
    seen: list[tuple[int, int]] = []
    res = lib.add_folder(C, root, progress=lambda d, t: seen.append((d, t)))
    assert res.failed == [] and res.counts()["added"] == 200
    assert seen[-1] == (200, 200) and all(t == 200 for _, t in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    keys = {a.source_id for a in lib.articles(C)}
    assert "part1/b1.md" in keys and "rec-3" in keys and not any("secret" in (k or "") for k in keys)
    for word in ("topic7x", "topic12x", "topic199x"):
        assert word in quoted(lib, f"What does the {word} say?")
    # Again: nothing changes; an edited file is replaced.
    (root / made["topic10x"]).write_text("The topic10x plain note now says goodbye.")
    again = lib.add_folder(C, root)
    assert again.counts() == {"added": 0, "replaced": 1, "unchanged": 199, "failed": 0}
    # --glob
    only_md = lib.add_folder(C, root, glob="**/*.md")
    assert len(only_md.added) == 40


def test_a_folder_with_an_unreadable_file_adds_the_others(lib: Library, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "good.txt").write_text("Good files are added even when a neighbour is broken.")
    (root / "bad.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    (root / "empty.md").write_text("")
    res = lib.add_folder(C, root)
    assert [n for n, _ in res.added] == ["good.txt"]
    assert sorted(n for n, _ in res.failed) == ["bad.pdf", "empty.md"]


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_a_zip_archive_adds_its_files_keyed_by_member_path(lib: Library) -> None:
    data = make_zip(
        {
            "guide/intro.md": b"# Intro\n\nThe lighthouse keeper climbs ninety steps each night.\n",
            "guide/faq.txt": b"The lighthouse lamp turns twice a minute.",
            "manual.pdf": make_pdf(PDF_PAGES),
            "__MACOSX/._intro.md": b"junk",
            "logo.png": b"\x89PNG",
        }
    )
    res = lib.add_zip(C, data, "handbook.zip")
    assert sorted(n for n, _ in res.added) == [
        "handbook.zip/guide/faq.txt",
        "handbook.zip/guide/intro.md",
        "handbook.zip/manual.pdf",
    ]
    assert "ninety" in quoted(lib, "How many steps does the lighthouse keeper climb?")
    assert lib.add_zip(C, data, "handbook.zip").counts()["unchanged"] == 3


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"../escape.txt": b"Outside the root."}, "unsafe path"),
        ({"/etc/passwd.txt": b"Absolute path."}, "unsafe path"),
        ({f"f{i}.txt": b"Many files." for i in range(1_001)}, "at most 1,000"),
    ],
)
def test_hostile_archives_are_refused_and_change_nothing(
    lib: Library, members: dict[str, bytes], message: str
) -> None:
    lib.add_text(C, "A stored article stays.", title="keep")
    before = lib.store.counts(C)
    with pytest.raises(InputError, match=message):
        lib.add_zip(C, make_zip(members), "bad.zip")
    assert lib.store.counts(C) == before


def test_a_zip_bomb_is_refused_while_unpacking(tmp_path: Path) -> None:
    lib = Library(
        LibrarySettings(data_dir=tmp_path / "d", max_article_bytes=1_000_000), embedder=FakeEmbedder()
    )
    try:
        bomb = make_zip({"big.txt": b"a" * 50_000_000})  # 50 MB of one letter: ~50 KB zipped
        assert len(bomb) < 200_000
        with pytest.raises(InputError, match=r"over 1,000,000 bytes|unpacks to"):
            lib.add_zip(C, bomb, "bomb.zip")
        assert lib.count(C) == 0
    finally:
        lib.close()


def test_file_keys_are_relative_to_the_root_or_the_working_directory(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    f = tmp_path / "a" / "b.txt"
    f.write_text("x")
    assert file_key(f, tmp_path) == "a/b.txt"
    assert file_key(Path("a/b.txt")) == file_key(f) == "a/b.txt"


def test_a_call_may_bring_its_own_thresholds(lib: Library) -> None:
    lib.add_text(C, "The ferry leaves at seven in the morning.", title="ferry")
    q = "When does the ferry leave?"
    assert lib.ask(C, q).quote is not None  # the library's threshold: 0
    # Above the confident threshold, the library's own "may answer" threshold (here 0) still quotes.
    may = lib.ask(C, q, threshold=1.01)
    assert may.kind == "may" and may.quote is not None and not may.confident
    strict = lib.ask(C, q, threshold=1.01, may_threshold=1.01)
    assert strict.quote is None and strict.best is not None
    many = lib.ask_many(C, [q, q], threshold=1.01, may_threshold=1.01)
    assert [a.quote is None for a in many] == [True, True]


def test_a_pdf_quote_knows_its_page(lib: Library, tmp_path: Path) -> None:
    pdf = tmp_path / "study.pdf"
    pdf.write_bytes(make_pdf(PDF_PAGES))
    lib.add_file(C, pdf)
    second = lib.ask(C, "What does the second page begin a paragraph about?")
    assert second.quote is not None and "second page" in second.quote.text and second.quote.page == 2
    first = lib.ask(C, "What does the quick brown fox jump over?")
    assert first.quote is not None and "fox" in first.quote.text and first.quote.page == 1
    lib.add_text(C, "Plain pasted text has no pages at all.", title="plain")
    plain = lib.ask(C, "What has no pages at all?")
    assert plain.quote is not None and plain.quote.page is None
