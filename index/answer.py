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

from index.retrieve import EVIDENCE, FEATURES

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
    *EVIDENCE,  # and its evidence (retrieve.judge_evidence)
    "bias",
)


@dataclass(frozen=True)
class ArticleRef:
    """The article a quote comes from."""

    id: int
    title: str
    url: str | None
    source_id: str | None


@dataclass(frozen=True)
class Quote:
    """A sentence of an article: `text == article.text[start:end]`."""

    text: str
    article: ArticleRef
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Answer:
    """What `Library.ask` returns: a quote with its confidence, or a decline (`quote is None`)."""

    question: str
    quote: Quote | None
    confidence: float  # calibrated probability that the best quote is right
    best: Quote | None = None  # the best candidate even when declining
    alternatives: list[Quote] = field(default_factory=list)  # next best quotes, other sentences
    related: list[Quote] = field(default_factory=list)  # nearest passages, shown when declining
    question_id: int | None = None  # set when the question was logged

    @property
    def answered(self) -> bool:
        return self.quote is not None


@dataclass
class Scorer:
    """Ranker and judge weights, plus the decline threshold."""

    ranker: np.ndarray
    judge: np.ndarray
    threshold: float
    judge_mean: np.ndarray | None = None  # judge inputs are standardised: (x - mean) / scale
    judge_scale: np.ndarray | None = None
    info: dict[str, object] = field(default_factory=dict)

    @classmethod
    def default(cls) -> Scorer:
        """Hand-set weights, used only when no fitted file is present."""
        w = dict.fromkeys(FEATURES, 0.0)
        w.update(dense=4.0, dense_ctx=1.0, lex=4.0, lex_ctx=1.0, type_match=1.0, title=0.5, missing_key=-1.0)
        j = dict.fromkeys(JUDGE_FEATURES, 0.0)
        j.update(top=1.0, missing_share=-2.0, bias=-5.0)
        return cls(
            np.array([w[k] for k in FEATURES], np.float32),
            np.array([j[k] for k in JUDGE_FEATURES], np.float32),
            0.5,
        )

    @classmethod
    def load(cls, path: Path = SCORER_FILE) -> Scorer:
        if not path.exists():
            return cls.default()
        raw = json.loads(path.read_text())
        rk, jd = raw["ranker"], raw["judge"]
        mean, scale = raw.get("judge_mean", {}), raw.get("judge_scale", {})
        return cls(
            np.array([float(rk.get(k, 0.0)) for k in FEATURES], np.float32),
            np.array([float(jd.get(k, 0.0)) for k in JUDGE_FEATURES], np.float32),
            float(raw["threshold"]),
            np.array([float(mean.get(k, 0.0)) for k in JUDGE_FEATURES], np.float32),
            np.array([float(scale.get(k, 1.0)) or 1.0 for k in JUDGE_FEATURES], np.float32),
            dict(raw.get("info", {})),
        )

    def save(self, path: Path = SCORER_FILE) -> None:
        path.write_text(
            json.dumps(
                {
                    "ranker": dict(zip(FEATURES, map(float, self.ranker), strict=True)),
                    "judge": dict(zip(JUDGE_FEATURES, map(float, self.judge), strict=True)),
                    "judge_mean": dict(zip(JUDGE_FEATURES, map(float, self._mean()), strict=True)),
                    "judge_scale": dict(zip(JUDGE_FEATURES, map(float, self._scale()), strict=True)),
                    "threshold": self.threshold,
                    "info": self.info,
                },
                indent=2,
            )
            + "\n"
        )

    def rank(self, features: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", over="ignore"):  # spurious BLAS flags, see retrieve.featurize
            return np.nan_to_num(features @ self.ranker, nan=-1e9)

    def _mean(self) -> np.ndarray:
        return self.judge_mean if self.judge_mean is not None else np.zeros(len(JUDGE_FEATURES), np.float32)

    def _scale(self) -> np.ndarray:
        return self.judge_scale if self.judge_scale is not None else np.ones(len(JUDGE_FEATURES), np.float32)

    def confidence(self, judge_inputs: np.ndarray) -> float:
        """Probability that quoting the best candidate is right, from `judge_features(...)`."""
        x = (judge_inputs - self._mean()) / self._scale()
        return float(1.0 / (1.0 + np.exp(-float(np.clip(x @ self.judge, -50, 50)))))


def judge_features(features: np.ndarray, scores: np.ndarray, evidence: np.ndarray) -> np.ndarray:
    """The judge's inputs for one question: its candidates' features and ranker scores, and the
    best candidate's evidence (`retrieve.judge_evidence`)."""
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
    return np.array([vals[k] for k in JUDGE_FEATURES], np.float32)
