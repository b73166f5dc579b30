"""Token alignment features, and the two-judge decision (the full judge only near the threshold)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.answering.alignment import ALIGNMENT, alignment_features, content_rows, window_dense
from index.answering.scorer import JUDGE_FEATURES, Judge, Scorer, with_alignment
from index.embedding import FakeEmbedder, TokenVectors
from index.library import Library
from index.settings import LibrarySettings
from tests.conftest import sample_docs

C = "local"


def align(question: str, sentence: str, *neighbours: str) -> dict[str, float]:
    fake = FakeEmbedder()
    q, s, *ctx = fake.encode_tokens([question, sentence, *neighbours])
    values = alignment_features(q, s, [s, *ctx], fake.encode([question])[0])
    assert values.shape == (len(ALIGNMENT),) and np.isfinite(values).all()
    return dict(zip(ALIGNMENT, values.tolist(), strict=True))


def test_content_rows_skip_question_and_stop_words() -> None:
    tokens = ["who", "is", "the", "spokes", "##man", "?", "kirby"]
    assert content_rows(tokens) == [3, 4, 6]


def test_every_word_found_aligns_fully() -> None:
    got = align("When did the museum open?", "The museum opened in 1998.")
    assert got["align_min"] > 0.5 and got["align_inexact"] == 1.0  # "open" ~ "opened", not equal
    exact = align("When did the museum open?", "The museum will open in 1998.")
    assert exact["align_min"] == pytest.approx(1.0) and exact["align_inexact"] == 0.0


def test_a_swapped_word_lowers_the_weakest_match() -> None:
    same = align("Which campaign targeted women?", "The campaign targeted women.")
    swapped = align("Which campaign targeted children?", "The campaign targeted women.")
    assert swapped["align_min"] < same["align_min"]
    assert swapped["align_below_50"] >= 1.0 and same["align_below_50"] == 0.0


def test_neighbours_count_for_the_context_features_only() -> None:
    got = align("What did the mayor open?", "The museum opened in 1998.", "The mayor spoke.")
    assert got["align_ctx_min"] > got["align_min"]


def test_window_dense_finds_the_matching_clause_of_a_long_sentence() -> None:
    fake = FakeEmbedder()
    question = "museum opened"
    long = "The museum opened " + " ".join(f"filler{i}" for i in range(60))
    [tokens] = fake.encode_tokens([long])
    q = fake.encode([question])[0]
    assert window_dense(q, tokens) > float(fake.encode([long])[0] @ q)
    assert window_dense(q, TokenVectors([], np.zeros((0, fake.dim), np.float32))) == 0.0


class CountingEmbedder(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.token_calls = 0

    def encode_tokens(self, texts: list[str], *, batch_size: int = 64) -> list[TokenVectors]:
        self.token_calls += 1
        return super().encode_tokens(texts, batch_size=batch_size)


def two_judges(lite_bias: float, band: float) -> Scorer:
    """A scorer whose lite judge always says sigmoid(lite_bias) and whose full judge says 0.99."""
    base = Scorer.load()
    n = len(base.full.weights)
    bias = n - 1
    lite = np.zeros(n, np.float32)
    lite[bias] = lite_bias
    full = np.zeros(n, np.float32)
    full[bias] = 4.6  # sigmoid(4.6) = 0.99
    one, zero = np.ones(n, np.float32), np.zeros(n, np.float32)
    without_alignment = ~np.isin(np.arange(n), [JUDGE_FEATURES.index(k) for k in ALIGNMENT])
    return Scorer(base.ranker, Judge(full, zero, one), 0.5, Judge(lite, zero, one, without_alignment), band)


@pytest.mark.parametrize(
    ("lite_bias", "band", "full_used"),
    [(0.0, 0.15, True), (3.0, 0.15, False), (-3.0, 0.15, False), (3.0, 0.5, True)],
)
def test_the_full_judge_runs_only_near_the_threshold(
    tmp_path: Path, lite_bias: float, band: float, full_used: bool
) -> None:
    fake = CountingEmbedder()
    lib = Library(LibrarySettings(data_dir=tmp_path), embedder=fake, scorer=two_judges(lite_bias, band))
    try:
        lib.add_documents(C, sample_docs())
        ans = lib.ask(C, "How long does the Moon take to orbit the Earth?")
        [batch] = lib.ask_many(C, ["How long does the Moon take to orbit the Earth?"])
    finally:
        lib.close()
    lite = 1 / (1 + np.exp(-lite_bias))
    assert (fake.token_calls > 0) == full_used
    assert ans.confidence == pytest.approx(0.99 if full_used else lite, abs=0.01)
    assert batch.confidence == pytest.approx(ans.confidence, abs=1e-6)


def test_with_alignment_fills_only_the_alignment_inputs() -> None:
    n = len(Scorer.load().full.weights)
    inputs = np.arange(n, dtype=np.float32)
    out = with_alignment(inputs, np.full(len(ALIGNMENT), -1.0, np.float32))
    changed = np.flatnonzero(out != inputs)
    assert len(changed) == len(ALIGNMENT) and inputs[0] == 0.0


def test_scorer_round_trips(tmp_path: Path) -> None:
    sc = Scorer.load()
    path = tmp_path / "scorer.json"
    sc.save(path)
    again = Scorer.load(path)
    assert again.threshold == sc.threshold and again.band == sc.band
    assert again.lite is not None and sc.lite is not None
    assert sc.full.uses_alignment and not sc.lite.uses_alignment
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.normal(size=len(JUDGE_FEATURES)).astype(np.float32)
        assert again.full.probability(x) == pytest.approx(sc.full.probability(x), abs=1e-5)
        assert again.lite.probability(x) == pytest.approx(sc.lite.probability(x), abs=1e-5)


def test_the_lite_judge_ignores_the_alignment_inputs() -> None:
    sc = Scorer.load()
    assert sc.lite is not None and sc.lite.networks, "the shipped judges average networks in"
    x = np.random.default_rng(1).normal(size=len(JUDGE_FEATURES)).astype(np.float32)
    other = with_alignment(x, np.full(len(ALIGNMENT), 7.0, np.float32))
    assert sc.lite.probability(other) == pytest.approx(sc.lite.probability(x), abs=1e-6)
    assert sc.full.probability(other) != pytest.approx(sc.full.probability(x), abs=1e-6)
