"""Fit the answer ranker and judge on an eval split and write index/scorer.json.

    python scripts/fit_scorer.py ARTICLES.jsonl QUESTIONS.jsonl [--folds 5] [--out index/scorer.json]

Ingests the articles into a throwaway data dir with the real model, collects every question's
candidate sentences and features, then:
  - cross-validates by article (grouped folds): ranker, judge and threshold are fitted on the
    other folds and measured on the held-out one; the figures are printed and stored in `info`;
  - fits the final ranker and judge on everything and picks the threshold that maximises accuracy.
The ranker is a listwise softmax over a question's candidates (positives: sentences containing a
gold answer, score.py's rule); the judge is a logistic regression of "the top quote is right".
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index.answer import JUDGE_FEATURES, SCORER_FILE, Scorer, judge_features
from index.evaluation import best_threshold, hits
from index.extract import Document
from index.lexical import terms
from index.library import Library, LibrarySettings
from index.retrieve import FEATURES, Shelf, candidate_rows, featurize, judge_evidence


class Evidence:
    """judge_evidence per (question, row), computed on demand and cached across folds."""

    def __init__(self, shelf: Shelf) -> None:
        self.shelf = shelf
        self.cache: dict[tuple[str, int], np.ndarray] = {}

    def __call__(self, d: dict, k: int) -> np.ndarray:
        row = int(d["rows"][k])
        key = (d["qid"], row)
        got = self.cache.get(key)
        if got is None:
            got = self.cache[key] = judge_evidence(self.shelf, d["q"], row)
        return got


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def collect(articles: Path, questions: Path, data_dir: Path) -> tuple[list[dict], Evidence]:
    lib = Library(LibrarySettings(data_dir=data_dir))
    arts = read_jsonl(articles)
    lib.add_documents(
        "fit", [Document(a["text"], a.get("title") or a["id"], a.get("url"), a["id"], "jsonl") for a in arts]
    )
    shelf = lib.shelf("fit")
    qs = read_jsonl(questions)
    st = lib.settings
    qvecs = lib.embedder.encode([q["question"] for q in qs], batch_size=64)
    out = []
    for q, v in zip(qs, qvecs, strict=True):
        text = " ".join(q["question"].split())
        rows = candidate_rows(
            shelf,
            v,
            shelf.vocab.lookup(terms(text)),
            dense_k=st.dense_k,
            lexical_k=st.lexical_k,
            passage_k=st.passage_k,
            exhaustive_limit=st.exhaustive_limit,
        )
        c = featurize(shelf, rows, text, v)
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
            }
        )
    return out, Evidence(shelf)


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
    for d in data:
        if len(d["rows"]) == 0:
            continue
        s = (d["X"] @ w).astype(np.float32)
        top = int(np.argmax(s))
        h = bool(d["y"][top])
        X.append(judge_features(d["X"].astype(np.float32), s, ev(d, top)))
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
}


def fit_judge(X: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = X @ w
        p = 1 / (1 + np.exp(-z))
        eps = 1e-12
        ll = -(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)).mean()
        g = X.T @ (p - y) / len(y)
        return ll + l2 * float(w @ w), g + 2 * l2 * w

    bounds = [
        (0, None) if SIGNS.get(k) == 1 else (None, 0) if SIGNS.get(k) == -1 else (None, None)
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


def evaluate(
    data: list[dict],
    ev: Evidence,
    w: np.ndarray,
    j: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    t: float,
) -> dict[str, float]:
    X, correct, answerable, hit = judge_rows(data, w, ev)
    p = 1 / (1 + np.exp(-(((X - mean) / scale) @ j)))
    keep = p >= t
    n_a = answerable.sum()
    acc = (np.sum(keep & hit & answerable) + np.sum(~keep & ~answerable)) / len(data)
    # calibration: mean predicted vs observed among quoted answers
    return {
        "hit@1": float(np.sum(hit & answerable) / n_a),
        "acc": float(acc),
        "decline_ans": float(np.sum(~keep & answerable) / n_a),
        "decline_unans": float(np.sum(~keep & ~answerable) / max(1, (~answerable).sum())),
        "brier": float(np.mean((p - correct) ** 2)),
    }


def fit_all(data: list[dict], ev: Evidence) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    w = fit_ranker(data)
    X, correct, answerable, hit = judge_rows(data, w, ev)
    mean, scale = standardise(X)
    Z = (X - mean) / scale
    j = fit_judge(Z, correct.astype(np.float64))
    p = 1 / (1 + np.exp(-(Z @ j)))
    t, _ = best_threshold(p.tolist(), answerable.tolist(), hit.tolist())
    return w, j, mean, scale, float(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("articles", type=Path)
    ap.add_argument("questions", type=Path)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=SCORER_FILE)
    ap.add_argument(
        "--ship-threshold",
        type=float,
        default=None,
        help="ship this decline threshold instead of the dev-optimal one (recorded in info)",
    )
    args = ap.parse_args()
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        data, ev = collect(args.articles, args.questions, Path(tmp))
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
    cv = []
    for k, held in enumerate(folds):
        train = [d for d in data if d["article"] not in held]
        test = [d for d in data if d["article"] in held]
        w, j, mean, scale, t = fit_all(train, ev)
        r = evaluate(test, ev, w, j, mean, scale, t)
        r["n"] = len(test)
        cv.append(r)
        print(f"fold {k}: " + " ".join(f"{a}={b:.4f}" for a, b in r.items() if a != "n") + f" n={len(test)}")
    tot = sum(r["n"] for r in cv)
    cv_mean = {k: sum(r[k] * r["n"] for r in cv) / tot for k in cv[0] if k != "n"}
    print("cross-validated: " + " ".join(f"{a}={b:.4f}" for a, b in cv_mean.items()))
    w, j, mean, scale, t = fit_all(data, ev)
    full = evaluate(data, ev, w, j, mean, scale, t)
    print(
        "fit on all (optimistic): "
        + " ".join(f"{a}={b:.4f}" for a, b in full.items())
        + f" threshold={t:.4f}"
    )
    shipped = t if args.ship_threshold is None else args.ship_threshold
    if args.ship_threshold is not None:
        at_ship = evaluate(data, ev, w, j, mean, scale, shipped)
        print(f"at the shipped threshold {shipped}: " + " ".join(f"{a}={b:.4f}" for a, b in at_ship.items()))
    sc = Scorer(
        w.astype(np.float32),
        j.astype(np.float32),
        shipped,
        mean.astype(np.float32),
        scale.astype(np.float32),
        {
            "dev_optimal_threshold": round(t, 4),
            "fitted_on": str(args.articles.parent.name),
            "questions": len(data),
            "folds": args.folds,
            "cv": {k: round(v, 4) for k, v in cv_mean.items()},
            "train": {k: round(v, 4) for k, v in full.items()},
            "judge_features": list(JUDGE_FEATURES),
        },
    )
    sc.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
