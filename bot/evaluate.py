"""`quotebot eval`: ingest an article set, answer its questions, print score.py's metrics and latency."""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from bot.config import Settings
from index.errors import InputError
from index.evaluation import Outcome, best_threshold, hits, metrics

EVAL_COLLECTION = "eval"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InputError(f"Cannot read {path}: {e.strerror}") from e
    out = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{n}: bad JSON ({e.msg}).") from e
    return out


def run_eval(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from index.library import Library

    questions = _read_jsonl(args.questions)
    for n, q in enumerate(questions, 1):
        if not {"qid", "question"} <= q.keys():
            raise InputError(f"{args.questions}:{n}: needs qid and question.")
    with tempfile.TemporaryDirectory(prefix="quotebot-eval-") as tmp:
        ls = settings.library_settings()
        if not args.reuse:
            ls.data_dir, ls.database_url = Path(tmp), None
        lib = Library(ls)
        t0 = time.perf_counter()
        lib.add_file(EVAL_COLLECTION, args.articles)
        ingest_s = time.perf_counter() - t0
        lib.embedder.encode(["warm up"])
        t1 = time.perf_counter()
        answers = lib.ask_many(EVAL_COLLECTION, [q["question"] for q in questions])
        batch_s = time.perf_counter() - t1
        # Single-question latency, as a user feels it (a sample, warm).
        sample = questions[:: max(1, len(questions) // 200)][:200]
        lat = []
        for q in sample:
            t = time.perf_counter()
            lib.ask(EVAL_COLLECTION, q["question"], alternatives=0)
            lat.append((time.perf_counter() - t) * 1000)
        lib.close()

    outcomes, preds = [], []
    for q, a in zip(questions, answers, strict=True):
        quote = a.quote
        pred = {
            "qid": q["qid"],
            "quote": quote.text if quote else None,
            "article_id": (quote.article.source_id or str(quote.article.id)) if quote else None,
            "score": a.confidence,
        }
        preds.append(pred)
        if "answerable" in q:
            outcomes.append(
                Outcome(
                    bool(q["answerable"]),
                    quote is None,
                    hits(quote.text if quote else None, q.get("answers", [])),
                    quote is not None and pred["article_id"] == q.get("article_id"),
                    a.confidence,
                )
            )
    if args.out:
        args.out.write_text(
            "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in preds), encoding="utf-8"
        )

    lat.sort()
    print(
        f"articles ingested in {ingest_s:.1f}s; {len(questions)} questions in {batch_s:.1f}s "
        f"({len(questions) / max(batch_s, 1e-9):.0f}/s batched); single ask median "
        f"{lat[len(lat) // 2]:.1f} ms, p95 {lat[int(len(lat) * 0.95) - 1]:.1f} ms",
        file=out,
    )
    if not outcomes:
        print("no gold answers in the question file: predictions only", file=out)
        return 0
    m = metrics(outcomes)
    # The best threshold on this file (as score.py reports it): over the best candidate of every
    # question, not only those we quoted, so it shows what the judge could do here.
    best = [
        Outcome(
            o.answerable,
            False,
            hits(a.best.text if a.best else None, q.get("answers", [])),
            o.article_ok,
            a.confidence,
        )
        for o, a, q in zip(outcomes, answers, questions, strict=True)
    ]
    t, acc_best = best_threshold(
        [a.confidence for a in answers], [o.answerable for o in best], [o.hit for o in best]
    )
    rows = [
        ("answerable", "hit@1", m["hit@1"]),
        ("", "article@1", m["article@1"]),
        ("", "declined", m["decline_ans"]),
        ("unanswerable", "correct-decline", m["decline_unans"]),
        ("overall", "accuracy", m["acc"]),
    ]
    for group, name, v in rows:
        print(f"{group:>13} {name:<16} {v:.4f}", file=out)
    hit_any = metrics(best)["hit@1"]
    print(f"{'':>13} {'hit@1 (never declining)':<16} {hit_any:.4f}", file=out)
    print(
        f"shipped threshold {lib.threshold:.4f}; best on this file {t:.4f} -> accuracy {acc_best:.4f} "
        "(optimistic)",
        file=out,
    )
    print(
        "RESULT "
        + " ".join(f"{k}={v:.4f}" for k, v in m.items() if not math.isnan(v))
        + f" hit@1_all={hit_any:.4f} ask_median_ms={lat[len(lat) // 2]:.2f}",
        file=out,
    )
    return 0
