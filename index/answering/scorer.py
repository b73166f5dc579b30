"""Choose the quote (or decline) from scored candidates, with a calibrated confidence.

Two small linear models, fitted on data by `scripts/fit_scorer.py` and shipped as
`index/scorer.json`:
- the *ranker* scores every candidate sentence (a listwise softmax over a question's candidates);
- the *judge* turns the best candidate's evidence into the probability that quoting it is right
  (logistic regression, so the number shown to users is a calibrated probability).
The bot quotes when that probability reaches `threshold`, otherwise it declines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.answering.alignment import ALIGNMENT
from index.answering.evidence import EVIDENCE
from index.search.features import FEATURES

SCORER_FILE = Path(__file__).with_name("scorer.json")

# The best candidate's ranking features that the judge also weighs.
_JUDGED_FEATURES = (
    "dense", "dense_ctx", "lex", "lex_ctx", "missing_key", "type_match", "title", "article_dense", "novel", "log_len",
)  # fmt: skip

JUDGE_FEATURES = (
    "top",  # ranker score of the best candidate
    "margin",  # best - second best ranker score
    "softmax",  # softmax probability of the best candidate among the candidates
    *_JUDGED_FEATURES,
    *EVIDENCE,  # and its evidence (evidence.judge_evidence)
    *ALIGNMENT,  # and how well its words match the question's (alignment.alignment_features)
    "bias",
)
_ALIGNMENT_SLICE = slice(JUDGE_FEATURES.index(ALIGNMENT[0]), JUDGE_FEATURES.index(ALIGNMENT[-1]) + 1)


@dataclass(frozen=True)
class Ranked:
    """A question's candidate sentences (shelf rows), their features and ranker scores, best first
    in `order`."""

    question: str
    qvec: np.ndarray
    rows: np.ndarray
    features: np.ndarray
    scores: np.ndarray
    order: np.ndarray

    @property
    def best_row(self) -> int:
        return int(self.rows[self.order[0]])

    @property
    def runner_up(self) -> int | None:
        return int(self.rows[self.order[1]]) if len(self.order) > 1 else None


@dataclass
class Network:
    """A one-hidden-layer network over standardised judge inputs (ReLU, then a logistic output)."""

    w1: np.ndarray  # (len(JUDGE_FEATURES), hidden)
    b1: np.ndarray
    w2: np.ndarray  # (hidden,)
    b2: float

    def logit(self, z: np.ndarray) -> float:
        with np.errstate(invalid="ignore", over="ignore"):  # spurious BLAS flags, see retrieve.featurize
            h = np.maximum(z @ self.w1 + self.b1, 0.0)
            return float(np.nan_to_num(h @ self.w2 + self.b2))

    def to_json(self, used: np.ndarray) -> dict[str, object]:
        """The weights, with the first layer's rows of the `used` inputs only (in their order)."""
        return {
            "w1": self.w1[used].round(6).tolist(),
            "b1": self.b1.round(6).tolist(),
            "w2": self.w2.round(6).tolist(),
            "b2": self.b2,
        }

    @classmethod
    def from_json(cls, raw: dict[str, object], inputs: list[str]) -> Network:
        stored = np.asarray(raw["w1"], np.float32)
        w1 = np.zeros((len(JUDGE_FEATURES), stored.shape[1]), np.float32)
        for i, name in enumerate(inputs):  # by name, so a reordered feature list cannot scramble it
            if name in JUDGE_FEATURES:
                w1[JUDGE_FEATURES.index(name)] = stored[i]
        return cls(w1, np.asarray(raw["b1"], np.float32), np.asarray(raw["w2"], np.float32), float(raw["b2"]))  # type: ignore[arg-type]


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-float(np.clip(x, -50, 50)))))


@dataclass
class Judge:
    """The probability that quoting the best candidate is right, from its judge inputs: the mean of
    a sign-constrained logistic regression and of small networks, over standardised inputs.

    `used` masks the inputs this judge weighs; the others are ignored (the lite judge's alignment)."""

    weights: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    used: np.ndarray = field(default_factory=lambda: np.ones(len(JUDGE_FEATURES), bool))
    networks: list[Network] = field(default_factory=list)

    def standardise(self, judge_inputs: np.ndarray) -> np.ndarray:
        return np.where(self.used, (judge_inputs - self.mean) / self.scale, 0.0).astype(np.float32)

    def probability(self, judge_inputs: np.ndarray) -> float:
        z = self.standardise(judge_inputs)
        linear = _sigmoid(float(z @ self.weights))
        if not self.networks:
            return linear
        net = float(np.mean([_sigmoid(n.logit(z)) for n in self.networks]))
        return (linear + net) / 2

    def to_json(self) -> dict[str, object]:
        names = list(JUDGE_FEATURES)
        return {
            "inputs": [k for k, u in zip(names, self.used.tolist(), strict=True) if u],
            "weights": dict(zip(names, map(float, self.weights), strict=True)),
            "mean": dict(zip(names, map(float, self.mean), strict=True)),
            "scale": dict(zip(names, map(float, self.scale), strict=True)),
            "networks": [n.to_json(self.used) for n in self.networks],
        }

    @classmethod
    def from_json(cls, raw: dict) -> Judge:  # type: ignore[type-arg]
        w, mean, scale = raw["weights"], raw.get("mean", {}), raw.get("scale", {})
        inputs = list(raw.get("inputs") or JUDGE_FEATURES)
        return cls(
            np.array([float(w.get(k, 0.0)) for k in JUDGE_FEATURES], np.float32),
            np.array([float(mean.get(k, 0.0)) for k in JUDGE_FEATURES], np.float32),
            np.array([float(scale.get(k, 1.0)) or 1.0 for k in JUDGE_FEATURES], np.float32),
            np.array([k in inputs for k in JUDGE_FEATURES], bool),
            [Network.from_json(n, inputs) for n in raw.get("networks", [])],
        )

    @property
    def uses_alignment(self) -> bool:
        return bool(self.used[[JUDGE_FEATURES.index(k) for k in ALIGNMENT]].any())


@dataclass
class Scorer:
    """Ranker and judge weights, plus the decline threshold.

    Two judges: `lite` weighs everything but the token alignment (which costs a second pass of the
    model over the best sentence and its neighbours); `full` weighs everything. The full judge is
    consulted only when the lite one is unsure, within `band` of the threshold: far from it, the
    alignment would not change the decision.
    """

    ranker: np.ndarray
    full: Judge
    threshold: float
    lite: Judge | None = None
    band: float = 0.07
    info: dict[str, object] = field(default_factory=dict)

    @classmethod
    def default(cls) -> Scorer:
        """Hand-set weights, used only when no fitted file is present."""
        w = dict.fromkeys(FEATURES, 0.0)
        w.update(dense=4.0, dense_ctx=1.0, lex=4.0, lex_ctx=1.0, type_match=1.0, title=0.5, missing_key=-1.0)
        j = dict.fromkeys(JUDGE_FEATURES, 0.0)
        j.update(top=1.0, missing_share=-2.0, bias=-5.0)
        n = len(JUDGE_FEATURES)
        return cls(
            np.array([w[k] for k in FEATURES], np.float32),
            Judge(
                np.array([j[k] for k in JUDGE_FEATURES], np.float32),
                np.zeros(n, np.float32),
                np.ones(n, np.float32),
            ),
            0.5,
        )

    @classmethod
    def load(cls, path: Path = SCORER_FILE) -> Scorer:
        if not path.exists():
            return cls.default()
        raw = json.loads(path.read_text())
        rk = raw["ranker"]
        return cls(
            np.array([float(rk.get(k, 0.0)) for k in FEATURES], np.float32),
            Judge.from_json(raw["judge"]),
            float(raw["threshold"]),
            Judge.from_json(raw["judge_lite"]) if raw.get("judge_lite") else None,
            float(raw.get("band", 0.07)),
            dict(raw.get("info", {})),
        )

    def save(self, path: Path = SCORER_FILE) -> None:
        path.write_text(
            json.dumps(
                {
                    "ranker": dict(zip(FEATURES, map(float, self.ranker), strict=True)),
                    "judge": self.full.to_json(),
                    "judge_lite": self.lite.to_json() if self.lite else None,
                    "threshold": self.threshold,
                    "band": self.band,
                    "info": self.info,
                },
                indent=2,
            )
            + "\n"
        )

    def rank(self, features: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", over="ignore"):  # spurious BLAS flags, see retrieve.featurize
            return np.nan_to_num(features @ self.ranker, nan=-1e9)

    def needs_alignment(self, lite_confidence: float | None, threshold: float) -> bool:
        """Whether the full judge (and so the token alignment) is needed for this question."""
        if not self.full.uses_alignment:
            return False
        return lite_confidence is None or abs(lite_confidence - threshold) <= self.band

    def lite_confidence(self, judge_inputs: np.ndarray) -> float | None:
        """The lite judge's probability (None without a lite judge); alignment inputs are ignored."""
        return self.lite.probability(judge_inputs) if self.lite else None


def judge_features(
    features: np.ndarray, scores: np.ndarray, evidence: np.ndarray, alignment: np.ndarray
) -> np.ndarray:
    """The judge's inputs for one question: its candidates' features and ranker scores, and the
    best candidate's evidence (`evidence.judge_evidence`) and alignment (`alignment.alignment_features`)."""
    order = np.argsort(-scores)
    top = int(order[0])
    second = float(scores[order[1]]) if len(order) > 1 else float(scores[top]) - 5.0
    z = scores - scores[top]
    soft = 1.0 / float(np.exp(z).sum())
    fi = {k: i for i, k in enumerate(FEATURES)}
    row = features[top]
    vals = {
        "top": float(scores[top]),
        "margin": float(scores[top]) - second,
        "softmax": soft,
        "bias": 1.0,
    }
    for k in _JUDGED_FEATURES:
        vals[k] = float(row[fi[k]])
    vals.update(zip(EVIDENCE, map(float, evidence), strict=True))
    vals.update(zip(ALIGNMENT, map(float, alignment), strict=True))
    return np.array([vals[k] for k in JUDGE_FEATURES], np.float32)


def with_alignment(judge_inputs: np.ndarray, alignment: np.ndarray) -> np.ndarray:
    """A copy of the judge's inputs with the alignment features filled in."""
    out = judge_inputs.copy()
    out[_ALIGNMENT_SLICE] = alignment
    return out
