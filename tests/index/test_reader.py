"""The reader and the answer model's parts: span search, match flags, bounded inputs, file round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.answering.model import (
    COMBINE_INPUTS,
    JUDGE_INPUTS,
    AnswerModel,
    StateCache,
    combine_inputs,
    judge_inputs,
)
from index.answering.reader import (
    QUESTION_TOKENS,
    SENTENCE_TOKENS,
    Reader,
    Reading,
    best_span,
    build_network,
    match_flags,
    question_flags,
    save_reader,
    shelf_context,
    word_terms,
)
from index.embedding import FakeEmbedder
from index.search.features import FEATURES

torch = pytest.importorskip("torch")


def test_best_span_respects_order_and_length() -> None:
    start = np.array([0.0, 5.0, 0.0, 0.0, 9.0])
    end = np.array([0.0, 0.0, 7.0, 0.0, 0.0])
    # The best start (4) has no end after it worth more than start 1 -> end 2.
    i, j, p = best_span(start, end)
    assert (i, j) == (1, 2)
    assert 0 < p <= 1
    i, j, _ = best_span(np.array([9.0, 0, 0, 0]), np.array([0, 0, 0, 9.0]), max_len=2)
    assert j - i < 2


def test_best_span_length_prior_prefers_the_short_phrase_on_a_near_tie() -> None:
    start = np.array([9.0, 0, 0, 0, 0, 0, 0, 0, 0])
    end = np.array([0.0, 5.0, 0, 0, 0, 0, 0, 0, 5.1])  # ends at 1 and 8 almost equally likely
    assert best_span(start, end, prior=0.0)[:2] == (0, 8)
    i, j, p = best_span(start, end)
    assert (i, j) == (0, 1)
    # The probability reported is the chosen phrase's own, not its weighed score.
    ps = np.exp(start - start.max()) / np.exp(start - start.max()).sum()
    pe = np.exp(end - end.max()) / np.exp(end - end.max()).sum()
    assert abs(p - ps[0] * pe[1]) < 1e-9
    # A clear long answer still wins over a weak short one.
    end = np.array([0.0, 1.0, 0, 0, 0, 0, 0, 0, 6.0])
    assert best_span(start, end)[:2] == (0, 8)


def test_word_terms_cover_word_pieces() -> None:
    text = "Spokesman John Kirby said"
    # Word pieces: "spokes", "##man" share a word; offsets as a fast tokenizer gives them.
    offsets = np.array([[0, 6], [6, 9], [10, 14], [15, 20], [21, 25]])
    wt = word_terms(text, offsets)
    assert wt[0] == wt[1] == "spokesman" and wt[4] == "say"  # stemmed, irregular forms folded
    flags = match_flags(wt, frozenset({"kirby", "spokesman"}))
    assert flags.tolist() == [1, 1, 0, 1, 0]


def test_question_flags_mark_words_found_only_in_the_context() -> None:
    wt = ("", "kevin", "save", "world", "take", "place")  # where does kevin ... take place
    flags = question_flags(wt, frozenset({"set", "taylor", "place"}), frozenset({"kevin", "save", "place"}))
    # In the sentence: 1 (even where the context has it too); only in the context: 2; else 0.
    assert flags.tolist() == [0, 2, 2, 0, 0, 1]
    assert question_flags(wt, frozenset(), frozenset()).tolist() == [0] * 6


def test_shelf_context_is_the_title_and_the_sentence_before_in_the_same_article() -> None:
    from index.search.lexical import terms
    from tests.index.test_search_shelf import BREAD, SPACE, make_shelf

    shelf = make_shelf({1: ("Planets and moons", SPACE), 2: ("Baking bread", BREAD)})
    got = shelf_context(shelf, list(range(shelf.size)))
    planets, bread = frozenset(terms("Planets and moons")), frozenset(terms("Baking bread"))
    assert got[0] == planets  # an article's first sentence: its title only
    assert got[1] == planets | frozenset(terms(SPACE[0]))
    assert got[2] == planets | frozenset(terms(SPACE[1]))
    assert got[3] == bread  # never the other article's last sentence
    assert got[4] == bread | frozenset(terms(BREAD[0]))
    assert shelf_context(shelf, [4, 2]) == [got[4], got[2]]


def test_reader_with_context_uses_its_flags(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = build_network(context=True)
    assert net.match.weight.shape[0] == 3
    with torch.no_grad():  # make the context row count for something
        net.match.weight[2] += 3.0
    path = tmp_path / "reader.pt"
    save_reader(net, path, {}, model_id="fake-hash-64")
    reader = Reader(path)
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    assert reader.uses_context and not _reader(plain_dir).uses_context
    emb = FakeEmbedder()
    question, sentence = "where is kevin set", "The show is set in Taylor."
    qe = emb.encode_states([question], max_tokens=QUESTION_TOKENS)
    se = emb.encode_states([sentence], max_tokens=SENTENCE_TOKENS)
    qin = reader.prepare(question, qe.states[0], qe.offsets[0], QUESTION_TOKENS)
    sin = reader.prepare(sentence, se.states[0], se.offsets[0], SENTENCE_TOKENS)
    plain = reader.read(qin, [sin])[0].relevance
    assert reader.read(qin, [sin], context=[frozenset()])[0].relevance == pytest.approx(plain, abs=1e-5)
    with_title = reader.read(qin, [sin], context=[frozenset({"kevin"})])[0].relevance
    assert abs(with_title - plain) > 1e-3
    with pytest.raises(ValueError, match="contexts"):
        reader.read(qin, [sin], context=[])


def _reader(tmp_path: Path) -> Reader:
    torch.manual_seed(0)
    net = build_network()
    path = tmp_path / "reader.pt"
    save_reader(net, path, {"what": "test"}, model_id="fake-hash-64")
    return Reader(path)


def test_reader_round_trip_and_bounded_inputs(tmp_path: Path) -> None:
    reader = _reader(tmp_path)
    assert reader.model_id == "fake-hash-64" and reader.info == {"what": "test"}
    emb = FakeEmbedder()
    question = "why " * 499
    sentences = ["The shells were sent by rail in August.", "Kirby spoke on Tuesday."]
    qe = emb.encode_states([question], max_tokens=QUESTION_TOKENS)
    se = emb.encode_states(sentences, max_tokens=SENTENCE_TOKENS)
    qin = reader.prepare(question, qe.states[0], qe.offsets[0], QUESTION_TOKENS)
    assert len(qin.states) == QUESTION_TOKENS  # a long message is cut, never grows the input
    sins = [
        reader.prepare(t, s, o, SENTENCE_TOKENS)
        for t, s, o in zip(sentences, se.states, se.offsets, strict=True)
    ]
    readings = reader.read(qin, sins)
    assert len(readings) == 2
    for r, s in zip(readings, sins, strict=True):
        assert r.span is not None and 0 <= r.span[0] <= r.span[1] < len(s.states)
    # One sentence read alone scores as it does in a batch (padding changes nothing).
    alone = reader.read(qin, sins[1:])
    assert alone[0].relevance == pytest.approx(readings[1].relevance, abs=1e-4)


def test_judge_inputs_are_bounded() -> None:
    readings = [Reading(1e9, (0, 0), 1.0), Reading(-1e9, None, 0.0)]
    combined = np.array([1e6, -1e6], np.float32)
    x = judge_inputs(
        readings,
        combined,
        0,
        dense=5.0,
        lex=9.0,
        lex_para=7.0,
        dense_para=-4.0,
        missing_key=-3.0,
        question_terms=10_000,
        question_tokens=10_000,
        lex_title=-2.0,
    )
    vals = dict(zip(JUDGE_INPUTS, x.tolist(), strict=True))
    assert vals["lex_title"] == 0
    assert vals["relevance"] == 12 and vals["relevance_margin"] == 12
    assert vals["question_terms"] == 1 and vals["question_tokens"] == 1
    assert vals["dense"] == 1 and vals["lex"] == 1 and vals["missing_key"] == 0
    assert vals["lex_para"] == 1 and vals["dense_para"] == -1
    f = np.full((2, len(FEATURES)), 1e9, np.float32)
    c = combine_inputs(readings, np.array([1e9, -1e9], np.float32), f, np.array([[-1, 1], [0, -1]]))
    assert c.shape == (2, len(COMBINE_INPUTS)) and np.abs(c).max() <= 24  # clipped by construction


def test_answer_model_round_trip(tmp_path: Path) -> None:
    m = AnswerModel.default()
    m.threshold, m.may_threshold, m.shortlist = 0.6, 0.25, 9
    m.ranker = np.arange(len(FEATURES), dtype=np.float32)
    m.info = {"fitted_on": "x"}
    path = tmp_path / "answer_model.json"
    m.save(path)
    back = AnswerModel.load(path)
    assert (back.threshold, back.may_threshold, back.shortlist) == (0.6, 0.25, 9)
    assert np.allclose(back.combine.out, m.combine.out) and np.allclose(back.judge, m.judge)
    assert back.ranker is not None and np.allclose(back.ranker, m.ranker)
    x = judge_inputs(
        [Reading(2.0, (0, 1), 0.5)],
        np.array([0.0]),
        0,
        dense=0.5,
        lex=0.5,
        lex_para=0.5,
        dense_para=0.5,
        missing_key=0,
        question_terms=3,
        question_tokens=5,
    )
    assert back.confidence(x) == pytest.approx(m.confidence(x))


def test_state_cache_drops_least_recently_used() -> None:
    cache: StateCache = StateCache(2)
    a, b, c = (object() for _ in range(3))
    cache.put(1, a)  # type: ignore[arg-type]
    cache.put(2, b)  # type: ignore[arg-type]
    assert cache.get(1) is a  # 1 is now the most recent
    cache.put(3, c)  # type: ignore[arg-type]
    assert cache.get(2) is None and cache.get(1) is a and cache.get(3) is c and len(cache) == 2
