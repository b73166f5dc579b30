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

from index.answer import JUDGE_FEATURES, SCORER_FILE, Scorer, judge_features  # noqa: E402
from index.evaluation import best_threshold, hits  # noqa: E402
from index.extract import Document  # noqa: E402
from index.library import Library, LibrarySettings  # noqa: E402
from index.lexical import terms  # noqa: E402
from index.retrieve import FEATURES, candidate_rows, featurize  # noqa: E402


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def collect(articles: Path, questions: Path, data_dir: Path) -> list[dict]:
    lib = Library(LibrarySettings(data_dir=data_dir))
    arts = read_jsonl(articles)
    lib.add_documents("fit", [Document(a["text"], a.get("title") or a["id"], a.get("url"), a["id"], "jsonl")
                              for a in arts])
    shelf = lib.shelf("fit")
    qs = read_jsonl(questions)
    st = lib.settings
    qvecs = lib.embedder.encode([q["question"] for q in qs], batch_size=64)
    out = []
    for q, v in zip(qs, qvecs, strict=True):
        text = " ".join(q["question"].split())
        rows = candidate_rows(shelf, v, shelf.vocab.lookup(terms(text)), dense_k=st.dense_k,
                              lexical_k=st.lexical_k, passage_k=st.passage_k, exhaustive_limit=st.exhaustive_limit)
        c = featurize(shelf, rows, text, v)
        labels = np.array([hits(shelf.sentence_text(int(r)), q["answers"]) for r in rows], bool)
        src = [shelf.refs[int(shelf.article_ids[r])][1] for r in rows]
        out.append({"qid": q["qid"], "article": q["article_id"], "answerable": bool(q["answerable"]),
                    "X": c.features.astype(np.float64), "y": labels, "src": src})
    return out


def fit_ranker(data: list[dict], l2: float = 1e-3) -> np.ndarray:
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


def judge_rows(data: list[dict], w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, correct, answerable, hit = [], [], [], []
    for d in data:
        s = d["X"] @ w
        top = int(np.argmax(s))
        h = bool(d["y"][top]) if len(s) else False
        X.append(judge_features(d["X"].astype(np.float32), s.astype(np.float32)))
        correct.append(d["answerable"] and h)
        answerable.append(d["answerable"])
        hit.append(h)
    return np.array(X, np.float64), np.array(correct), np.array(answerable), np.array(hit)


def fit_judge(X: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = X @ w
        p = 1 / (1 + np.exp(-z))
        eps = 1e-12
        ll = -(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)).mean()
        g = X.T @ (p - y) / len(y)
        return ll + l2 * float(w @ w), g + 2 * l2 * w

    res = minimize(loss, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    return res.x


def evaluate(data: list[dict], w: np.ndarray, j: np.ndarray, t: float) -> dict[str, float]:
    X, correct, answerable, hit = judge_rows(data, w)
    p = 1 / (1 + np.exp(-(X @ j)))
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


def fit_all(data: list[dict]) -> tuple[np.ndarray, np.ndarray, float]:
    w = fit_ranker(data)
    X, correct, answerable, hit = judge_rows(data, w)
    j = fit_judge(X, correct.astype(np.float64))
    p = 1 / (1 + np.exp(-(X @ j)))
    t, _ = best_threshold(p.tolist(), answerable.tolist(), hit.tolist())
    return w, j, float(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("articles", type=Path)
    ap.add_argument("questions", type=Path)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=SCORER_FILE)
    args = ap.parse_args()
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        data = collect(args.articles, args.questions, Path(tmp))
    print(f"collected {len(data)} questions in {time.time() - t0:.0f}s; "
          f"candidate recall {np.mean([d['y'].any() for d in data if d['answerable']]):.4f}")
    arts = sorted({d["article"] for d in data})
    rng = np.random.default_rng(0)
    rng.shuffle(arts)
    folds = [set(arts[i :: args.folds]) for i in range(args.folds)]
    cv = []
    for k, held in enumerate(folds):
        train = [d for d in data if d["article"] not in held]
        test = [d for d in data if d["article"] in held]
        w, j, t = fit_all(train)
        r = evaluate(test, w, j, t)
        r["n"] = len(test)
        cv.append(r)
        print(f"fold {k}: " + " ".join(f"{a}={b:.4f}" for a, b in r.items() if a != "n") + f" n={len(test)}")
    tot = sum(r["n"] for r in cv)
    cv_mean = {k: sum(r[k] * r["n"] for r in cv) / tot for k in cv[0] if k != "n"}
    print("cross-validated: " + " ".join(f"{a}={b:.4f}" for a, b in cv_mean.items()))
    w, j, t = fit_all(data)
    full = evaluate(data, w, j, t)
    print("fit on all (optimistic): " + " ".join(f"{a}={b:.4f}" for a, b in full.items()) + f" threshold={t:.4f}")
    sc = Scorer(w.astype(np.float32), j.astype(np.float32), t, {
        "fitted_on": str(args.articles.parent.name), "questions": len(data), "folds": args.folds,
        "cv": {k: round(v, 4) for k, v in cv_mean.items()}, "train": {k: round(v, 4) for k, v in full.items()},
        "judge_features": list(JUDGE_FEATURES),
    })
    sc.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
