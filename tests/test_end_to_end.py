"""End to end with the real bundled model: ingest the sample article, ask, check the quoted sentences."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli.ask import format_answer
from index.library import Library
from index.settings import LibrarySettings
from index.types import Answer
from tests.conftest import EXAMPLE_ARTICLE

C = "local"
FURNITURE = (
    "JUST IN",
    "Hancock",
    "Previous article",
    "Next article",
    "Please enter your comment",
    "Please enter your name",
)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, real_embedder) -> Iterator[Library]:  # type: ignore[no-untyped-def]
    lib = Library(LibrarySettings(data_dir=tmp_path_factory.mktemp("e2e")), embedder=real_embedder)
    [result] = lib.add_file(C, EXAMPLE_ARTICLE)
    assert result.status == "added"
    yield lib
    lib.close()


@pytest.fixture(scope="module")
def text(library: Library) -> str:
    [info] = library.articles(C)
    return library.article_text(C, info.id)[1]


def ask(library: Library, text: str, question: str) -> Answer:
    ans = library.ask(C, question, alternatives=3)
    for q in [ans.quote, ans.best, *ans.alternatives, *ans.related]:
        if q is not None:
            assert q.text == text[q.start : q.end]  # verbatim, always
            assert not any(f in q.text for f in FURNITURE)
    return ans


# -- the two acceptance questions: strict ---------------------------------------------------------


def test_spokesman_sentence_is_shown(library: Library, text: str) -> None:
    ans = ask(library, text, "Who is the National Security Council spokesman?")
    assert ans.best is not None
    assert ans.best.text.startswith("Speaking the explosives, National Security Council spokesman John Kirby")
    assert (
        ans.best.article.title
        == "North Korea supplying Putin with deadly weapons for use in Ukraine, warns White House"
    )
    # Quoted, with the answer phrase in bold.
    assert ans.quote is not None and ans.quote.answer_phrase == "John Kirby"
    shown = format_answer(ans, alternatives=0)
    assert "National Security Council spokesman **John Kirby** said" in shown


def test_demo_questions_give_quote_quote_decline(library: Library, text: str) -> None:
    """The README's quick start (scripts/demo.sh): a quote, a quote, a decline."""
    kinds = [
        ask(library, text, q).answered
        for q in (
            "How many missiles did North Korea fire?",
            "Who is the National Security Council spokesman?",
            "What is the boiling point of water?",
        )
    ]
    assert kinds == [True, True, False]


def test_may_answer_threshold_marks_a_quote(library: Library, text: str) -> None:
    """Between the two thresholds the quote is shown as "this may answer it"."""
    ans = ask(library, text, "Who is the National Security Council spokesman?")
    library.settings.threshold, library.settings.may_threshold = min(1.0, ans.confidence + 0.01), 0.01
    try:
        may = ask(library, text, "Who is the National Security Council spokesman?")
    finally:
        library.settings.threshold = library.settings.may_threshold = None
    assert may.kind == "may" and may.quote is not None
    assert format_answer(may, alternatives=0).startswith("This may answer it")


def test_boiling_point_declines(library: Library, text: str) -> None:
    ans = ask(library, text, "What is the boiling point of water?")
    assert ans.quote is None
    assert not ans.answered


# -- more questions about the article -------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How many missiles did North Korea fire?", "more than 20 missiles"),
        ("Which territories did North Korea recognise?", "Donetsk and Luhansk"),
        ("What is North Korea shipping to Russia?", "quantities of artillery shells to Russia"),
        ("What did Iran send to Crimea?", "Iran has also sent personnel to Russian-controlled Crimea"),
        ("What did North Korea threaten to use?", "threatened to use nuclear weapons"),
        ("What would the arms exports to Russia violate?", "violation of UN resolutions"),
        ("How many people were killed in the crowd surge in Seoul?", "more than 150 people killed"),
        ("Who leads North Korea?", "Supreme Leader Kim Jong-un"),
    ],
)
def test_questions_about_the_article(library: Library, text: str, question: str, expected: str) -> None:
    ans = ask(library, text, question)
    assert ans.best is not None and expected in ans.best.text
    # Every question the article answers is surer than any question it does not.
    unrelated = max(ask(library, text, q).confidence for q in UNRELATED)
    assert ans.confidence > 3 * unrelated, (ans.confidence, unrelated)


UNRELATED = (
    "Who won the 2018 World Cup?",
    "What is the capital of France?",
    "How do you bake sourdough bread?",
    "What is the boiling point of water?",
)


@pytest.mark.parametrize("question", UNRELATED)
def test_unrelated_questions_decline(library: Library, text: str, question: str) -> None:
    assert ask(library, text, question).quote is None


@pytest.mark.parametrize(
    "question",
    [
        "JUST IN",
        "What did Ann Widdecombe say about Hancock's jungle jaunt?",
        "What is the previous article?",
        "UK snow forecast: when is the first snowfall for winter 2022 expected?",
        "Please enter your comment",
        "Emma Raducanu injury update",
    ],
)
def test_page_furniture_is_never_quoted(library: Library, text: str, question: str) -> None:
    for f in FURNITURE:
        assert f not in text
    ask(library, text, question)  # checks every quote, alternative and related passage


def test_batch_answers_match_single_answers(library: Library, text: str) -> None:
    qs = [
        "Who is the National Security Council spokesman?",
        "What is the boiling point of water?",
        "How many missiles did North Korea fire?",
    ]
    many = library.ask_many(C, qs)
    for q, a in zip(qs, many, strict=True):
        one = library.ask(C, q)
        assert (a.answered, a.best and (a.best.start, a.best.end)) == (
            one.answered,
            one.best and (one.best.start, one.best.end),
        )
        assert a.confidence == pytest.approx(one.confidence, abs=1e-4)


def test_reopened_library_answers_the_same(library: Library, text: str, real_embedder) -> None:  # type: ignore[no-untyped-def]
    reopened = Library(LibrarySettings(data_dir=Path(library.settings.data_dir)), embedder=real_embedder)
    try:
        assert reopened.doctor() == []
        question = "Who is the National Security Council spokesman?"
        ans, before = reopened.ask(C, question), library.ask(C, question)
        assert ans.best is not None and before.best is not None and "John Kirby" in ans.best.text
        assert (ans.best.start, ans.best.end, ans.answered) == (
            before.best.start,
            before.best.end,
            before.answered,
        )
        assert ans.confidence == pytest.approx(before.confidence, abs=1e-4)
    finally:
        reopened.close()
