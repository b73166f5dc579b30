"""The reader path of Library (index/answering.py) on the fake embedder with a small random reader:
one code path for ask and ask_many, the three replies, answer phrases inside the quote, and the
sentence-input cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from index.answering.model import AnswerModel
from index.answering.reader import Reader, build_network, save_reader
from index.embedding import FakeEmbedder
from index.library import Library
from index.settings import LibrarySettings
from tests.conftest import sample_docs

torch = pytest.importorskip("torch")
C = "c"


@pytest.fixture
def reader(tmp_path: Path) -> Reader:
    torch.manual_seed(1)
    path = tmp_path / "reader.pt"
    save_reader(build_network(extra=2, idf=True), path, {}, model_id="fake-hash-64")
    return Reader(path)


class CountingEmbedder(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.state_texts = 0

    def encode_states(self, texts, *, max_tokens, batch_size=64):  # type: ignore[no-untyped-def]
        self.state_texts += len(texts)
        return super().encode_states(texts, max_tokens=max_tokens, batch_size=batch_size)


@pytest.fixture
def emb() -> CountingEmbedder:
    return CountingEmbedder()


def _library(tmp_path: Path, emb: FakeEmbedder, reader: Reader, model: AnswerModel, **kw: object) -> Library:
    lib = Library(
        LibrarySettings(data_dir=tmp_path / "d", **kw), embedder=emb, reader=reader, answer_model=model
    )  # type: ignore[arg-type]
    lib.add_documents(C, sample_docs())
    return lib


@pytest.fixture
def lib(tmp_path: Path, emb: CountingEmbedder, reader: Reader) -> Iterator[Library]:
    model = AnswerModel.default()
    model.shortlist = 4
    lib = _library(tmp_path, emb, reader, model)
    yield lib
    lib.close()


QUESTIONS = [
    "How long does the Moon take to orbit the Earth?",
    "Why does bread rise?",
    "How much sun do tomatoes need?",
]


def test_ask_and_ask_many_agree_and_quote_verbatim(lib: Library) -> None:
    assert lib.reader is not None
    many = lib.ask_many(C, QUESTIONS, alternatives=2)
    for q, a in zip(QUESTIONS, many, strict=True):
        one = lib.ask(C, q, alternatives=2)
        assert one.confidence == pytest.approx(a.confidence, abs=1e-5)
        assert one.best is not None and a.best is not None
        assert (one.best.start, one.best.end) == (a.best.start, a.best.end)
        text = lib.article_text(C, one.best.article.id)[1]
        assert one.best.text == text[one.best.start : one.best.end]
        if one.best.answer_start is not None:
            assert one.best.start <= one.best.answer_start < one.best.answer_end <= one.best.end  # type: ignore[operator]
            assert one.best.answer_phrase == text[one.best.answer_start : one.best.answer_end]


def test_three_replies_follow_the_thresholds(lib: Library) -> None:
    q = QUESTIONS[1]
    conf = lib.ask(C, q).confidence
    lib.settings.threshold, lib.settings.may_threshold = conf / 2, conf / 4
    assert lib.ask(C, q).kind == "quote"
    lib.settings.threshold, lib.settings.may_threshold = min(1.0, conf + 0.01), conf / 2
    may = lib.ask(C, q)
    assert may.kind == "may" and may.quote is not None and not may.confident
    lib.settings.threshold, lib.settings.may_threshold = min(1.0, conf + 0.02), min(1.0, conf + 0.01)
    declined = lib.ask(C, q)
    assert declined.kind == "decline" and declined.quote is None and declined.best is not None
    # A may threshold above the confident one is clamped to it.
    lib.settings.threshold, lib.settings.may_threshold = 0.2, 0.9
    assert lib.may_threshold == 0.2


def test_sentence_inputs_are_cached(lib: Library, emb: CountingEmbedder) -> None:
    lib.ask(C, QUESTIONS[0])
    before = emb.state_texts
    lib.ask(C, QUESTIONS[0])
    assert emb.state_texts - before == 1  # only the question: its sentences came from the cache


def test_cache_bound_holds(tmp_path: Path, emb: CountingEmbedder, reader: Reader) -> None:
    model = AnswerModel.default()
    model.shortlist = 4
    small = _library(tmp_path, emb, reader, model, reader_cache_sentences=2)
    try:
        for q in QUESTIONS:
            small.ask(C, q)
        assert len(small.pipeline._states) == 2
    finally:
        small.close()


def test_fake_embedder_without_a_matching_reader_uses_the_ranker(tmp_path: Path) -> None:
    plain = Library(LibrarySettings(data_dir=tmp_path / "p"), embedder=FakeEmbedder())
    try:
        plain.add_documents(C, sample_docs())
        assert plain.reader is None  # the shipped reader fits the bundled model only
        a = plain.ask(C, QUESTIONS[0])
        assert a.best is not None and np.isfinite(a.confidence)
    finally:
        plain.close()


@pytest.mark.parametrize("chat", [".", "...", "?", "k", "yo yo yo", "🙂🙂", "<@123456789012345678>"])
def test_chat_without_a_word_of_the_articles_is_declined(lib: Library, chat: str) -> None:
    """No question word occurs in the collection: nothing can be quoted, whatever the reader says."""
    lib.settings.threshold, lib.settings.may_threshold = 1e-6, 1e-6  # quote anything above zero
    a = lib.ask(C, chat)
    assert a.quote is None and a.confidence == 0.0
