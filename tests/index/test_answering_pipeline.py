"""index.answering.pipeline on the fake embedder (the retrieval ranker and judge: no reader): a batch
of one is `ask`, `within=` keeps to one article, questions are checked, cut-offs clamp, quotes are
verbatim slices; through a `Library` and through a `Pipeline` over a hand-made shelf."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from index.answering.pipeline import Pipeline
from index.embedding import FakeEmbedder
from index.errors import InputError
from index.library import Library
from index.search.features import FEATURES
from index.search.questions import said_over_and_over
from index.settings import LibrarySettings
from index.types import Answer, Quote
from tests.conftest import sample_docs
from tests.index.test_search_shelf import BREAD, EMB, GARDEN, SPACE, make_shelf

C = "c"
QUESTIONS = [
    "How many hours of sunlight do tomatoes need?",
    "What does mulch do?",
    "How long does the Moon take to orbit the Earth?",
    "What is the largest planet in the Solar System?",
    "Why does bread rise?",
    "At what temperature is the loaf baked?",
    "What is the boiling point of water?",
]


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Library]:
    library = Library(LibrarySettings(data_dir=tmp_path_factory.mktemp("pipeline")), embedder=FakeEmbedder())
    library.add_documents(C, sample_docs())
    yield library
    library.close()


@pytest.fixture(scope="module")
def ids(lib: Library) -> dict[str, int]:
    """Article ids by source id (garden, space, bread)."""
    return {a.source_id: a.id for a in lib.articles(C)}  # type: ignore[misc]


def quotes_of(ans: Answer) -> list[Quote]:
    return [q for q in [ans.quote, ans.best, *ans.alternatives, *ans.related] if q is not None]


def same(a: Answer, b: Answer) -> bool:
    def key(q: Quote | None) -> object:
        return None if q is None else (q.article.id, q.start, q.end, q.text)

    return (
        a.question == b.question
        and key(a.quote) == key(b.quote)
        and key(a.best) == key(b.best)
        and [key(q) for q in a.alternatives] == [key(q) for q in b.alternatives]
        and a.confidence == pytest.approx(b.confidence, abs=1e-6)
        and a.kind == b.kind
    )


# -- a batch of one -----------------------------------------------------------------------------------


@pytest.mark.parametrize("alternatives", [0, 2])
def test_ask_is_ask_many_of_one(lib: Library, alternatives: int) -> None:
    for q in QUESTIONS:
        one = lib.ask(C, q, alternatives=alternatives)
        [many] = lib.ask_many(C, [q], alternatives=alternatives)
        assert same(one, many), q


def test_a_batch_answers_each_question_as_alone(lib: Library) -> None:
    batch = lib.ask_many(C, QUESTIONS)
    assert [a.question for a in batch] == QUESTIONS
    for q, a in zip(QUESTIONS, batch, strict=True):
        assert same(a, lib.ask(C, q, alternatives=0)), q
    assert lib.ask_many(C, []) == []


def test_progress_is_reported_to_the_end(lib: Library) -> None:
    seen: list[tuple[int, int]] = []
    lib.ask_many(C, QUESTIONS, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (len(QUESTIONS), len(QUESTIONS))


def test_a_clear_question_is_quoted_from_its_article(lib: Library, ids: dict[str, int]) -> None:
    a = lib.ask(C, "What is the largest planet in the Solar System?")
    assert a.answered and a.quote is not None
    assert a.quote.text == "Jupiter is the largest planet in the Solar System."
    assert a.quote.article.id == ids["space"] and a.quote.article.title == "Planets and moons"
    assert a.quote.article.url == "https://example.org/space" and a.quote.article.source_id == "space"
    assert 0.0 <= a.confidence <= 1.0


# -- verbatim quotes ----------------------------------------------------------------------------------


def test_every_quote_is_a_verbatim_slice_of_its_article(lib: Library) -> None:
    cut_all = (0.0, 0.0)
    cut_none = (1.1, 1.1)  # nothing reaches it: declines, with related passages
    shelf = lib.shelf(C)
    for cut in (cut_all, cut_none):
        for a in lib.pipeline.answer(shelf, QUESTIONS, alternatives=3, cut=cut):
            assert quotes_of(a)
            for q in quotes_of(a):
                text = lib.article_text(C, q.article.id)[1]
                assert 0 <= q.start < q.end <= len(text)
                assert text[q.start : q.end] == q.text
            if cut is cut_none:
                assert a.quote is None and a.best is not None and 1 <= len(a.related) <= 3


def test_alternatives_are_other_sentences(lib: Library) -> None:
    a = lib.ask(C, "Why does bread rise?", alternatives=3)
    spans = [(q.article.id, q.start) for q in [a.best, *a.alternatives] if q is not None]
    assert len(spans) == 4 and len(set(spans)) == 4


# -- cut-offs -----------------------------------------------------------------------------------------


def test_the_threshold_decides_between_quote_and_decline(lib: Library) -> None:
    shelf = lib.shelf(C)
    q = "Why does bread rise?"
    conf = lib.pipeline.answer(shelf, [q], cut=(0.0, 0.0))[0].confidence
    at = lib.pipeline.answer(shelf, [q], cut=(conf, conf))[0]
    above = lib.pipeline.answer(shelf, [q], cut=(conf + 1e-6, conf + 1e-6))[0]
    assert at.answered and at.kind == "quote"
    assert not above.answered and above.best is not None and above.related
    assert above.confidence == pytest.approx(conf) and above.best.text == at.quote.text  # type: ignore[union-attr]


def test_a_confidence_between_the_cutoffs_is_a_may_quote(lib: Library) -> None:
    shelf = lib.shelf(C)
    q = "Why does bread rise?"
    conf = lib.pipeline.answer(shelf, [q], cut=(0.0, 0.0))[0].confidence
    may = lib.pipeline.answer(shelf, [q], cut=(conf + 0.01, conf - 0.01))[0]
    assert may.kind == "may" and may.quote is not None and not may.confident


def test_cutoffs_clamp_may_threshold_to_threshold(lib: Library) -> None:
    p = lib.pipeline
    assert p.cutoffs(0.5, 0.9) == (0.5, 0.5)
    assert p.cutoffs(0.5, 0.2) == (0.5, 0.2)
    assert p.cutoffs(0, 0) == (0.0, 0.0)
    t, m = p.cutoffs(None, None)
    assert (t, m) == (p.threshold, p.may_threshold) and m <= t
    assert p.cutoffs(0.3, None) == (0.3, min(p.may_threshold, 0.3))
    assert p.cutoffs(None, 1.0) == (p.threshold, p.threshold)


def test_settings_thresholds_and_their_clamp(tmp_path: Path) -> None:
    def pipeline(**kw: object) -> Pipeline:
        return Pipeline(LibrarySettings(data_dir=tmp_path, **kw), lambda: EMB, lambda c, a: [])  # type: ignore[arg-type]

    p = pipeline(threshold=0.2, may_threshold=0.9)
    assert p.threshold == 0.2 and p.may_threshold == 0.2
    assert p.cutoffs(None, None) == (0.2, 0.2)
    p = pipeline(threshold=0.6, may_threshold=0.3)
    assert p.cutoffs(None, None) == (0.6, 0.3)
    p = pipeline()
    assert p.threshold == p.scorer.threshold and p.may_threshold == p.threshold  # no reader: no may band


# -- questions are checked ----------------------------------------------------------------------------


def test_check_question_collapses_whitespace(lib: Library) -> None:
    p = lib.pipeline
    assert p.check_question("  What   is\n a light\tyear?  ") == "What is a light year?"
    assert p.check_question("a" + " " * 5_000 + "b") == "a b"  # the length counts what is left


@pytest.mark.parametrize("bad", ["", "   ", "\n\t \u3000", "What \ud800 is this?", "\udfff"])
def test_check_question_refuses_empty_and_invalid_text(lib: Library, bad: str) -> None:
    with pytest.raises(InputError):
        lib.pipeline.check_question(bad)
    with pytest.raises(InputError):
        lib.ask(C, bad)
    with pytest.raises(InputError):
        lib.ask_many(C, ["Why does bread rise?", bad])


def test_check_question_refuses_over_long_questions(lib: Library) -> None:
    limit = lib.settings.max_question_chars
    assert lib.pipeline.check_question("x" * limit) == "x" * limit
    with pytest.raises(InputError, match=f"{limit:,}"):
        lib.pipeline.check_question("x" * (limit + 1))
    with pytest.raises(InputError):
        lib.ask(C, "why " * limit)


def test_a_surrogate_pair_written_out_is_valid_text(lib: Library) -> None:
    assert lib.pipeline.check_question("Is it \U0001f642?") == "Is it \U0001f642?"


# -- within= one article ------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["garden", "space", "bread"])
def test_within_an_article_quotes_only_that_article(lib: Library, ids: dict[str, int], source: str) -> None:
    shelf = lib.shelf(C)
    aid = ids[source]
    for a in lib.pipeline.answer(shelf, QUESTIONS, alternatives=3, cut=(0.0, 0.0), within=aid):
        assert a.quote is not None and a.quote.article.id == aid
        assert all(q.article.id == aid for q in [a.best, *a.alternatives] if q is not None)
        text = lib.article_text(C, aid)[1]
        assert text[a.quote.start : a.quote.end] == a.quote.text


def test_within_the_best_article_is_the_unrestricted_answer(lib: Library, ids: dict[str, int]) -> None:
    shelf = lib.shelf(C)
    q = "What is the largest planet in the Solar System?"
    anywhere = lib.pipeline.answer(shelf, [q], cut=(0.0, 0.0))[0]
    within = lib.pipeline.answer(shelf, [q], cut=(0.0, 0.0), within=ids["space"])[0]
    assert anywhere.quote is not None and within.quote is not None
    assert (within.quote.start, within.quote.end) == (anywhere.quote.start, anywhere.quote.end)


def test_within_an_unknown_article_declines(lib: Library) -> None:
    a = lib.pipeline.answer(lib.shelf(C), ["Why does bread rise?"], alternatives=2, within=987_654)[0]
    assert a.quote is None and a.best is None and a.confidence == 0.0
    assert a.alternatives == [] and a.kind == "decline"


def test_within_an_article_without_candidates_declines(tmp_path: Path) -> None:
    # One dense pick, one BM25 pick, one passage: at most two articles have candidates.
    narrow = Library(
        LibrarySettings(data_dir=tmp_path, dense_k=1, lexical_k=1, passage_k=1), embedder=FakeEmbedder()
    )
    try:
        narrow.add_documents(C, sample_docs())
        shelf = narrow.shelf(C)
        q = "Why does bread rise because of yeast?"
        cands = narrow.pipeline.candidates(shelf, q, narrow.embedder.encode([q])[0])
        assert cands is not None
        with_candidates = set(shelf.article_ids[cands.rows].tolist())
        without = [a.id for a in narrow.articles(C) if a.id not in with_candidates]
        assert without, "the narrow settings were meant to leave an article without candidates"
        for aid in without:
            [declined] = narrow.pipeline.answer(shelf, [q], alternatives=2, cut=(0.0, 0.0), within=aid)
            assert declined.quote is None and declined.best is None and declined.confidence == 0.0
        for aid in with_candidates:
            [found] = narrow.pipeline.answer(shelf, [q], cut=(0.0, 0.0), within=aid)
            assert found.quote is not None and found.quote.article.id == aid
    finally:
        narrow.close()


# -- nothing to quote ---------------------------------------------------------------------------------


def test_an_empty_collection_declines(lib: Library) -> None:
    a = lib.ask("nothing_here", "What is the largest planet?")
    assert a.quote is None and a.best is None and a.confidence == 0.0 and a.related == []


@pytest.mark.parametrize("chat", [".", "k", "yo yo yo", "zebra quantum marmalade"])
def test_a_question_without_a_word_of_the_collection_is_declined_with_confidence_0(
    lib: Library, chat: str
) -> None:
    a = lib.pipeline.answer(lib.shelf(C), [chat], cut=(1e-6, 1e-6))[0]
    assert a.quote is None and a.confidence == 0.0


@pytest.mark.parametrize(
    "chat", ["planet planet planet planet", "bread bread bread", "why why why why bread"]
)
def test_one_word_over_and_over_is_declined_with_confidence_0(lib: Library, chat: str) -> None:
    shelf = lib.shelf(C)
    assert not shelf.knows_no_word_of(chat)  # its words are in the collection; the repetition declines
    a = lib.pipeline.answer(shelf, [chat], cut=(1e-6, 1e-6))[0]
    assert a.quote is None and a.confidence == 0.0
    # The same words asked as a question are answered.
    b = lib.pipeline.answer(shelf, ["What is the largest planet?"], cut=(1e-6, 1e-6))[0]
    assert b.quote is not None and b.confidence > 0.0


def test_one_word_or_phrase_said_over_and_over() -> None:
    assert said_over_and_over("test test test") and said_over_and_over("Why? why?! WHY why is it")
    assert not said_over_and_over("test test")  # two words: left to the judge
    assert not said_over_and_over("New York, New York?")
    assert not said_over_and_over("Who had the the most wins?")
    # One phrase over and over, the last copy cut short; two copies are left to the judge.
    assert said_over_and_over("why is the sky blue why is the sky blue why is the sky blue why is")
    assert said_over_and_over("hi there hi there hi there")
    assert not said_over_and_over("what is it what is it")
    assert not said_over_and_over("ok so ok so ok so what is it")


# -- a Pipeline over a hand-made shelf ----------------------------------------------------------------


@pytest.fixture
def shelf_pipeline(tmp_path: Path) -> tuple[Pipeline, list[tuple[str, int]]]:
    asked: list[tuple[str, int]] = []

    def pages(collection: str, article_id: int) -> list[int]:
        asked.append((collection, article_id))
        return [0, 40] if article_id == 1 else []  # article 1 is a two-page PDF

    return Pipeline(LibrarySettings(data_dir=tmp_path), lambda: EMB, pages), asked  # type: ignore[arg-type]


def test_a_pipeline_over_a_shelf_without_sql(shelf_pipeline: tuple[Pipeline, list[tuple[str, int]]]) -> None:
    p, asked = shelf_pipeline
    assert p.reader is None
    shelf = make_shelf({1: ("Planets and moons", SPACE), 2: ("Baking bread", BREAD), 3: ("Tomatoes", GARDEN)})
    [a] = p.answer(shelf, ["Which planet has rings of ice?"], alternatives=2, cut=(0.0, 0.0))
    assert a.quote is not None and a.quote.text == "Saturn has rings of ice."
    assert a.quote.article.id == 1 and a.quote.article.url == "https://example.org/1"
    assert shelf.texts[1][a.quote.start : a.quote.end] == a.quote.text
    # Page of a PDF article: the sentence starts past offset 40, on page 2.
    assert a.quote.start >= 40 and a.quote.page == 2
    assert ("test", 1) in asked
    for q in a.alternatives:
        assert q.page == (None if q.article.id != 1 else (1 if q.start < 40 else 2))


def test_pipeline_candidates(shelf_pipeline: tuple[Pipeline, list[tuple[str, int]]]) -> None:
    p, _ = shelf_pipeline
    shelf = make_shelf({1: ("Planets", SPACE), 2: ("Bread", BREAD)})
    q = "Which planet is the largest?"
    c = p.candidates(shelf, q, EMB.encode([q])[0])
    assert c is not None and c.features.shape == (len(c.rows), len(FEATURES))
    assert 1 in c.rows.tolist() and np.isfinite(c.features).all()
    assert p.candidates(make_shelf({}), q, EMB.encode([q])[0]) is None
    assert p.answer(make_shelf({}), [q])[0].confidence == 0.0


# -- the reader path (a small random reader fitted to nothing, on the fake embedder) ------------------


@pytest.fixture(scope="module")
def read_lib(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Library]:
    torch = pytest.importorskip("torch")
    from index.answering.model import AnswerModel
    from index.answering.reader import Reader, build_network, save_reader

    torch.manual_seed(1)
    d = tmp_path_factory.mktemp("reader")
    save_reader(build_network(extra=2, idf=True), d / "reader.pt", {}, model_id="fake-hash-64")
    model = AnswerModel.default()
    model.shortlist = 4
    library = Library(
        LibrarySettings(data_dir=d / "data"),
        embedder=FakeEmbedder(),
        reader=Reader(d / "reader.pt"),
        answer_model=model,
    )
    library.add_documents(C, sample_docs())
    yield library
    library.close()


def test_reader_path_within_an_article_quotes_only_that_article(read_lib: Library) -> None:
    assert read_lib.reader is not None
    shelf = read_lib.shelf(C)
    for info in read_lib.articles(C):
        answers = read_lib.pipeline.answer(
            shelf, QUESTIONS[:3], alternatives=2, cut=(0.0, 0.0), within=info.id
        )
        for a in answers:
            assert a.quote is not None and a.quote.article.id == info.id
            assert all(q.article.id == info.id for q in a.alternatives)
    [none] = read_lib.pipeline.answer(shelf, [QUESTIONS[0]], cut=(0.0, 0.0), within=987_654)
    assert none.quote is None and none.confidence == 0.0


def test_reader_path_a_confidence_between_the_cutoffs_is_a_may_quote(read_lib: Library) -> None:
    shelf = read_lib.shelf(C)
    q = "Why does bread rise?"
    conf = read_lib.pipeline.answer(shelf, [q], cut=(0.0, 0.0))[0].confidence
    may = read_lib.pipeline.answer(shelf, [q], cut=(conf + 0.01, max(0.0, conf - 0.01)))[0]
    assert may.kind == "may" and may.quote is not None and not may.confident


@pytest.mark.parametrize("chat", ["yo yo yo", "zebra quantum marmalade"])
def test_reader_path_a_question_without_a_word_of_the_collection_is_declined_with_confidence_0(
    read_lib: Library, chat: str
) -> None:
    a = read_lib.pipeline.answer(read_lib.shelf(C), [chat], cut=(1e-6, 1e-6))[0]
    assert a.quote is None and a.confidence == 0.0 and a.best is not None


def test_reader_path_judge_sees_the_best_cosine_of_any_candidate(read_lib: Library) -> None:
    from index.answering.model import JUDGE_INPUTS
    from index.search.features import FEATURES

    shelf = read_lib.shelf(C)
    [rd] = read_lib.read(C, ["Why does bread rise?"])
    assert rd is not None and len(rd.ranked.rows) > 1
    combined = read_lib.answer_model.rescore(rd.combine_inputs(shelf))
    dense = rd.ranked.features[:, FEATURES.index("dense")]
    for best in range(len(rd.rows)):
        v = dict(zip(JUDGE_INPUTS, rd.judge_inputs(shelf, combined, best).tolist(), strict=True))
        assert v["dense_top"] == pytest.approx(float(dense.max()), abs=1e-6)
        assert v["dense"] == pytest.approx(float(dense[rd.short[best]]), abs=1e-6)
        assert v["dense_top"] >= v["dense"]
