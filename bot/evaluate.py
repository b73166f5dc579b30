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

    # One line per question in score.py's format: the best quote with its calibrated confidence as
    # the score, so that `score.py --threshold <shipped>` applies the bot's decline rule, and
    # without it shows the ranking (hit@1) and the best threshold on the file. --as-answered writes
    # what the bot would say instead: no quote where it declines.
    preds, ranked, answered = [], [], []
    for q, a in zip(questions, answers, strict=True):
        best = a.best
        best_article = (best.article.source_id or str(best.article.id)) if best else None
        pred = {
            "qid": q["qid"],
            "quote": best.text if best else None,
            "article_id": best_article,
            "score": round(a.confidence, 6),
        }
        if args.as_answered and a.quote is None:
            pred = {**pred, "quote": None, "article_id": None}
        preds.append(pred)
        if "answerable" in q:
            hit = hits(best.text if best else None, q.get("answers", []))
            art_ok = best is not None and best_article == q.get("article_id")
            ranked.append(Outcome(bool(q["answerable"]), best is None, hit, art_ok, a.confidence))
            said = a.quote is not None
            answered.append(
                Outcome(bool(q["answerable"]), not said, hit and said, art_ok and said, a.confidence)
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
    if not ranked:
        print("no gold answers in the question file: predictions only", file=out)
        return 0
    r, m = metrics(ranked), metrics(answered)
    t, acc_best = best_threshold(
        [o.score or 0.0 for o in ranked], [o.answerable for o in ranked], [o.hit for o in ranked]
    )
    print(f"questions: {len(ranked)} (answerable {sum(o.answerable for o in ranked)})", file=out)
    print("best quote of every question (the ranking):", file=out)
    print(f"  hit@1            {r['hit@1']:.4f}   the quote contains a gold answer", file=out)
    print(f"  article@1        {r['article@1']:.4f}   quoted from the gold article", file=out)
    print(
        f"as answered, at the shipped threshold {lib.threshold:.4f} (quote iff confidence >= it):", file=out
    )
    print(f"  accuracy         {m['acc']:.4f}   answerable and hit, or unanswerable and declined", file=out)
    print(f"  hit@1            {m['hit@1']:.4f}   declines count as misses", file=out)
    print(
        f"  declined         {m['decline_ans']:.4f} of answerable, {m['decline_unans']:.4f} of unanswerable",
        file=out,
    )
    print(f"best threshold on this file {t:.4f} -> accuracy {acc_best:.4f} (optimistic)", file=out)
    if args.out and not args.as_answered:
        print(
            f"same figures: python3 score.py QUESTIONS {args.out} --threshold {lib.threshold}",
            file=out,
        )
    result = {
        "hit@1": r["hit@1"],
        "article@1": r["article@1"],
        "acc": m["acc"],
        "hit@1_answered": m["hit@1"],
        "decline_ans": m["decline_ans"],
        "decline_unans": m["decline_unans"],
        "threshold": lib.threshold,
        "best_thr": t,
        "acc@best": acc_best,
        "ask_median_ms": lat[len(lat) // 2],
    }
    print("RESULT " + " ".join(f"{k}={v:.4f}" for k, v in result.items() if not math.isnan(v)), file=out)
    return 0
