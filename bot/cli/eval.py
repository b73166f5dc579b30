"""`quotebot eval`: ingest an article set, answer its questions, print score.py's metrics and latency.

The measuring is index/evaluation/run.py; this module writes `--out` / `--details` and prints.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import TextIO

from bot.config import Settings


def cmd_eval(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    return run_eval(args, settings, out)


def run_eval(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from index.evaluation import run as ev
    from index.evaluation.metrics import metrics

    sets = ev.read_sets(
        args.questions,
        args.offtopic,
        args.odd,
        no_odd=args.no_odd,
        limit=args.limit,
        offtopic_sample=args.offtopic_sample,
    )
    run = ev.answer_sets(settings.library_settings(), args.articles, sets, reuse=args.reuse)
    scores = ev.score(run)
    if args.out:
        args.out.write_text(
            "".join(
                json.dumps(p, ensure_ascii=False) + "\n"
                for p in ev.predictions(run, as_answered=args.as_answered)
            ),
            encoding="utf-8",
        )
    if args.details:
        args.details.write_text("".join(json.dumps(d) + "\n" for d in ev.details(run)), encoding="utf-8")

    lat, threshold, may = run.latencies_ms, run.threshold, run.may_threshold
    print(
        f"articles ingested in {run.ingest_s:.1f}s; {run.n_asked} questions in {run.batch_s:.1f}s "
        f"({run.n_asked / max(run.batch_s, 1e-9):.0f}/s batched); single ask median "
        f"{lat[len(lat) // 2]:.1f} ms, p95 {lat[max(0, int(len(lat) * 0.95) - 1)]:.1f} ms",
        file=out,
    )
    print(f"replies: quote from confidence {threshold:.2f}, 'this may answer it' from {may:.2f}", file=out)
    ranked, rate, mean = scores.ranked, ev.rate, ev.mean
    if ranked:
        r, m = metrics(ranked), metrics(scores.answered)
        n_ans = sum(o.answerable for o in ranked)
        print(f"questions: {len(ranked)} (answerable {n_ans}, unanswerable {len(ranked) - n_ans})", file=out)
        print(f"  ranking hit@1    {r['hit@1']:.4f}   best quote contains a gold answer", file=out)
        print(f"  article@1        {r['article@1']:.4f}   best quote from the gold article", file=out)
        print("  answerable, as answered ('may answer' counts as answered):", file=out)
        print(f"    quoted right   {rate(scores.right):.4f}", file=out)
        print(f"    quoted wrong   {rate(scores.wrong):.4f}", file=out)
        print(f"    declined       {rate(scores.declined):.4f}", file=out)
        print(f"  near-miss (unanswerable) declined {m['decline_unans']:.4f}", file=out)
        print(
            f"  answer phrase on right quotes (n={len(scores.f1s)}): EM {rate([e > 0 for e in scores.em]):.4f}, "
            f"F1 {mean(scores.f1s):.4f}; shown in bold on {rate(scores.spans):.4f} of them, "
            f"F1 there {mean(scores.shown_f1):.4f}",
            file=out,
        )
        t, acc_best = scores.best_threshold()
        print(
            f"  accuracy {m['acc']:.4f}; best single threshold on this file {t:.4f} -> {acc_best:.4f}",
            file=out,
        )
    if sets.offtopic:
        print(f"off-topic declined {ev.declined_rate(run.offtopic):.4f} (n={len(sets.offtopic)})", file=out)
    if sets.odd:
        per = ", ".join(f"{k} {v:.2f}" for k, v in ev.odd_declined_by_kind(run).items())
        print(f"odd input declined {ev.declined_rate(run.odd):.4f} (n={len(sets.odd)}): {per}", file=out)
    result = ev.result(run, scores)
    print("RESULT " + " ".join(f"{k}={v:.4f}" for k, v in result.items() if not math.isnan(v)), file=out)
    return 0
