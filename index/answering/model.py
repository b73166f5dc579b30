"""How the answer is chosen with the reader: the shortlist it reads, how its verdicts combine with
the retrieval ranking, and the calibrated decision between a confident quote, a "this may answer
it" quote and a decline.

Flow for a batch of questions (`Library._answer_read`; one question is a batch of one):
1. retrieval proposes candidates and the linear ranker orders them (index.search.candidates, index.answering.scorer);
2. the first `shortlist` of them are read by the reader (index.answering.reader): relevance + answer span;
3. `AnswerModel.combine` (a `Rescorer`: a small network, one hidden layer) rescores the shortlist
   from named inputs (COMBINE_INPUTS: the reader's verdicts, the retrieval features, the reader's
   verdict on the neighbouring sentences), the best is the quote;
4. `AnswerModel.confidence` is a logistic model over bounded, named inputs (JUDGE_INPUTS): the
   probability that the quote answers the question. `threshold` and `may_threshold` split it into
   the three replies.
Both models are fitted by `scripts/fit_answer.py` on ../shared/train only and shipped as
`index/answer_model.json` with their model card.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.answering.evidence import EVIDENCE, judge_evidence
from index.answering.reader import QUESTION_TOKENS, ReaderInput, Reading
from index.answering.scorer import Ranked
from index.search.features import FEATURES, columns, row
from index.search.lexical import terms
from index.search.shelf import Shelf

ANSWER_MODEL_FILE = Path(__file__).with_name("answer_model.json")

# Inputs of the shortlist rescoring, per candidate.
COMBINE_INPUTS = (
    "relevance",  # reader logit, clipped to [-12, 12]
    "relevance_rel",  # relevance - best relevance in the shortlist
    "span",  # reader's probability of its best answer phrase
    "ranker",  # linear ranker score - best ranker score (retrieval evidence)
    "rank_pos",  # position in the ranker's order / shortlist length
    # The candidate's retrieval features (index.search.features.FEATURES but the bias).
    *(k for k in FEATURES if k != "bias"),
    # The reader's verdict on the sentence before and after, where the shortlist holds them: the
    # question's words may sit in one sentence and its answer in the next.
    "prev_relevance_rel",  # relevance of the sentence before - best relevance; NO_NEIGHBOUR if unread
    "next_relevance_rel",  # ... of the sentence after
    "prev_read",  # 1 when the shortlist holds the sentence before
    "next_read",
)
NO_NEIGHBOUR = -24.0  # a neighbour's relevance_rel where the shortlist does not hold it (the floor)

# Inputs of the judge: the chosen candidate and the question, every one bounded.
JUDGE_INPUTS = (
    "relevance",  # reader logit of the chosen sentence, clipped
    "relevance_margin",  # its lead over the next candidate's relevance, clipped to [0, 12]
    "softmax",  # its share of the shortlist's combined scores (softmax)
    "span",  # reader's probability of the answer phrase
    "dense",  # cosine(question, sentence)
    "dense_top",  # the best cosine of the question with any candidate: how near the collection comes
    "lex",  # idf-weighted share of question terms in the sentence
    "lex_para",  # ... in the sentence's paragraph window (Shelf.paragraphs)
    "lex_title",  # ... in the sentence or its article's title
    "dense_para",  # cosine(question, that window)
    "missing_key",  # rarest question term missing from the sentence and its neighbours
    "question_terms",  # content terms in the question, min(n, 12) / 12
    "question_tokens",  # word pieces in the question, min(n, QUESTION_TOKENS) / QUESTION_TOKENS
    *EVIDENCE,  # the traps of near-miss questions (index.answering.evidence), each bounded (bounded_evidence)
    "bias",
)
# Evidence values that are counts: scaled to [0, 1] at this many.
_EVIDENCE_COUNTS = {
    "modifiers_missing": 4,
    "caps_not_in_article": 4,
    "caps_not_nearby": 4,
    "q_terms": 12,
    "number_words_missing": 4,
    "quantifier_missing": 4,
    "words_missing": 8,
    "q_words": 32,
}


def bounded_evidence(evidence: np.ndarray) -> np.ndarray:
    """index.answering.evidence's values with counts scaled to [0, 1] and everything clipped to [-1, 1], so
    that no judge input grows with the length of the question."""
    out = np.asarray(evidence, np.float32).copy()
    for i, name in enumerate(EVIDENCE):
        cap = _EVIDENCE_COUNTS.get(name)
        if cap:
            out[i] = min(max(float(out[i]), 0.0), cap) / cap
    return np.clip(out, -1.0, 1.0)


def _clip(x: float, lo: float, hi: float) -> float:
    return float(min(max(x, lo), hi))


def shortlist_neighbours(rows: np.ndarray, articles: np.ndarray) -> np.ndarray:
    """(n, 2): for each shortlisted sentence, the shortlist position of the sentence before it and
    of the one after it in the same article (shelf rows are in article order), -1 where absent."""
    at = {(int(a), int(r)): i for i, (a, r) in enumerate(zip(articles.tolist(), rows.tolist(), strict=True))}
    out = np.full((len(rows), 2), -1, np.int64)
    for i, (a, r) in enumerate(zip(articles.tolist(), rows.tolist(), strict=True)):
        out[i, 0] = at.get((int(a), int(r) - 1), -1)
        out[i, 1] = at.get((int(a), int(r) + 1), -1)
    return out


def combine_inputs(
    readings: list[Reading], ranker_scores: np.ndarray, features: np.ndarray, neighbours: np.ndarray
) -> np.ndarray:
    """(len(readings), len(COMBINE_INPUTS)) for a shortlist in ranker order: `features` are the
    candidates' retrieval features (FEATURES' columns), `neighbours` `shortlist_neighbours`."""
    n = len(readings)
    rel = np.array([_clip(r.relevance, -12, 12) for r in readings], np.float32)
    if n == 0:
        return np.zeros((0, len(COMBINE_INPUTS)), np.float32)
    rel_rel = rel - rel.max()
    values: dict[str, object] = {
        "relevance": rel,
        "relevance_rel": rel_rel,
        "span": [r.span_probability for r in readings],
        "ranker": np.clip(ranker_scores - ranker_scores.max(), -20, 0),
        "rank_pos": np.arange(n) / max(n, 1),
    }
    for k in FEATURES:
        if k != "bias":
            values[k] = np.clip(features[:, FEATURES.index(k)], -20, 20)
    for side, j in (("prev", 0), ("next", 1)):
        at = neighbours[:, j]
        values[f"{side}_relevance_rel"] = np.where(at >= 0, rel_rel[np.maximum(at, 0)], NO_NEIGHBOUR)
        values[f"{side}_read"] = (at >= 0).astype(np.float32)
    return columns(COMBINE_INPUTS, values, n)


def _named(v: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    """A weight vector as {input name: weight} (what answer_model.json stores)."""
    return {k: round(float(x), 6) for k, x in zip(names, v.tolist(), strict=True)}


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh form (torch's `approximate="tanh"`, what fit_answer trains with)."""
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))


@dataclass
class Rescorer:
    """The shortlist rescoring over COMBINE_INPUTS: standardised inputs, then a linear score
    (`hidden` None) or one hidden layer (GELU) and a linear output."""

    out: np.ndarray  # (len(COMBINE_INPUTS),) when linear, else (units,)
    mean: np.ndarray
    scale: np.ndarray
    hidden: np.ndarray | None = None  # (len(COMBINE_INPUTS), units)
    hidden_bias: np.ndarray | None = None  # (units,)

    @classmethod
    def linear(cls, weights: np.ndarray) -> Rescorer:
        n = len(COMBINE_INPUTS)
        return cls(np.asarray(weights, np.float32), np.zeros(n, np.float32), np.ones(n, np.float32))

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        z = (np.asarray(inputs, np.float32) - self.mean) / self.scale
        if self.hidden is None or self.hidden_bias is None:
            return z @ self.out
        return _gelu(z @ self.hidden + self.hidden_bias) @ self.out

    def to_json(self) -> Mapping[str, object]:
        if self.hidden is None or self.hidden_bias is None:
            return _named(self.out, COMBINE_INPUTS)
        return {
            "mean": _named(self.mean, COMBINE_INPUTS),
            "scale": _named(self.scale, COMBINE_INPUTS),
            "hidden": {
                k: [round(float(x), 6) for x in w]
                for k, w in zip(COMBINE_INPUTS, self.hidden.tolist(), strict=True)
            },
            "hidden_bias": [round(float(x), 6) for x in self.hidden_bias.tolist()],
            "out": [round(float(x), 6) for x in self.out.tolist()],
        }

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> Rescorer:
        """Either form; an input the file does not name gets no weight (a retired one is ignored)."""
        if "hidden" not in raw:
            return cls.linear(np.array([float(raw.get(k, 0.0)) for k in COMBINE_INPUTS], np.float32))  # type: ignore[arg-type]
        hidden: dict[str, list[float]] = raw["hidden"]  # type: ignore[assignment]
        bias = np.array(raw["hidden_bias"], np.float32)  # type: ignore[arg-type]
        mean: dict[str, float] = raw["mean"]  # type: ignore[assignment]
        scale: dict[str, float] = raw["scale"]  # type: ignore[assignment]
        units = len(bias)
        return cls(
            np.array(raw["out"], np.float32),  # type: ignore[arg-type]
            np.array([float(mean.get(k, 0.0)) for k in COMBINE_INPUTS], np.float32),
            np.maximum(np.array([float(scale.get(k, 1.0)) for k in COMBINE_INPUTS], np.float32), 1e-6),
            np.array([hidden.get(k, [0.0] * units) for k in COMBINE_INPUTS], np.float32).reshape(-1, units),
            bias,
        )


def judge_inputs(
    readings: list[Reading],
    combined: np.ndarray,
    best: int,
    *,
    dense: float,
    lex: float,
    lex_para: float,
    dense_para: float,
    missing_key: float,
    question_terms: int,
    question_tokens: int,
    evidence: np.ndarray | None = None,
    lex_title: float | None = None,
    dense_top: float | None = None,
) -> np.ndarray:
    """The judge's inputs (JUDGE_INPUTS) for the chosen candidate `best`, each bounded. `lex_title`
    None: no title is known, the sentence's own `lex`; `dense_top` None: no other candidate is
    known, the sentence's own `dense`."""
    rel = np.array([_clip(r.relevance, -12, 12) for r in readings], np.float32)
    others = np.delete(rel, best)
    margin = float(rel[best] - others.max()) if len(others) else 12.0
    z = combined - combined.max()
    soft = float(np.exp(z[best]) / np.exp(z).sum())
    vals = {
        "relevance": float(rel[best]),
        "relevance_margin": _clip(margin, 0, 12),
        "softmax": soft,
        "span": readings[best].span_probability,
        "dense": _clip(dense, -1, 1),
        "dense_top": _clip(dense if dense_top is None else max(dense, dense_top), -1, 1),
        "lex": _clip(lex, 0, 1),
        "lex_para": _clip(lex_para, 0, 1),
        "lex_title": _clip(lex if lex_title is None else lex_title, 0, 1),
        "dense_para": _clip(dense_para, -1, 1),
        "missing_key": _clip(missing_key, 0, 1),
        "question_terms": min(question_terms, 12) / 12,
        "question_tokens": min(question_tokens, QUESTION_TOKENS) / QUESTION_TOKENS,
        "bias": 1.0,
    }
    ev = bounded_evidence(evidence if evidence is not None else np.zeros(len(EVIDENCE), np.float32))
    vals.update(zip(EVIDENCE, map(float, ev), strict=True))
    return row(JUDGE_INPUTS, vals)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-_clip(x, -50, 50)))


@dataclass
class AnswerModel:
    """Shortlist rescoring weights, judge weights (over standardised inputs) and the two thresholds."""

    combine: Rescorer
    judge: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    threshold: float = 0.5  # quote confidently from here
    may_threshold: float = 0.3  # quote as "this may answer it" from here; decline below
    shortlist: int = 12
    span_from: float = 0.3  # highlight the answer phrase when the reader is this sure of it
    info: dict[str, object] = field(default_factory=dict)
    ranker: np.ndarray | None = None  # retrieval ranker weights over index.search.candidates.FEATURES

    @classmethod
    def default(cls) -> AnswerModel:
        """Hand-set weights for an unfitted reader: trust the reader's relevance."""
        c = np.zeros(len(COMBINE_INPUTS), np.float32)
        c[COMBINE_INPUTS.index("relevance")] = 1.0
        j = np.zeros(len(JUDGE_INPUTS), np.float32)
        j[JUDGE_INPUTS.index("relevance")] = 1.0
        n = len(JUDGE_INPUTS)
        return cls(Rescorer.linear(c), j, np.zeros(n, np.float32), np.ones(n, np.float32))

    def rescore(self, inputs: np.ndarray) -> np.ndarray:
        return self.combine(inputs)

    def confidence(self, inputs: np.ndarray) -> float:
        z = (inputs - self.mean) / self.scale
        return _sigmoid(float(z @ self.judge))

    @classmethod
    def load(cls, path: Path = ANSWER_MODEL_FILE) -> AnswerModel:
        if not path.exists():
            return cls.default()
        raw = json.loads(path.read_text())

        def vec(d: dict[str, float], names: tuple[str, ...], default: float) -> np.ndarray:
            return np.array([float(d.get(k, default)) for k in names], np.float32)

        j = raw["judge"]
        return cls(
            Rescorer.from_json(raw["combine"]),
            vec(j["weights"], JUDGE_INPUTS, 0.0),
            vec(j["mean"], JUDGE_INPUTS, 0.0),
            np.maximum(vec(j["scale"], JUDGE_INPUTS, 1.0), 1e-6),
            float(raw["threshold"]),
            float(raw["may_threshold"]),
            int(raw.get("shortlist", 12)),
            float(raw.get("span_from", 0.3)),
            dict(raw.get("info", {})),
            vec(raw["ranker"], FEATURES, 0.0) if raw.get("ranker") else None,
        )

    def save(self, path: Path = ANSWER_MODEL_FILE) -> None:
        raw = {
            "combine": self.combine.to_json(),
            "judge": {
                "weights": _named(self.judge, JUDGE_INPUTS),
                "mean": _named(self.mean, JUDGE_INPUTS),
                "scale": _named(self.scale, JUDGE_INPUTS),
            },
            "threshold": self.threshold,
            "may_threshold": self.may_threshold,
            "shortlist": self.shortlist,
            "span_from": self.span_from,
            "ranker": _named(self.ranker, FEATURES) if self.ranker is not None else None,
            "info": self.info,
        }
        path.write_text(json.dumps(raw, indent=2) + "\n")


class StateCache:
    """Reader inputs of sentences by sentence id, least recently used dropped past `capacity`.
    Sentence ids are database ids, so entries stay valid across shelf swaps (a replaced article
    gets new sentence ids)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[int, ReaderInput] = OrderedDict()

    def get(self, sentence_id: int) -> ReaderInput | None:
        got = self._items.get(sentence_id)
        if got is not None:
            self._items.move_to_end(sentence_id)
        return got

    def put(self, sentence_id: int, value: ReaderInput) -> None:
        self._items[sentence_id] = value
        self._items.move_to_end(sentence_id)
        while len(self._items) > max(self.capacity, 0):
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class Read:
    """One question's shortlist as the reader saw it: ranker order, rows, readings, inputs."""

    question: str
    ranked: Ranked
    short: np.ndarray  # indices into ranked.rows, in ranker order
    rows: list[int]
    readings: list[Reading]
    sentences: list[ReaderInput]
    question_input: ReaderInput

    def combine_inputs(self, shelf: Shelf) -> np.ndarray:
        """The shortlist's rescoring inputs (`combine_inputs`)."""
        rows = np.asarray(self.rows, np.int64)
        return combine_inputs(
            self.readings,
            self.ranked.scores[self.short],
            self.ranked.features[self.short],
            shortlist_neighbours(rows, shelf.article_ids[rows]),
        )

    def judge_inputs(self, shelf: Shelf, combined: np.ndarray, best: int) -> np.ndarray:
        f = self.ranked.features[int(self.short[best])]
        second = [self.rows[i] for i in np.argsort(-combined, kind="stable")[1:2]]
        evidence = judge_evidence(shelf, self.question, self.rows[best], second[0] if second else None)
        return judge_inputs(
            self.readings,
            combined,
            best,
            dense=float(f[_DENSE]),
            lex=float(f[_LEX]),
            lex_para=float(f[_LEX_PARA]),
            dense_para=float(f[_DENSE_PARA]),
            missing_key=float(f[_MISSING]),
            lex_title=float(f[_LEX_TITLE]),
            dense_top=float(self.ranked.features[:, _DENSE].max()),
            question_terms=len(set(terms(self.question))),
            question_tokens=len(self.question_input.states),
            evidence=evidence,
        )

    def unanswerable(self, shelf: Shelf) -> bool:
        """Nothing to quote (Shelf.nothing_to_quote): no word of the question occurs in the
        collection (".", "yo", "k"), or it is one word or phrase over and over ("test test test")."""
        return shelf.nothing_to_quote(self.question)


_DENSE, _LEX, _LEX_PARA, _DENSE_PARA, _MISSING, _LEX_TITLE = (
    FEATURES.index(k) for k in ("dense", "lex", "lex_para", "dense_para", "missing_key", "lex_title")
)
