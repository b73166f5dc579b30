"""Fit the answer ranker and judges on an eval split and write index/scorer.json.

    python scripts/fit_scorer.py ARTICLES.jsonl QUESTIONS.jsonl [--folds 5] [--band 0.07]
        [--networks 3] [--tolerance 0.001] [--ship-threshold T] [--drop FEATURES] [--data-dir DIR]
        [--out index/scorer.json]

Ingests the articles (into --data-dir, or a throwaway dir) with the real model, collects every
question's candidate sentences and features, then:
  - cross-validates by article (grouped folds): ranker and both judges are fitted on the other folds
    and the held-out fold is scored at every threshold from 0.20 to 0.60 with the shipped decision
    rule (the lite judge, or the full one within --band of the threshold);
  - ships the lowest threshold whose cross-validated accuracy is within --tolerance of the best
    (or --ship-threshold), with the ranker and judges refitted on everything; the figures go to
    `info` in the file.
The ranker is a listwise softmax over a question's candidates (positives: sentences containing a
gold answer, score.py's rule); each judge is the mean of a sign-constrained logistic regression
and --networks small networks (scikit-learn's MLP, 32 hidden units, L2 1.0) of "the top quote is
right"; the lite judge does without the token-alignment inputs.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index.answering.alignment import ALIGNMENT, alignment_features
from index.answering.evidence import EVIDENCE, judge_evidence
from index.answering.scorer import JUDGE_FEATURES, SCORER_FILE, Judge, Network, Scorer, judge_features
from index.embedding import Embedder, TokenVectors
from index.evaluation.metrics import hits
from index.evaluation.trainingdata import read_jsonl
from index.library import Library
from index.search.features import FEATURES, Candidates
from index.search.shelf import Shelf
from index.settings import LibrarySettings
from index.types import Document


class Evidence:
    """The judge's evidence and alignment inputs per (question, best row, runner-up), computed on
    demand and cached across folds; token vectors are encoded in batches and cached by row."""

    def __init__(self, shelf: Shelf, embedder: Embedder, questions: list[str]) -> None:
        self.shelf = shelf
        self.embedder = embedder
        self.question_tokens = dict(zip(questions, embedder.encode_tokens(questions), strict=True))
        self.sentence_tokens: dict[int, TokenVectors] = {}
        self.cache: dict[tuple[str, int, int | None], np.ndarray] = {}

    def prepare(self, rows: set[int]) -> None:
        """Encode the token vectors of these rows' neighbourhoods in one batch."""
        need = sorted(
            {r for row in rows for r in self.shelf.neighbourhood(row)} - self.sentence_tokens.keys()
        )
        toks = self.embedder.encode_tokens([self.shelf.sentence_text(r) for r in need])
        self.sentence_tokens.update(zip(need, toks, strict=True))

    def __call__(self, d: dict, k: int, runner_up: int | None) -> tuple[np.ndarray, np.ndarray]:
        row = int(d["rows"][k])
        second = int(d["rows"][runner_up]) if runner_up is not None else None
        key = (d["qid"], row, second)
        got = self.cache.get(key)
        if got is None:
            self.prepare({row})
            ctx = [self.sentence_tokens[r] for r in self.shelf.neighbourhood(row)]
            got = self.cache[key] = np.concatenate(
                [
                    judge_evidence(self.shelf, d["q"], row, second),
                    alignment_features(
                        self.question_tokens[d["q"]], self.sentence_tokens[row], ctx, d["qvec"]
                    ),
                ]
            )
        n = len(EVIDENCE)
        return got[:n], got[n:]


def collect(articles: Path, questions: Path, data_dir: Path) -> tuple[list[dict], Evidence]:
    lib = Library(LibrarySettings(data_dir=data_dir), scorer=Scorer.default())  # candidates need no weights
    arts = read_jsonl(articles)
    lib.add_documents(
        "fit", [Document(a["text"], a.get("title") or a["id"], a.get("url"), a["id"], "jsonl") for a in arts]
    )
    shelf = lib.shelf("fit")
    qs = read_jsonl(questions)
    qvecs = lib.embedder.encode([q["question"] for q in qs], batch_size=64)
    out = []
    for q, v in zip(qs, qvecs, strict=True):
        text = " ".join(q["question"].split())
        # The candidates and features the served pipeline ranks (Pipeline.candidates).
        c = lib.pipeline.candidates(shelf, text, v) or Candidates(
            np.zeros(0, np.int64), np.zeros((0, len(FEATURES)), np.float32)
        )
        rows = c.rows
        labels = np.array([hits(shelf.sentence_text(int(r)), q["answers"]) for r in rows], bool)
        src = [shelf.refs[int(shelf.article_ids[r])][1] for r in rows]
        out.append(
            {
                "qid": q["qid"],
                "q": text,
                "article": q["article_id"],
                "answerable": bool(q["answerable"]),
                "X": c.features.astype(np.float64),
                "y": labels,
                "src": src,
                "rows": rows,
                "qvec": v,
            }
        )
    return out, Evidence(shelf, lib.embedder, sorted({d["q"] for d in out}))


def fit_ranker(data: list[dict], l2: float = 1e-4) -> np.ndarray:
    groups = [(d["X"], d["y"]) for d in data if d["y"].any() and not d["y"].all()]
    dim = len(FEATURES)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.0, np.zeros(dim)
        for X, y in groups:
            s = X @ w
            s -= s.max()
            e = np.exp(s)
            z = e.sum()
            pz = e[y].sum()
            total -= math.log(pz / z)
            p_all = e / z
            p_pos = e * y / pz
            grad -= (p_pos - p_all) @ X
        n = len(groups)
        return total / n + l2 * float(w @ w), grad / n + 2 * l2 * w

    w0 = np.array(Scorer.default().ranker, np.float64)
    res = minimize(loss, w0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return res.x


def judge_rows(
    data: list[dict], w: np.ndarray, ev: Evidence
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, correct, answerable, hit = [], [], [], []
    scored = [(d, (d["X"] @ w).astype(np.float32)) for d in data if len(d["rows"])]
    ev.prepare({int(d["rows"][int(np.argmax(s))]) for d, s in scored})
    for d, s in scored:
        order = np.argsort(-s)
        top = int(order[0])
        h = bool(d["y"][top])
        evidence, alignment = ev(d, top, int(order[1]) if len(order) > 1 else None)
        X.append(judge_features(d["X"].astype(np.float32), s, evidence, alignment))
        correct.append(d["answerable"] and h)
        answerable.append(d["answerable"])
        hit.append(h)
    return np.array(X, np.float64), np.array(correct), np.array(answerable), np.array(hit)


# Evidence whose direction we know: more of it can only raise (+) or lower (-) the confidence. Fixing
# the signs keeps the judge sensible on text unlike the training data (no "finding every question word
# counts against you" artefacts from correlated features).
SIGNS = {
    "top": +1,
    "margin": +1,
    "softmax": +1,
    "dense": +1,
    "dense_ctx": +1,
    "lex": +1,
    "lex_ctx": +1,
    "type_match": +1,
    "bigram": +1,
    "full_coverage": +1,
    "missing_key": -1,
    "missing_share": -1,
    "missing_unseen": -1,
    "caps_missing": -1,
    "numbers_missing": -1,
    "negation_mismatch": -1,
    "modifiers_missing": -1,
    "any_modifier_missing": -1,
    "caps_not_in_article": -1,
    "caps_not_nearby": -1,
    "affix_flip": -1,
    "antonym": -1,
    "number_words_missing": -1,
    "quantifier_missing": -1,
    "quantifier_extra": -1,
    "order_discord": -1,
    "words_missing": -1,
    "missing_in_article": -1,
    "answer_adjacent": +1,
    "align_min": +1,
    "align_mean": +1,
    "align_ctx_min": +1,
    "align_ctx_mean": +1,
    "align_ctx_second": +1,
    "align_below_50": -1,
    "align_share_below_60": -1,
    "align_inexact_min": +1,
    "align_inexact_mean": +1,
    "align_inexact": -1,
}


# Judge inputs left out (weight fixed at 0), set from --drop.
DROPPED: set[str] = set()


def fit_judge(
    X: np.ndarray, y: np.ndarray, l2: float = 1e-3, leave_out: frozenset[str] = frozenset()
) -> np.ndarray:
    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = X @ w
        p = 1 / (1 + np.exp(-z))
        eps = 1e-12
        ll = -(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)).mean()
        g = X.T @ (p - y) / len(y)
        return ll + l2 * float(w @ w), g + 2 * l2 * w

    bounds = [
        (0, 0)
        if k in DROPPED or k in leave_out
        else (0, None)
        if SIGNS.get(k) == 1
        else (None, 0)
        if SIGNS.get(k) == -1
        else (None, None)
        for k in JUDGE_FEATURES
    ]
    res = minimize(
        loss, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 1000}
    )
    return res.x


def standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale < 1e-9] = 1.0
    bias = JUDGE_FEATURES.index("bias")
    mean[bias], scale[bias] = 0.0, 1.0
    return mean, scale


@dataclass
class Fitted:
    """A fitted ranker and both judges (see index.answering.scorer.Scorer)."""

    ranker: np.ndarray
    full: Judge
    lite: Judge
    band: float

    def probabilities(self, X: np.ndarray, t: float) -> np.ndarray:
        """The shipped decision rule's confidences at threshold t: the lite judge's, or the full
        judge's where the lite one is within `band` of t."""
        lite = np.array([self.lite.probability(x) for x in X])
        full = np.array([self.full.probability(x) for x in X])
        return np.where(np.abs(lite - t) <= self.band, full, lite)

    def scorer(self, threshold: float, info: dict[str, object]) -> Scorer:
        return Scorer(self.ranker.astype(np.float32), self.full, threshold, self.lite, self.band, info)


def fit_networks(Z: np.ndarray, y: np.ndarray, used: np.ndarray, count: int) -> list[Network]:
    """`count` small networks (different seeds) over the used standardised inputs."""
    from sklearn.neural_network import MLPClassifier  # sentence-transformers depends on scikit-learn

    Zu = np.where(used, Z, 0.0)
    nets = []
    for seed in range(count):
        m = MLPClassifier((32,), alpha=1.0, max_iter=2000, random_state=seed).fit(Zu, y)
        w1 = np.where(used[:, None], m.coefs_[0], 0.0).astype(np.float32)
        nets.append(
            Network(
                w1,
                m.intercepts_[0].astype(np.float32),
                m.coefs_[1][:, 0].astype(np.float32),
                float(m.intercepts_[1][0]),
            )
        )
    return nets


def fit_all(data: list[dict], ev: Evidence, band: float, networks: int) -> Fitted:
    w = fit_ranker(data)
    X, correct, _, _ = judge_rows(data, w, ev)
    mean, scale = standardise(X)
    Z = (X - mean) / scale
    y = correct.astype(np.float64)
    m, sc = mean.astype(np.float32), scale.astype(np.float32)
    every = np.ones(len(JUDGE_FEATURES), bool)
    no_alignment = np.array([k not in ALIGNMENT for k in JUDGE_FEATURES])
    full = Judge(fit_judge(Z, y).astype(np.float32), m, sc, every, fit_networks(Z, y, every, networks))
    lite_w = fit_judge(Z, y, leave_out=frozenset(ALIGNMENT)).astype(np.float32)
    lite = Judge(lite_w, m, sc, no_alignment, fit_networks(Z, y, no_alignment, networks))
    return Fitted(w, full, lite, band)


def evaluate(
    data: list[dict], ev: Evidence, f: Fitted, thresholds: list[float]
) -> dict[float, dict[str, float]]:
    """Metrics of `data` at each threshold, as sums (divide by "n" for rates)."""
    X, correct, answerable, hit = judge_rows(data, f.ranker, ev)
    out = {}
    for t in thresholds:
        p = f.probabilities(X, t)
        keep = p >= t
        out[t] = {
            "n": float(len(data)),
            "n_ans": float(answerable.sum()),
            "hits": float(np.sum(hit & answerable)),
            "correct": float(np.sum(keep & hit & answerable) + np.sum(~keep & ~answerable)),
            "declined_ans": float(np.sum(~keep & answerable)),
            "declined_unans": float(np.sum(~keep & ~answerable)),
            "sq_err": float(np.sum((p - correct) ** 2)),
        }
    return out


def rates(s: dict[str, float], n_unans: float) -> dict[str, float]:
    return {
        "hit@1": s["hits"] / s["n_ans"],
        "acc": s["correct"] / s["n"],
        "decline_ans": s["declined_ans"] / s["n_ans"],
        "decline_unans": s["declined_unans"] / max(1.0, n_unans),
        "brier": s["sq_err"] / s["n"],
    }


def add(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: a.get(k, 0.0) + v for k, v in b.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("articles", type=Path)
    ap.add_argument("questions", type=Path)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=SCORER_FILE)
    ap.add_argument(
        "--networks", type=int, default=3, help="small networks averaged into each judge (0: linear only)"
    )
    ap.add_argument(
        "--tolerance", type=float, default=0.001, help="CV accuracies this close to the best count as a tie"
    )
    ap.add_argument("--drop", default="", help="comma-separated judge features to leave out (weight 0)")
    ap.add_argument(
        "--data-dir", type=Path, default=None, help="keep the ingested articles here (reused by the next run)"
    )
    ap.add_argument(
        "--ship-threshold",
        type=float,
        default=None,
        help="ship this decline threshold instead of the cross-validated best one",
    )
    ap.add_argument(
        "--band",
        type=float,
        default=0.07,
        help="the full judge decides within this distance of the threshold",
    )
    args = ap.parse_args()
    DROPPED.update(k for k in args.drop.split(",") if k)
    if unknown := DROPPED - set(JUDGE_FEATURES):
        ap.error(f"unknown judge features: {sorted(unknown)}")
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        data, ev = collect(args.articles, args.questions, args.data_dir or Path(tmp))
        fit_and_report(args, data, ev, t0)


def fit_and_report(args: argparse.Namespace, data: list[dict], ev: Evidence, t0: float) -> None:
    print(
        f"collected {len(data)} questions in {time.time() - t0:.0f}s; "
        f"candidate recall {np.mean([d['y'].any() for d in data if d['answerable']]):.4f}"
    )
    arts = sorted({d["article"] for d in data})
    rng = np.random.default_rng(0)
    rng.shuffle(arts)
    folds = [set(arts[i :: args.folds]) for i in range(args.folds)]
    grid = [round(float(u), 2) for u in np.arange(0.20, 0.605, 0.01)]
    cv: dict[float, dict[str, float]] = {t: {} for t in grid}
    for k, held in enumerate(folds):
        train = [d for d in data if d["article"] not in held]
        test = [d for d in data if d["article"] in held]
        for t, sums in evaluate(test, ev, fit_all(train, ev, args.band, args.networks), grid).items():
            cv[t] = add(cv[t], sums)
        print(f"fold {k}: {len(test)} questions")
    n_unans = float(sum(not d["answerable"] for d in data))
    cv_rates = {t: rates(s, n_unans) for t, s in cv.items()}
    print(
        "cross-validated accuracy by threshold: "
        + " ".join(f"{t:.2f}:{r['acc']:.4f}" for t, r in cv_rates.items())
    )
    # Ship the threshold that was best on the held-out folds (the one best on all of dev is
    # optimistic), unless told otherwise.
    # Thresholds within --tolerance of the best accuracy are a tie (the curve is flat at its top and
    # differences there are noise): the lowest wins, so that the bot declines no more than it must.
    best_acc = max(r["acc"] for r in cv_rates.values())
    cv_t = min(t for t in grid if cv_rates[t]["acc"] >= best_acc - args.tolerance)
    shipped = cv_t if args.ship_threshold is None else args.ship_threshold
    print(f"cross-validated at {cv_t:.2f}: " + " ".join(f"{a}={b:.4f}" for a, b in cv_rates[cv_t].items()))
    fitted = fit_all(data, ev, args.band, args.networks)
    train = {t: rates(s, n_unans) for t, s in evaluate(data, ev, fitted, sorted({*grid, shipped})).items()}
    print(f"fit on all, at {shipped:.2f}: " + " ".join(f"{a}={b:.4f}" for a, b in train[shipped].items()))
    X, _, _, _ = judge_rows(data, fitted.ranker, ev)
    lite = np.array([fitted.lite.probability(x) for x in X])
    in_band = float(np.mean(np.abs(lite - shipped) <= args.band))
    print(f"questions the full judge decides (lite within {args.band} of the threshold): {in_band:.3f}")
    info: dict[str, object] = {
        "fitted_on": str(args.articles.parent.name),
        "questions": len(data),
        "folds": args.folds,
        "cv_threshold": cv_t,
        "cv": {k: round(v, 4) for k, v in cv_rates[cv_t].items()},
        "cv_accuracy_by_threshold": {f"{t:.2f}": round(r["acc"], 4) for t, r in cv_rates.items()},
        "train": {k: round(v, 4) for k, v in train[shipped].items()},
        "full_judge_share": round(in_band, 4),
        "dropped": sorted(DROPPED),
        "command": "python scripts/fit_scorer.py " + " ".join(sys.argv[1:]),
    }
    fitted.scorer(shipped, info).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
