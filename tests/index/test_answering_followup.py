"""index.answering.followup: `prefer` keeps the previous article's answer unless it declines or one
from elsewhere is clearly better, and `Library.ask(context=...)` favours the article a thread was
last answered from (fake embedder, two articles sharing the follow-up's words)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from index.answering.followup import PREFER_MARGIN, Context, prefer
from index.embedding import FakeEmbedder
from index.library import Library
from index.settings import LibrarySettings
from index.types import Answer, ArticleRef, Quote
from tests.conftest import make_doc, sample_docs

C = "c"
SECURITY = (
    "John Kirby is the spokesman of the National Security Council. "
    "He said the shipments of shells were hidden on trains. "
    "The council met on Tuesday."
)
PORT = (
    "Maria Lopez runs the port authority of Valencia. "
    "She said the shipments of oranges were delayed by the storm. "
    "The port reopened on Friday."
)
# Ambiguous after either article: both have a sentence saying something "about the shipments".
FOLLOW_UP = "What did they say about the shipments?"
LOW = {"threshold": 0.05, "may_threshold": 0.05}


def answer(article_id: int | None, confidence: float, question: str = "q") -> Answer:
    if article_id is None:
        return Answer(question, None, confidence)
    quote = Quote(f"sentence of {article_id}", ArticleRef(article_id, "t", None, None), 0, 10, 1.0)
    return Answer(question, quote, confidence, quote)


# -- prefer -------------------------------------------------------------------------------------------


def test_prefer_keeps_the_favoured_answer() -> None:
    favoured, anywhere = answer(1, 0.5), answer(2, 0.6)
    assert prefer(favoured, anywhere) is favoured


def test_prefer_keeps_the_favoured_answer_when_elsewhere_is_worse_or_declines() -> None:
    favoured = answer(1, 0.4)
    assert prefer(favoured, answer(2, 0.3)) is favoured
    assert prefer(favoured, answer(None, 0.9)) is favoured  # a decline is never better


def test_prefer_takes_elsewhere_when_the_favoured_declines() -> None:
    anywhere = answer(2, 0.3)
    assert prefer(answer(None, 0.2), anywhere) is anywhere
    assert prefer(None, anywhere) is anywhere
    declined = answer(None, 0.1)
    assert prefer(answer(None, 0.2), declined) is declined  # both decline: the unrestricted answer


@pytest.mark.parametrize(
    ("lead", "elsewhere_wins"),
    [(PREFER_MARGIN + 0.01, True), (PREFER_MARGIN, True), (PREFER_MARGIN - 0.01, False), (0.0, False)],
)
def test_prefer_takes_elsewhere_only_when_better_by_the_margin(lead: float, elsewhere_wins: bool) -> None:
    favoured = answer(1, 0.5)
    anywhere = answer(2, 0.5 + lead)
    assert prefer(favoured, anywhere) is (anywhere if elsewhere_wins else favoured)


def test_the_margin_is_a_probability_gap() -> None:
    assert 0 < PREFER_MARGIN < 1


def test_context_is_a_frozen_value() -> None:
    ctx = Context("Who is the spokesman?", 3, "John Kirby is the spokesman.")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.article_id = 4  # type: ignore[misc]


# -- Library.ask(context=...) -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Library]:
    library = Library(LibrarySettings(data_dir=tmp_path_factory.mktemp("followup")), embedder=FakeEmbedder())
    library.add_documents(
        C,
        [
            make_doc(SECURITY, "Security council", source_id="security"),
            make_doc(PORT, "Port authority", source_id="port"),
            *sample_docs(),
        ],
    )
    yield library
    library.close()


@pytest.fixture(scope="module")
def ids(lib: Library) -> dict[str, int]:
    return {a.source_id: a.id for a in lib.articles(C)}  # type: ignore[misc]


def context(ids: dict[str, int], source: str) -> Context:
    return Context("Who runs it?", ids[source], "a sentence")


@pytest.mark.parametrize("source", ["security", "port"])
def test_an_ambiguous_follow_up_is_answered_from_the_context_article(
    lib: Library, ids: dict[str, int], source: str
) -> None:
    a = lib.ask(C, FOLLOW_UP, context=context(ids, source), **LOW)
    assert a.quote is not None and a.quote.article.id == ids[source]
    assert "said the shipments" in a.quote.text
    assert lib.article_text(C, ids[source])[1][a.quote.start : a.quote.end] == a.quote.text


def test_without_context_the_follow_up_is_answered_from_either(lib: Library, ids: dict[str, int]) -> None:
    a = lib.ask(C, FOLLOW_UP, **LOW)
    assert a.quote is not None and a.quote.article.id in {ids["security"], ids["port"]}
    # The other article's context changes the answer: the context is what decides.
    other = "port" if a.quote.article.id == ids["security"] else "security"
    b = lib.ask(C, FOLLOW_UP, context=context(ids, other), **LOW)
    assert b.quote is not None and b.quote.article.id == ids[other]


def test_when_the_best_answer_is_from_the_context_article_it_is_unchanged(
    lib: Library, ids: dict[str, int]
) -> None:
    plain = lib.ask(C, FOLLOW_UP, **LOW)
    assert plain.quote is not None
    source = next(s for s, i in ids.items() if i == plain.quote.article.id)
    again = lib.ask(C, FOLLOW_UP, context=context(ids, source), **LOW)
    assert again.quote is not None
    assert (again.quote.article.id, again.quote.start) == (plain.quote.article.id, plain.quote.start)
    assert again.confidence == pytest.approx(plain.confidence)


def test_a_context_article_without_the_answer_gives_the_answer_from_elsewhere(
    lib: Library, ids: dict[str, int]
) -> None:
    q = "What is the largest planet in the Solar System?"
    plain = lib.ask(C, q, **LOW)
    assert plain.quote is not None and plain.quote.article.id == ids["space"]
    for source in ("security", "port", "garden"):
        a = lib.ask(C, q, context=context(ids, source), **LOW)
        assert a.quote is not None and a.quote.article.id == ids["space"], source


def test_a_clearly_better_answer_elsewhere_wins_over_a_weak_one_from_the_context(
    lib: Library, ids: dict[str, int]
) -> None:
    q = "What is the largest planet in the Solar System?"
    # At threshold 0 the context article's best sentence is an answer too, but a poor one.
    weak = lib.pipeline.answer(lib.shelf(C), [q], cut=(0.0, 0.0), within=ids["bread"])[0]
    strong = lib.ask(C, q, threshold=0.0, may_threshold=0.0)
    assert weak.answered and strong.confidence >= weak.confidence + PREFER_MARGIN
    a = lib.ask(C, q, context=context(ids, "bread"), threshold=0.0, may_threshold=0.0)
    assert a.quote is not None and a.quote.article.id == ids["space"]


def test_a_context_article_no_longer_in_the_collection_is_ignored(lib: Library, ids: dict[str, int]) -> None:
    q = "Why does bread rise?"
    plain = lib.ask(C, q, **LOW)
    gone = lib.ask(C, q, context=Context("earlier", 987_654, "a removed article's sentence"), **LOW)
    assert (gone.quote is None) == (plain.quote is None)
    assert gone.best is not None and plain.best is not None
    assert (gone.best.article.id, gone.best.start) == (plain.best.article.id, plain.best.start)
    assert gone.confidence == pytest.approx(plain.confidence)


def test_a_follow_up_from_the_context_article_keeps_its_alternatives_there(
    lib: Library, ids: dict[str, int]
) -> None:
    plain = lib.ask(C, FOLLOW_UP, **LOW)
    assert plain.quote is not None
    # The article the unrestricted answer is not from: its answer is the restricted ask's.
    other = "port" if plain.quote.article.id == ids["security"] else "security"
    a = lib.ask(C, FOLLOW_UP, context=context(ids, other), alternatives=2, **LOW)
    assert a.quote is not None and a.quote.article.id == ids[other]
    assert len(a.alternatives) == 2
    assert all(q.article.id == ids[other] for q in a.alternatives)
