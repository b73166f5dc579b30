"""The Library with the fake embedder: verbatim quotes, dedupe, replace, remove, rebuild, isolation, input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index.embedding import FakeEmbedder
from index.errors import InputError, NotFound
from index.ingest.extract import extract
from index.library import Library
from index.settings import LibrarySettings
from index.storage.vectors import VectorIndex
from index.types import Answer, Quote
from tests.conftest import EXAMPLE_ARTICLE, GARDEN, make_doc, sample_docs

C = "local"

QUESTIONS = [
    "How many hours of sunlight do tomatoes need?",
    "How often should tomato plants be watered?",
    "What does mulch do?",
    "Why pinch out side shoots?",
    "How long does the Moon take to orbit the Earth?",
    "What is the largest planet in the Solar System?",
    "What are Saturn's rings made of?",
    "What is a light year?",
    "Why does bread rise?",
    "How long should you knead the dough?",
    "At what temperature is the loaf baked?",
    "Who is the National Security Council spokesman?",
    "How many missiles did North Korea fire?",
    "Which territories did North Korea recognise?",
    "What did Iran send to Crimea?",
    "What is the boiling point of water?",
    "zebra quantum marmalade",
]


def example_doc():  # type: ignore[no-untyped-def]
    [doc] = extract(EXAMPLE_ARTICLE.read_bytes(), filename=EXAMPLE_ARTICLE.name)
    return doc


def quotes_of(ans: Answer) -> list[Quote]:
    return [q for q in [ans.quote, ans.best, *ans.alternatives, *ans.related] if q is not None]


def fingerprint(ans: Answer) -> tuple[object, ...]:
    best = ans.best
    return (
        ans.answered,
        round(ans.confidence, 5),
        None if best is None else (best.article.id, best.start, best.end),
        tuple((q.article.id, q.start, q.end) for q in ans.alternatives),
    )


def counts(lib: Library, collection: str = C) -> tuple[int, int, int, int]:
    c = lib.store.counts(collection)
    return c["articles"], c["sentences"], c["passages"], lib.shelf(collection).passages.count


def open_library(data_dir: Path, embedder: FakeEmbedder | None = None, **kw: object) -> Library:
    return Library(LibrarySettings(data_dir=data_dir, **kw), embedder=embedder or FakeEmbedder())  # type: ignore[arg-type]


@pytest.fixture
def filled(fake_library: Library) -> Library:
    fake_library.add_documents(C, [*sample_docs(), example_doc()])
    return fake_library


# -- verbatim quotes ------------------------------------------------------------------------------


def test_every_quote_is_a_slice_of_the_stored_text(filled: Library) -> None:
    texts = {a.id: filled.article_text(C, a.id)[1] for a in filled.articles(C)}
    seen = 0
    for threshold in (None, 1.0):  # answers, then declines with related passages
        filled.settings.threshold = threshold
        for q in QUESTIONS:
            ans = filled.ask(C, q, alternatives=3)
            assert ans.question == q
            assert 0.0 <= ans.confidence <= 1.0
            for quote in quotes_of(ans):
                assert quote.text == texts[quote.article.id][quote.start : quote.end]
                assert quote.text and quote.text == quote.text.strip()
                seen += 1
    assert seen > 2 * len(QUESTIONS)


def test_quotes_with_unicode_offsets(fake_library: Library) -> None:
    text = (
        "Café owners 😀 in Zürich serve crème brûlée every day. "
        "The 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 sign says “open” at 7 a.m. sharp. "
        "Customers pay in francs, not euros."
    )
    fake_library.add_documents(C, [make_doc(text, "Café")])
    for q in ["What do café owners serve?", "When does the sign say open?", "How do customers pay?"]:
        for quote in quotes_of(fake_library.ask(C, q, alternatives=2)):
            assert quote.text == text[quote.start : quote.end]
    # And after reloading everything from SQL.
    reopened = open_library(fake_library.settings.data_dir)
    for quote in quotes_of(reopened.ask(C, "What do café owners serve?", alternatives=2)):
        assert quote.text == text[quote.start : quote.end]
    reopened.close()


def test_a_clear_question_is_answered_from_the_right_article(filled: Library) -> None:
    ans = filled.ask(C, "What is the largest planet in the Solar System?")
    assert ans.quote is not None
    assert ans.quote.text == "Jupiter is the largest planet in the Solar System."
    assert ans.quote.article.title == "Planets and moons"
    assert ans.quote.article.url == "https://example.org/space"
    assert ans.quote.article.source_id == "space"


# -- adding: dedupe and replace -------------------------------------------------------------------


def test_same_content_twice_is_unchanged_and_not_re_embedded(
    fake_library: Library, fake_embedder: FakeEmbedder
) -> None:
    [first] = fake_library.add_documents(C, [make_doc(GARDEN, "Tomatoes")])
    assert first.status == "added"
    before = counts(fake_library)
    calls = fake_embedder.calls
    [again] = fake_library.add_documents(C, [make_doc(GARDEN, "Another title")])
    assert again.status == "unchanged"
    assert again.article.id == first.article.id
    assert counts(fake_library) == before
    assert fake_embedder.calls == calls
    # Twice inside one batch: stored once.
    results = fake_library.add_documents(
        C, [make_doc("One new line here.", "A"), make_doc("One new line here.", "B")]
    )
    assert [r.status for r in results] == ["added", "unchanged"]
    assert results[0].article.id == results[1].article.id
    assert fake_library.count(C) == 2


def test_same_source_id_with_new_text_replaces(fake_library: Library) -> None:
    old = "The old bridge was painted green in 1990. It had three arches."
    new = "The new bridge is made of steel. It opened in 2021."
    [a] = fake_library.add_documents(C, [make_doc(old, "Bridge", source_id="bridge")])
    [b] = fake_library.add_documents(C, [make_doc(new, "Bridge", source_id="bridge")])
    assert (a.status, b.status) == ("added", "replaced")
    assert fake_library.count(C) == 1
    assert [x.id for x in fake_library.articles(C)] == [b.article.id]
    assert fake_library.find(C, "bridge").text == new
    art, sents, chunks, vectors = counts(fake_library)
    assert (art, sents) == (1, 2)
    assert chunks == vectors
    ids = {r[1] for r in fake_library.store.sentence_rows(C)}
    assert ids == {b.article.id}
    fake_library.settings.threshold = 1.0
    for q in ["What colour was the old bridge painted?", "How many arches did it have?"]:
        for quote in quotes_of(fake_library.ask(C, q, alternatives=3)):
            assert quote.article.id == b.article.id
            assert "green" not in quote.text and "arches" not in quote.text


# -- removing -------------------------------------------------------------------------------------


def test_removed_article_is_never_cited_again(filled: Library) -> None:
    space = filled.find(C, "space")
    _, _, passages_before, vectors_before = counts(filled)
    info = filled.remove(C, "space")
    assert info.id == space.id
    _, _, passages_after, vectors_after = counts(filled)
    assert vectors_after == vectors_before - info.n_passages == passages_after
    assert passages_after == passages_before - info.n_passages
    with pytest.raises(NotFound):
        filled.find(C, space.id)
    with pytest.raises(NotFound):
        filled.remove(C, space.id)

    def check(lib: Library) -> None:
        for threshold in (None, 1.0):
            lib.settings.threshold = threshold
            for q in [*QUESTIONS, "Jupiter Saturn Moon light year planet", "moons planets rings"]:
                for quote in quotes_of(lib.ask(C, q, alternatives=5)):
                    assert quote.article.id != space.id
                    assert "Jupiter" not in quote.text

    check(filled)
    reopened = open_library(filled.settings.data_dir)
    try:
        assert space.id not in [a.id for a in reopened.articles(C)]
        assert counts(reopened)[3] == vectors_after
        check(reopened)
        assert reopened.doctor() == []
    finally:
        reopened.close()


def test_remove_every_article_leaves_an_empty_collection(filled: Library) -> None:
    for a in filled.articles(C):
        filled.remove(C, a.id)
    assert counts(filled) == (0, 0, 0, 0)
    ans = filled.ask(C, "What is the largest planet?")
    assert ans.quote is None and ans.best is None and not ans.related


# -- rebuilding the index from SQL ----------------------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:64] = b"\xff" * 64
    path.write_bytes(bytes(data))


def _fewer_vectors(path: Path) -> None:
    index = VectorIndex.load(path)
    assert index is not None and index.count > 2
    faiss_ids = [int(i) for i in range(1, 10_000)]
    removed = index.remove(np.asarray(faiss_ids[: len(faiss_ids)], np.int64))
    assert removed > 0
    index.add(np.array([999_999], np.int64), np.ones((1, index.dim), np.float32) / np.sqrt(index.dim))
    index.save(path)  # a consistent file, but it disagrees with SQL


def _other_model(path: Path) -> None:
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["model_id"] = "some-other-model"
    meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "damage",
    [lambda p: p.unlink(), _truncate, _corrupt, _fewer_vectors, _other_model],
    ids=["deleted", "truncated", "corrupted", "count-mismatch", "other-model"],
)
def test_damaged_index_is_rebuilt_from_sql(tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    lib = open_library(tmp_path)
    lib.add_documents(C, [*sample_docs(), example_doc()])
    before = [fingerprint(lib.ask(C, q, alternatives=2)) for q in QUESTIONS]
    assert lib.doctor() == []
    lib.close()

    path = tmp_path / "index" / f"{C}.faiss"
    damage(path)
    damaged = open_library(tmp_path)
    problems = damaged.doctor()
    assert problems and all(C in p for p in problems)
    # The first question loads the shelf, which notices the damage and rebuilds from SQL.
    after = [fingerprint(damaged.ask(C, q, alternatives=2)) for q in QUESTIONS]
    assert after == before
    assert damaged.doctor() == []
    st = damaged.stats(C)
    assert st.vectors == st.passages
    damaged.close()

    third = open_library(tmp_path)  # the rebuilt file was saved
    assert third.doctor() == []
    assert [fingerprint(third.ask(C, q, alternatives=2)) for q in QUESTIONS] == before
    third.close()


def test_explicit_rebuild_and_reencode(filled: Library, fake_embedder: FakeEmbedder) -> None:
    before = [fingerprint(filled.ask(C, q)) for q in QUESTIONS]
    shelf = filled.rebuild(C)
    assert shelf.passages.count == filled.store.counts(C)["passages"]
    encoded = fake_embedder.texts_encoded
    filled.rebuild(C, reencode=True)
    assert fake_embedder.texts_encoded - encoded == filled.store.counts(C)["sentences"]
    assert [fingerprint(filled.ask(C, q)) for q in QUESTIONS] == before
    assert filled.doctor() == []


def test_doctor_reports_an_index_file_without_articles(filled: Library) -> None:
    stray = VectorIndex.build(
        np.array([1], np.int64), np.ones((1, 64), np.float32) / 8.0, model_id="fake-hash-64", dim=64
    )
    stray.save(filled.settings.index_dir / "999.faiss")
    assert any("999.faiss" in p for p in filled.doctor())


def test_another_model_re_encodes_the_stored_sentences(tmp_path: Path) -> None:
    first = open_library(tmp_path)
    first.add_documents(C, [*sample_docs(), example_doc()])
    n_sentences = first.store.counts(C)["sentences"]
    first.close()

    other = FakeEmbedder(dim=32, model_id="fake-hash-32")
    lib = open_library(tmp_path, other)
    try:
        ans = lib.ask(C, "What is the largest planet in the Solar System?")
        assert other.texts_encoded == n_sentences + 1  # every stored sentence, then the question
        assert ans.quote is not None and "Jupiter" in ans.quote.text
        assert {len(r[5]) for r in lib.store.sentence_rows(C)} == {32 * 4}
        meta = VectorIndex.read_meta(lib.settings.index_dir / f"{C}.faiss")
        assert meta is not None and (meta.model_id, meta.dim) == ("fake-hash-32", 32)
        st = lib.stats(C)
        assert (st.model, st.dim, st.vectors) == ("fake-hash-32", 32, st.passages)
        assert lib.doctor() == []
        for q in QUESTIONS:
            for quote in quotes_of(lib.ask(C, q, alternatives=2)):
                assert quote.text == lib.article_text(C, quote.article.id)[1][quote.start : quote.end]
    finally:
        lib.close()
    again = open_library(tmp_path, FakeEmbedder(dim=32, model_id="fake-hash-32"))
    again.ask(C, "What is the largest planet?")
    assert again._embedder is not None and again._embedder.texts_encoded == 1  # type: ignore[attr-defined]
    again.close()


# -- collections ----------------------------------------------------------------------------------


def test_collections_are_isolated(fake_library: Library) -> None:
    A, B = "111", "222"
    [a] = fake_library.add_documents(A, [make_doc(GARDEN, "Tomatoes", source_id="shared-id")])
    [b] = fake_library.add_documents(
        B, [make_doc("Jupiter is the largest planet in the Solar System.", "Planets", source_id="shared-id")]
    )
    # The same text in two collections is two articles, not a duplicate.
    [a2] = fake_library.add_documents(B, [make_doc(GARDEN, "Tomatoes too")])
    assert a2.status == "added" and a2.article.id != a.article.id

    fake_library.settings.threshold = 1.0
    for q in ["What is the largest planet in the Solar System?", "Jupiter planet", *QUESTIONS]:
        for quote in quotes_of(fake_library.ask(A, q, alternatives=5)):
            assert quote.article.id == a.article.id
    assert [x.id for x in fake_library.articles(A)] == [a.article.id]
    assert fake_library.find(A, "shared-id").id == a.article.id
    assert fake_library.find(B, "shared-id").id == b.article.id
    with pytest.raises(NotFound):
        fake_library.find(A, b.article.id)
    with pytest.raises(NotFound):
        fake_library.remove(A, b.article.id)
    with pytest.raises(NotFound):
        fake_library.article_text(A, b.article.id)
    assert fake_library.search_titles(A, "Planets") == []
    assert fake_library.count(B) == 2
    fake_library.remove(A, "shared-id")
    assert fake_library.find(B, "shared-id").id == b.article.id
    assert fake_library.count(A) == 0 and fake_library.count(B) == 2
    assert fake_library.doctor() == []


@pytest.mark.parametrize("name", ["", "a b", "../etc", "x" * 65, "é", "a/b"])
def test_bad_collection_names_are_refused(fake_library: Library, name: str) -> None:
    with pytest.raises(InputError):
        fake_library.ask(name, "What?")
    with pytest.raises(InputError):
        fake_library.add_documents(name, [make_doc(GARDEN, "T")])


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"   \n\t  \n", bytes(range(256)) * 20, b"\x89PNG\r\n\x1a\n" + bytes(300), b"\x00" * 100],
    ids=["empty", "whitespace", "binary", "png", "nul"],
)
def test_unusable_input_changes_nothing(filled: Library, data: bytes) -> None:
    before = counts(filled), [a.id for a in filled.articles(C)]
    with pytest.raises(InputError):
        filled.add_bytes(C, data, filename="article.txt")
    assert (counts(filled), [a.id for a in filled.articles(C)]) == before


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t"])
def test_empty_documents_are_refused(filled: Library, text: str) -> None:
    before = counts(filled)
    with pytest.raises(InputError):
        filled.add_documents(C, [make_doc("A good sentence here.", "Good"), make_doc(text, "Empty")])
    with pytest.raises(InputError):
        filled.add_text(C, text)
    assert counts(filled) == before


def test_missing_file_is_an_input_error(fake_library: Library, tmp_path: Path) -> None:
    with pytest.raises(InputError):
        fake_library.add_file(C, tmp_path / "nope.txt")
    with pytest.raises(InputError):
        fake_library.add_file(C, tmp_path)


def test_questions_must_be_present_and_short(filled: Library) -> None:
    for q in ["", "   ", "\n"]:
        with pytest.raises(InputError):
            filled.ask(C, q)
    with pytest.raises(InputError):
        filled.ask(C, "why " * 1000)
    with pytest.raises(InputError):
        filled.ask_many(C, ["What is a light year?", "x" * 5000])


def test_asking_an_empty_collection_declines(fake_library: Library) -> None:
    ans = fake_library.ask("empty", "What is the largest planet?")
    assert ans.quote is None and not ans.answered
    assert ans.related == [] and ans.alternatives == []


# -- asking ---------------------------------------------------------------------------------------


def test_ask_many_matches_ask(filled: Library) -> None:
    qs = QUESTIONS[:6]
    many = filled.ask_many(C, qs)
    assert [fingerprint(a)[:3] for a in many] == [
        fingerprint(filled.ask(C, q, alternatives=0))[:3] for q in qs
    ]
    assert filled.ask_many(C, []) == []


def test_threshold_one_always_declines_with_related_passages(tmp_path: Path) -> None:
    lib = open_library(tmp_path, threshold=1.0)
    lib.add_documents(C, [*sample_docs(), example_doc()])
    for q in QUESTIONS:
        ans = lib.ask(C, q)
        assert ans.quote is None
        assert ans.best is not None
        assert 1 <= len(ans.related) <= 3
        for r in ans.related:
            text = lib.article_text(C, r.article.id)[1]
            assert r.text == text[r.start : r.end]
    lib.close()


def test_threshold_zero_always_answers(tmp_path: Path) -> None:
    lib = open_library(tmp_path, threshold=0.0)
    lib.add_documents(C, sample_docs())
    assert all(lib.ask(C, q).quote is not None for q in QUESTIONS)
    lib.close()


def test_logged_questions_and_feedback(filled: Library) -> None:
    ans = filled.ask(C, "What is the largest planet in the Solar System?", user_id="u1", log_question=True)
    assert ans.question_id is not None
    q = filled.question(C, ans.question_id)
    assert q.answered == ans.answered and q.text == ans.question
    filled.record_feedback(C, ans.question_id, "u2", helpful=False)
    assert [(x.id, n) for x, n in filled.unanswered(C)] == [(ans.question_id, 1)]
    filled.record_feedback(C, ans.question_id, "u2", helpful=True)  # changed their mind
    assert ans.answered  # so only the "not helpful" vote listed it
    assert filled.unanswered(C) == []
    declined = filled.ask(C, "zebra quantum marmalade", log_question=True)
    assert not declined.answered
    assert [(x.id, n) for x, n in filled.unanswered(C)] == [(declined.question_id, 0)]
    with pytest.raises(NotFound):
        filled.record_feedback("other", ans.question_id, "u2", helpful=True)
    with pytest.raises(NotFound):
        filled.question(C, 987654)


def test_stats(filled: Library) -> None:
    st = filled.stats(C)
    assert st.articles == 4 and st.sentences > st.articles
    assert st.vectors == st.passages > 0
    assert st.model == "fake-hash-64" and st.dim == 64 and st.index_type == "flat"
    assert 0.0 < st.threshold < 1.0
    assert st.index_bytes > 0 and st.database_bytes is not None and st.database_bytes > 0
