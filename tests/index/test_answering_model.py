"""index.answering.model: the shortlist's combine inputs and the judge's inputs by name and bounded,
evidence counts scaled, the answer model's weights by name, and the reader-input cache (LRU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index.answering.evidence import EVIDENCE
from index.answering.model import (
    COMBINE_INPUTS,
    JUDGE_INPUTS,
    NO_NEIGHBOUR,
    AnswerModel,
    Rescorer,
    StateCache,
    bounded_evidence,
    combine_inputs,
    judge_inputs,
    shortlist_neighbours,
)
from index.answering.reader import QUESTION_TOKENS, Reading
from index.search.features import FEATURES

CI = {k: i for i, k in enumerate(COMBINE_INPUTS)}
JI = {k: i for i, k in enumerate(JUDGE_INPUTS)}
EI = {k: i for i, k in enumerate(EVIDENCE)}

# Judge inputs that are documented to leave [-1, 1]: reader logits.
WIDE = {"relevance": (-12.0, 12.0), "relevance_margin": (0.0, 12.0)}


def readings(*relevances: float) -> list[Reading]:
    return [Reading(r, (0, 1), min(1.0, abs(r) / 10)) for r in relevances]


def combine(
    rd: list[Reading],
    scores: np.ndarray,
    features: np.ndarray | None = None,
    neighbours: np.ndarray | None = None,
) -> np.ndarray:
    """combine_inputs with zero retrieval features and no neighbours unless given."""
    n = len(rd)
    f = np.zeros((n, len(FEATURES)), np.float32) if features is None else features
    nb = np.full((n, 2), -1, np.int64) if neighbours is None else neighbours
    return combine_inputs(rd, scores, f, nb)


# -- combine inputs -----------------------------------------------------------------------------------


def test_combine_inputs_by_name() -> None:
    rd = readings(1.0, 3.0, -2.0, 0.5)
    c = combine(rd, np.array([4.0, 3.0, 2.5, -1.0], np.float32))
    assert c.shape == (4, len(COMBINE_INPUTS)) and c.dtype == np.float32
    assert c[:, CI["relevance"]].tolist() == [1.0, 3.0, -2.0, 0.5]
    # The best reading (the second) has relevance_rel 0, the others below.
    assert c[1, CI["relevance_rel"]] == 0.0 and (c[:, CI["relevance_rel"]] <= 0).all()
    assert c[:, CI["relevance_rel"]].tolist() == [-2.0, 0.0, -5.0, -2.5]
    # rank_pos rises with the ranker's order, from 0.
    pos = c[:, CI["rank_pos"]]
    assert pos[0] == 0.0 and (np.diff(pos) > 0).all() and pos.tolist() == [0.0, 0.25, 0.5, 0.75]
    # ranker: the lead of the best ranker score, <= 0.
    assert c[:, CI["ranker"]].tolist() == [0.0, -1.0, -1.5, -5.0]
    assert c[:, CI["span"]].tolist() == pytest.approx([r.span_probability for r in rd])


def test_combine_inputs_are_clipped() -> None:
    c = combine(readings(1e9, -1e9), np.array([1e9, -1e9], np.float32))
    assert c[:, CI["relevance"]].tolist() == [12.0, -12.0]
    assert c[:, CI["relevance_rel"]].tolist() == [0.0, -24.0]
    assert c[:, CI["ranker"]].tolist() == [0.0, -20.0]


def test_combine_inputs_of_an_empty_shortlist() -> None:
    assert combine([], np.zeros(0, np.float32)).shape == (0, len(COMBINE_INPUTS))


def test_combine_inputs_of_one() -> None:
    c = combine(readings(-4.0), np.array([7.0], np.float32))
    assert c[0, CI["relevance_rel"]] == 0.0 and c[0, CI["ranker"]] == 0.0 and c[0, CI["rank_pos"]] == 0.0
    assert c[0, CI["prev_read"]] == 0.0 and c[0, CI["prev_relevance_rel"]] == NO_NEIGHBOUR


def test_shortlist_neighbours_are_the_sentences_around_in_the_same_article() -> None:
    # Shelf rows 10, 11, 12 in article 1, row 13 starts article 2; row 30 alone.
    rows = np.array([11, 30, 13, 10, 12])
    arts = np.array([1, 2, 2, 1, 1])
    nb = shortlist_neighbours(rows, arts)
    assert nb.tolist() == [[3, 4], [-1, -1], [-1, -1], [-1, 0], [0, -1]]


def test_combine_inputs_carry_the_retrieval_features_and_the_neighbours_verdicts() -> None:
    rd = readings(1.0, 5.0, 3.0)
    f = np.zeros((3, len(FEATURES)), np.float32)
    f[:, FEATURES.index("dense")] = [0.1, 0.2, 0.3]
    f[:, FEATURES.index("log_len")] = [1e9, 2.0, -1e9]  # clipped
    nb = np.array([[-1, 1], [0, -1], [-1, -1]])  # 0 then 1 are neighbours, 2 stands alone
    c = combine(rd, np.array([3.0, 2.0, 1.0], np.float32), f, nb)
    assert c[:, CI["dense"]].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert c[:, CI["log_len"]].tolist() == [20.0, 2.0, -20.0]
    assert "bias" not in CI
    # 0's next sentence is 1 (the best: relevance_rel 0); 1's previous one is 0 (1 - 5 = -4).
    assert c[0, CI["next_relevance_rel"]] == 0.0 and c[0, CI["next_read"]] == 1.0
    assert c[1, CI["prev_relevance_rel"]] == -4.0 and c[1, CI["prev_read"]] == 1.0
    assert c[0, CI["prev_relevance_rel"]] == NO_NEIGHBOUR and c[0, CI["prev_read"]] == 0.0
    assert c[2, [CI["prev_read"], CI["next_read"]]].tolist() == [0.0, 0.0]


# -- judge inputs -------------------------------------------------------------------------------------


def judge(**kw: object) -> dict[str, float]:
    args: dict[str, object] = {
        "dense": 0.5,
        "lex": 0.5,
        "lex_para": 0.75,
        "dense_para": 0.4,
        "missing_key": 0.0,
        "question_terms": 3,
        "question_tokens": 8,
    }
    args.update(kw)
    rd = args.pop("readings", readings(2.0, 1.0, -1.0))
    combined = args.pop("combined", np.array([2.0, 1.0, -1.0], np.float32))
    best = args.pop("best", 0)
    x = judge_inputs(rd, combined, best, **args)  # type: ignore[arg-type]
    assert x.shape == (len(JUDGE_INPUTS),) and x.dtype == np.float32
    return dict(zip(JUDGE_INPUTS, x.tolist(), strict=True))


def in_bounds(vals: dict[str, float]) -> None:
    for name, v in vals.items():
        lo, hi = WIDE.get(name, (-1.0, 1.0))
        assert lo <= v <= hi, (name, v)


def test_judge_inputs_by_name() -> None:
    v = judge()
    assert v["relevance"] == 2.0 and v["relevance_margin"] == 1.0
    assert v["softmax"] == pytest.approx(np.exp(2) / (np.exp(2) + np.exp(1) + np.exp(-1)), rel=1e-5)
    assert v["span"] == pytest.approx(0.2)
    assert (v["dense"], v["lex"], v["missing_key"]) == (0.5, 0.5, 0.0)
    assert (v["lex_para"], v["dense_para"]) == (0.75, pytest.approx(0.4))
    assert v["question_terms"] == pytest.approx(3 / 12)
    assert v["question_tokens"] == pytest.approx(8 / QUESTION_TOKENS)
    assert v["bias"] == 1.0
    assert all(v[k] == 0.0 for k in EVIDENCE)  # no evidence given: zeros
    in_bounds(v)


def test_judge_inputs_lex_title_is_given_or_the_sentences_own_lex() -> None:
    assert judge()["lex_title"] == 0.5  # no title known: lex
    assert judge(lex_title=0.9)["lex_title"] == pytest.approx(0.9)
    assert judge(lex_title=3.0)["lex_title"] == 1.0


def test_judge_inputs_dense_top_is_the_best_candidates_cosine_or_the_sentences_own() -> None:
    assert judge()["dense_top"] == 0.5  # no other candidate known: dense
    assert judge(dense_top=0.8)["dense_top"] == pytest.approx(0.8)
    assert judge(dense_top=0.2)["dense_top"] == 0.5  # never below the chosen sentence's own cosine
    assert judge(dense_top=7.0)["dense_top"] == 1.0


def test_judge_inputs_of_a_best_that_is_not_first() -> None:
    v = judge(best=2)
    assert v["relevance"] == -1.0 and v["relevance_margin"] == 0.0  # behind the others: no lead
    assert v["softmax"] < 0.1


def test_judge_inputs_of_one_reading() -> None:
    v = judge(readings=readings(-3.0), combined=np.array([5.0], np.float32))
    assert v["relevance_margin"] == 12.0 and v["softmax"] == pytest.approx(1.0)
    in_bounds(v)


@pytest.mark.parametrize("seed", range(5))
def test_judge_inputs_stay_bounded(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 8))
    rd = [Reading(float(rng.normal(0, 100)), None, float(rng.uniform(0, 1))) for _ in range(n)]
    evidence = rng.normal(0, 1_000, len(EVIDENCE)).astype(np.float32)
    v = judge(
        readings=rd,
        combined=rng.normal(0, 1e4, n).astype(np.float32),
        best=int(rng.integers(0, n)),
        dense=float(rng.normal(0, 10)),
        lex=float(rng.normal(0, 10)),
        lex_title=float(rng.normal(0, 10)),
        missing_key=float(rng.normal(0, 10)),
        question_terms=int(rng.integers(0, 10_000)),
        question_tokens=int(rng.integers(0, 10_000)),
        evidence=evidence,
    )
    in_bounds(v)
    assert all(np.isfinite(list(v.values())))


def test_judge_inputs_take_the_evidence_bounded_by_name() -> None:
    ev = np.zeros(len(EVIDENCE), np.float32)
    ev[EI["full_coverage"]] = 1.0
    ev[EI["words_missing"]] = 4.0  # a count, scaled at 8
    ev[EI["order_discord"]] = 7.0  # not a count: clipped
    v = judge(evidence=ev)
    assert v["full_coverage"] == 1.0 and v["words_missing"] == 0.5 and v["order_discord"] == 1.0


# -- bounded evidence ---------------------------------------------------------------------------------


def test_bounded_evidence_scales_counts() -> None:
    ev = np.zeros(len(EVIDENCE), np.float32)
    ev[EI["modifiers_missing"]] = 2  # scaled at 4
    ev[EI["q_words"]] = 16  # at 32
    ev[EI["q_terms"]] = 30  # at 12: capped
    ev[EI["caps_not_nearby"]] = -3  # a count is never negative
    ev[EI["missing_share"]] = 0.25  # a share: as it is
    ev[EI["negation_mismatch"]] = 5  # not a count: clipped to 1
    ev[EI["order_discord"]] = -5  # clipped to -1
    out = bounded_evidence(ev)
    assert out.dtype == np.float32 and out.shape == ev.shape
    assert out[EI["modifiers_missing"]] == 0.5
    assert out[EI["q_words"]] == 0.5
    assert out[EI["q_terms"]] == 1.0
    assert out[EI["caps_not_nearby"]] == 0.0
    assert out[EI["missing_share"]] == 0.25
    assert out[EI["negation_mismatch"]] == 1.0
    assert out[EI["order_discord"]] == -1.0
    # The input is left alone.
    assert ev[EI["q_words"]] == 16 and ev[EI["order_discord"]] == -5


def test_bounded_evidence_is_always_in_bounds() -> None:
    rng = np.random.default_rng(3)
    out = bounded_evidence(rng.normal(0, 100, (len(EVIDENCE),)).astype(np.float32))
    assert (out >= -1).all() and (out <= 1).all()


# -- the answer model ---------------------------------------------------------------------------------


def test_default_model_trusts_the_reader() -> None:
    m = AnswerModel.default()
    c = combine(readings(1.0, 5.0, 3.0), np.array([3.0, 2.0, 1.0], np.float32))
    assert m.rescore(c).tolist() == [1.0, 5.0, 3.0]  # the relevance column alone
    low = m.confidence(np.array(list(judge(readings=readings(-5.0), combined=np.zeros(1)).values())))
    high = m.confidence(np.array(list(judge(readings=readings(5.0), combined=np.zeros(1)).values())))
    assert 0.0 < low < 0.5 < high < 1.0
    assert m.may_threshold <= m.threshold


def test_confidence_does_not_overflow() -> None:
    m = AnswerModel.default()
    m.judge = m.judge * 1e6
    x = np.zeros(len(JUDGE_INPUTS), np.float32)
    x[JI["relevance"]] = 12.0
    assert m.confidence(x) == pytest.approx(1.0)
    x[JI["relevance"]] = -12.0
    assert 0.0 <= m.confidence(x) < 1e-9


def test_load_reads_weights_by_name(tmp_path: Path) -> None:
    raw = {
        # Names in another order, some absent (0 weight, mean 0, scale 1), one unknown (ignored).
        "combine": {"span": 2.0, "relevance": 0.5, "retired_input": 9.0},
        "judge": {
            "weights": {"bias": -1.0, "lex": 3.0},
            "mean": {"lex": 0.25},
            "scale": {"lex": 0.5, "dense": 0.0},
        },
        "threshold": 0.6,
        "may_threshold": 0.4,
    }
    path = tmp_path / "model.json"
    path.write_text(json.dumps(raw))
    m = AnswerModel.load(path)
    w = m.combine.out  # the linear form (an earlier file's)
    assert m.combine.hidden is None and w[CI["span"]] == 2.0 and w[CI["relevance"]] == 0.5
    assert w[CI["ranker"]] == 0.0 and len(w) == len(COMBINE_INPUTS)
    assert m.judge[JI["lex"]] == 3.0 and m.judge[JI["bias"]] == -1.0 and m.judge[JI["dense"]] == 0.0
    assert m.mean[JI["lex"]] == 0.25 and m.scale[JI["lex"]] == 0.5
    assert m.scale[JI["relevance"]] == 1.0
    assert 0 < m.scale[JI["dense"]] <= 1e-6  # a zero scale never divides by zero
    assert (m.threshold, m.may_threshold, m.shortlist, m.ranker) == (0.6, 0.4, 12, None)
    x = np.zeros(len(JUDGE_INPUTS), np.float32)
    x[JI["lex"]], x[JI["bias"]] = 0.75, 1.0
    # z(lex) = (0.75 - 0.25) / 0.5 = 1; z(bias) = 1: logit 3 - 1 = 2
    assert m.confidence(x) == pytest.approx(1 / (1 + np.exp(-2.0)), rel=1e-5)


def test_load_without_a_file_is_the_default(tmp_path: Path) -> None:
    m = AnswerModel.load(tmp_path / "absent.json")
    d = AnswerModel.default()
    assert np.array_equal(m.combine.out, d.combine.out) and np.array_equal(m.judge, d.judge)


def test_the_shipped_model_loads() -> None:
    m = AnswerModel.load()
    r = m.combine
    assert r.hidden is not None and r.hidden_bias is not None  # the network form
    assert r.hidden.shape == (len(COMBINE_INPUTS), len(r.out)) == (len(COMBINE_INPUTS), len(r.hidden_bias))
    assert np.isfinite(r.hidden).all() and (r.scale > 0).all()
    assert m.judge.shape == (len(JUDGE_INPUTS),)
    assert np.isfinite(m.judge).all() and (m.scale > 0).all()
    assert 0 <= m.may_threshold <= m.threshold <= 1 and m.shortlist >= 1


def network(seed: int = 0, units: int = 5) -> Rescorer:
    rng = np.random.default_rng(seed)
    n = len(COMBINE_INPUTS)
    return Rescorer(
        rng.normal(0, 1, units).astype(np.float32),
        rng.normal(0, 1, n).astype(np.float32),
        rng.uniform(0.5, 2, n).astype(np.float32),
        rng.normal(0, 1, (n, units)).astype(np.float32),
        rng.normal(0, 1, units).astype(np.float32),
    )


def test_the_network_rescorer_computes_a_hidden_layer() -> None:
    r = network()
    x = np.random.default_rng(1).normal(0, 1, (4, len(COMBINE_INPUTS))).astype(np.float32)
    assert r.hidden is not None and r.hidden_bias is not None
    h = (x - r.mean) / r.scale @ r.hidden + r.hidden_bias
    gelu = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h**3)))
    assert r(x) == pytest.approx(gelu @ r.out, rel=1e-5)
    # Not linear: scaling the inputs' deviation does not scale the score.
    z = r.mean[None] + 2 * (x - r.mean[None])
    assert not np.allclose(r(z), 2 * r(x))


def test_the_network_rescorer_round_trips_by_input_name(tmp_path: Path) -> None:
    m = AnswerModel.default()
    m.combine = network(units=7)
    path = tmp_path / "m.json"
    m.save(path)
    raw = json.loads(path.read_text())
    assert set(raw["combine"]["hidden"]) == set(COMBINE_INPUTS) and len(raw["combine"]["out"]) == 7
    x = np.random.default_rng(2).normal(0, 1, (6, len(COMBINE_INPUTS))).astype(np.float32)
    assert AnswerModel.load(path).rescore(x) == pytest.approx(m.rescore(x), abs=1e-4)
    # A file without some input (an older list of inputs) gives it no weight.
    del raw["combine"]["hidden"]["next_read"]
    path.write_text(json.dumps(raw))
    back = AnswerModel.load(path).combine
    assert back.hidden is not None and not back.hidden[CI["next_read"]].any()


# -- the reader-input cache ---------------------------------------------------------------------------


def test_state_cache_evicts_the_least_recently_used() -> None:
    cache = StateCache(3)
    items = {i: object() for i in range(1, 6)}
    for i in (1, 2, 3):
        cache.put(i, items[i])  # type: ignore[arg-type]
    assert cache.get(1) is items[1]  # 1 is now the most recent: 2 is the oldest
    cache.put(4, items[4])  # type: ignore[arg-type]
    assert len(cache) == 3 and cache.get(2) is None
    cache.put(3, items[3])  # type: ignore[arg-type]  # put again: 3 is the most recent, 1 the oldest
    cache.put(5, items[5])  # type: ignore[arg-type]
    assert cache.get(1) is None
    assert [cache.get(i) is items[i] for i in (3, 4, 5)] == [True, True, True]
    assert len(cache) == 3


def test_state_cache_replaces_a_value_in_place() -> None:
    cache = StateCache(2)
    a, b = object(), object()
    cache.put(7, a)  # type: ignore[arg-type]
    cache.put(7, b)  # type: ignore[arg-type]
    assert len(cache) == 1 and cache.get(7) is b


def test_a_miss_changes_nothing() -> None:
    cache = StateCache(2)
    a, b, c = object(), object(), object()
    cache.put(1, a)  # type: ignore[arg-type]
    cache.put(2, b)  # type: ignore[arg-type]
    assert cache.get(99) is None and len(cache) == 2
    cache.put(3, c)  # type: ignore[arg-type]
    assert cache.get(1) is None and cache.get(2) is b


@pytest.mark.parametrize("capacity", [0, -5])
def test_a_cache_without_room_keeps_nothing(capacity: int) -> None:
    cache = StateCache(capacity)
    cache.put(1, object())  # type: ignore[arg-type]
    assert len(cache) == 0 and cache.get(1) is None


@pytest.mark.parametrize(
    ("text", "piece", "phrase"),
    [
        ("acres of Ecuadorian rainforest", "Ecuador", "Ecuadorian"),
        ("killed two-thirds of them", "third", "two-thirds"),
        ("at 19:30 sharp", "30", "19:30"),
        ("a 3.5% rise", "3", "3.5"),
        ("the U.S. army", "U", "U.S"),
        ("well - known", "well", "well"),
        (
            "The time and space hierarchy theorems form",
            "time and space hierarchy theorem",
            "time and space hierarchy theorems",
        ),
        ("spokesman John Kirby said", "John Kirby", "John Kirby"),
        ("a tenfold difference", "ten", "tenfold"),
        ("(62 acres)", "62", "62"),
    ],
)
def test_an_answer_phrase_is_whole_words(text: str, piece: str, phrase: str) -> None:
    from index.answering.quotes import whole_words

    start = text.index(piece)
    lo, hi = whole_words(text, start, start + len(piece))
    assert text[lo:hi] == phrase
