"""Hostile input: every bad upload or question fails with a clear QuotebotError and changes nothing;
what is accepted is stored sanely (titles cleaned, giant lines cut into quotable sentences)."""

from __future__ import annotations

import time
import unicodedata
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from index.errors import InputError, QuotebotError, UnsupportedFormat
from index.ingest.sentences import MAX_SENTENCE_CHARS
from index.library import Library
from index.settings import LibrarySettings
from index.storage.models import Question
from index.types import Document
from tests.conftest import sample_docs
from tests.index.test_extract import PDF_PAGES, encrypt_pdf, make_pdf, pdf_from_objects

C = "local"


def _open(path: Path) -> Library:
    from index.embedding import FakeEmbedder

    return Library(LibrarySettings(data_dir=path, threshold=0.0), embedder=FakeEmbedder())


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Library]:
    library = _open(tmp_path_factory.mktemp("hostile"))
    library.add_documents(C, sample_docs())
    yield library
    library.close()


def snapshot(lib: Library) -> tuple[object, ...]:
    """Everything a failed add must leave alone: SQL counts, article ids, questions, the index file."""
    path = lib.settings.index_dir / f"{C}.faiss"
    with lib.store.session() as s:
        questions = len(s.exec(select(Question.id)).all())
    return (
        lib.store.counts(),
        [a.id for a in lib.articles(C)],
        questions,
        path.read_bytes() if path.exists() else None,
        lib.shelf(C).size,
    )


def _deep_html(depth: int) -> bytes:
    return (
        "<html><body>" + "<div>" * depth + "Deep text here." + "</div>" * depth + "</body></html>"
    ).encode()


HOSTILE_UPLOADS = [
    pytest.param(b"", "a.txt", "empty", id="empty"),
    pytest.param(b" \n\t\r\n  \xc2\xa0 ", "a.txt", "empty|article text", id="whitespace-only"),
    pytest.param(bytes(range(256)) * 64, "a.txt", "binary", id="binary-renamed-txt"),
    pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(2000), "photo.txt", "PNG", id="png-renamed-txt"),
    pytest.param(b"\x7fELF\x02\x01\x01" + bytes(500), "notes.md", "program", id="elf-renamed-md"),
    pytest.param(b"Caf\xe9 cr\xe8me \xff\xfe\xfd." * 500, "a.txt", "UTF-8", id="invalid-utf8"),
    pytest.param(b"%PDF-1.4\nthis is not really a pdf\n%%EOF\n", "a.pdf", "PDF", id="malformed-pdf"),
    pytest.param(make_pdf(PDF_PAGES)[:300], "a.pdf", "PDF", id="truncated-pdf"),
    pytest.param(encrypt_pdf(make_pdf(PDF_PAGES), "hunter2"), "a.pdf", "encrypted", id="encrypted-pdf"),
    pytest.param(_deep_html(100_000), "deep.html", "HTML", id="html-100k-deep"),
    pytest.param(
        b'{"id": 1, "text": "ok."}\n{"id": 1, "text": "again."}\n', "a.jsonl", "repeats", id="jsonl-dup"
    ),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "a.jsonl", "JSON|Line", id="jsonl-deep"),
]


@pytest.mark.parametrize(("data", "filename", "message"), HOSTILE_UPLOADS)
def test_hostile_upload_is_refused_clearly_and_changes_nothing(
    lib: Library, data: bytes, filename: str, message: str
) -> None:
    before = snapshot(lib)
    started = time.monotonic()
    with pytest.raises(QuotebotError, match=f"(?i){message}") as caught:
        lib.add_bytes(C, data, filename=filename)
    assert time.monotonic() - started < 10
    assert str(caught.value) and "\n" not in str(caught.value) and "Traceback" not in str(caught.value)
    assert snapshot(lib) == before


def test_a_100_mb_upload_fails_fast_without_being_decoded(lib: Library) -> None:
    data = b"A sentence that would be perfectly fine. " * 2_500_000  # 100 MB
    before = snapshot(lib)
    started = time.perf_counter()
    with pytest.raises(InputError, match="limit"):
        lib.add_bytes(C, data, filename="huge.txt")
    assert time.perf_counter() - started < 0.05  # a size check, not a decode
    assert snapshot(lib) == before


def test_a_question_of_10000_characters_is_refused_and_not_logged(lib: Library) -> None:
    before = snapshot(lib)
    with pytest.raises(InputError, match="characters long"):
        lib.ask(C, "Why does bread rise " * 500, log_question=True)
    with pytest.raises(InputError):
        lib.ask(C, " \n\t\x0b ", log_question=True)
    assert snapshot(lib) == before


@pytest.mark.parametrize(
    "question",
    ["\x00\x01\x02?", "@everyone <@123> **why** ||bread||?", "\u202eesir daerb seod yhW", "🍞" * 500],
)
def test_odd_questions_get_an_answer_or_a_decline(lib: Library, question: str) -> None:
    ans = lib.ask(C, question)
    for q in [ans.quote, ans.best, *ans.alternatives, *ans.related]:
        if q is not None:
            assert q.text == lib.article_text(C, q.article.id)[1][q.start : q.end]


HOSTILE_TITLES = [
    "Bell\x07 and NUL\x00 and escape\x1b[31m red",
    "Right-to-left \u202eoverride\u202c and zero\u200bwidth",
    "Two\nlines\r\nand\ttabs\x0b\x0c",
    "@everyone <@123> <#456> **bold** ||spoiler|| [link](https://evil.example) `code`",
    "x" * 5000,
]


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_titles_are_stored_without_control_characters(tmp_path: Path, title: str) -> None:
    lib = _open(tmp_path)
    try:
        stored = [
            lib.add_text(C, "A plain sentence to quote.", title=title, url="https://example.org/a").article,
            lib.add_documents(C, [Document("Another plain sentence here.", title)])[0].article,
        ]
        file = f"{title}\n\nA third sentence for the file.".encode()
        if "\x00" in title:  # a NUL byte makes a file binary
            with pytest.raises(UnsupportedFormat, match="binary"):
                lib.add_bytes(C, file, filename="t.txt")
        else:
            stored.append(lib.add_bytes(C, file, filename="t.txt")[0].article)
        for info in stored:
            for t in (info.title, lib.find(C, info.id).title):
                assert t.strip() == t and t
                assert not [ch for ch in t if unicodedata.category(ch) in ("Cc", "Cf")], repr(t)
                assert len(t) <= 512
        # Discord markup is text like any other: kept (the bot escapes it when replying).
        if "@everyone" in title:
            assert "@everyone <@123>" in stored[0].title
    finally:
        lib.close()


@pytest.mark.slow
def test_a_10_mb_single_line_is_stored_as_quotable_sentences(tmp_path: Path) -> None:
    words = [f"w{i}x" for i in range(3000)]
    line = " ".join(words[(i * 7919) % 3000] for i in range(2_000_000))[:10_000_000]
    lib = _open(tmp_path)
    try:
        started = time.perf_counter()
        [res] = lib.add_bytes(C, line.encode(), filename="one-line.txt")
        ingest_s = time.perf_counter() - started
        _, text = lib.article_text(C, res.article.id)
        spans = [(r[3], r[4]) for r in lib.store.sentence_rows(C)]
        assert len(spans) >= len(text) // MAX_SENTENCE_CHARS
        assert all(0 < e - s <= MAX_SENTENCE_CHARS for s, e in spans)
        assert " ".join(text[s:e] for s, e in spans).split() == text.split()
        lib.ask(C, "w1x w2x w3x")  # the first ask indexes the article's terms once
        started = time.perf_counter()
        ans = lib.ask(C, "w10x w11x w12x")
        ask_s = time.perf_counter() - started
        assert ans.quote is not None and len(ans.quote.text) <= MAX_SENTENCE_CHARS
        assert ingest_s < 60 and ask_s < 2, (ingest_s, ask_s)
        assert lib.doctor() == []
    finally:
        lib.close()


# -------------------------------------------------------------------------------------- fuzzing
# tests/index fuzzes extract() and split_sentences() alone; here the whole add and ask paths.

_BODIES = st.one_of(
    st.binary(max_size=1_500),
    st.text(max_size=1_500).map(str.encode),
    st.lists(st.sampled_from(["Mr. ", "A b. ", "\n\n", "…", "\x00", "<p>", "%PDF-", "é", " "]), max_size=80)
    .map("".join)
    .map(str.encode),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_BODIES, filename=st.sampled_from(["a.txt", "a.md", "a.html", "a.pdf", "a.jsonl", "a"]))
def test_fuzz_add_bytes_stores_quotable_text_or_changes_nothing(
    lib: Library, body: bytes, filename: str
) -> None:
    before = snapshot(lib)
    try:
        results = lib.add_bytes(C, body, filename=filename)
    except QuotebotError as error:
        assert str(error)
        assert snapshot(lib) == before
        return
    for res in results:
        art = lib.find(C, res.article.id)
        assert art.text.strip() and art.title
        with lib.store.session() as s:
            from sqlmodel import select

            from index.storage.models import Sentence

            rows = s.exec(select(Sentence).where(Sentence.article_id == art.id)).all()
        assert rows and all(0 <= r.start < r.end <= len(art.text) for r in rows)
    for res in results:
        if res.status != "unchanged":
            lib.remove(C, res.article.id)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(question=st.text(max_size=3_000))
def test_fuzz_ask_answers_with_a_slice_declines_or_refuses(lib: Library, question: str) -> None:
    try:
        ans = lib.ask(C, question, alternatives=2)
    except InputError as error:
        assert str(error)
        return
    for q in [ans.quote, ans.best, *ans.alternatives, *ans.related]:
        if q is not None:
            assert q.text == lib.article_text(C, q.article.id)[1][q.start : q.end]


def _pdf_with_deflate_bomb(inflated_mb: int) -> bytes:
    """A one-page PDF whose content stream inflates to `inflated_mb` MB (built without holding it)."""
    z = zlib.compressobj(9)
    chunk = b" " * (1 << 20)
    comp = b"".join(z.compress(chunk) for _ in range(inflated_mb)) + z.flush()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(comp) + comp + b"\nendstream",
    ]
    return pdf_from_objects(objs)


def test_pdf_deflate_bomb_is_refused_quickly_and_changes_nothing(tmp_path: Path) -> None:
    from index.embedding import FakeEmbedder

    lib = Library(LibrarySettings(data_dir=tmp_path), embedder=FakeEmbedder())
    lib.add_documents("g", sample_docs())
    before = lib.store.counts("g")
    bomb = _pdf_with_deflate_bomb(200)  # ~200 KB that would inflate to 200 MB
    assert len(bomb) < 1_000_000
    t0 = time.perf_counter()
    with pytest.raises(QuotebotError):
        lib.add_bytes("g", bomb, filename="bomb.pdf")
    assert time.perf_counter() - t0 < 10
    assert lib.store.counts("g") == before
    lib.close()
