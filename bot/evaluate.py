"""`quotebot eval`: ingest an article set, answer its questions, print score.py's metrics and latency."""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import TextIO

from bot.config import Settings
from index.errors import InputError
from index.evaluation.metrics import ODD_INPUTS, Outcome, best_threshold, exact_match, f1, hits, metrics
from index.evaluation.trainingdata import read_jsonl

EVAL_COLLECTION = "eval"


def _rate(xs: list[bool]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def run_eval(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from index.library import Library

    questions = read_jsonl(args.questions)
    for n, q in enumerate(questions, 1):
        if not {"qid", "question"} <= q.keys():
            raise InputError(f"{args.questions}:{n}: needs qid and question.")
    offtopic = [q for path in args.offtopic for q in read_jsonl(path)]
    odd = [] if args.no_odd else read_jsonl(args.odd or ODD_INPUTS)
    if args.limit:
        questions, offtopic = questions[: args.limit], offtopic[: args.limit]
    asked = [q["question"] for q in questions] + [q["question"] for q in offtopic] + [o["text"] for o in odd]
    with tempfile.TemporaryDirectory(prefix="quotebot-eval-") as tmp:
        ls = settings.library_settings()
        if not args.reuse:
            ls.data_dir, ls.database_url = Path(tmp), None
        lib = Library(ls)
        t0 = time.perf_counter()
        if not (args.reuse and lib.count(EVAL_COLLECTION)):
            lib.add_file(EVAL_COLLECTION, args.articles)
        ingest_s = time.perf_counter() - t0
        lib.embedder.encode(["warm up"])
        t1 = time.perf_counter()
        answers = lib.ask_many(EVAL_COLLECTION, [_askable(q) for q in asked])
        batch_s = time.perf_counter() - t1
        # Single-question latency, as a user feels it (a sample, warm).
        sample = questions[:: max(1, len(questions) // 200)][:200]
        lat = []
        for q in sample:
            t = time.perf_counter()
            lib.ask(EVAL_COLLECTION, q["question"], alternatives=0)
            lat.append((time.perf_counter() - t) * 1000)
        threshold, may = lib.threshold, lib.may_threshold
        lib.close()

    main = answers[: len(questions)]
    off_answers = answers[len(questions) : len(questions) + len(offtopic)]
    odd_answers = answers[len(questions) + len(offtopic) :]
    # One line per question in score.py's format: the best quote with its calibrated confidence as
    # the score, so that `score.py --threshold <may threshold>` applies the bot's decline rule, and
    # without it shows the ranking (hit@1) and the best threshold on the file. --as-answered writes
    # what the bot would say instead: no quote where it declines.
    preds, ranked, answered = [], [], []
    right, wrong, declined, em, f1s, spans = [], [], [], [], [], []
    shown_f1: list[float] = []
    for q, a in zip(questions, main, strict=True):
        best = a.best
        best_article = (best.article.source_id or str(best.article.id)) if best else None
        pred = {
            "qid": q["qid"],
            "quote": best.text if best else None,
            "article_id": best_article,
            "score": round(a.confidence, 6),
            "answer": best.answer_phrase if best else None,
        }
        if args.as_answered and a.quote is None:
            pred = {**pred, "quote": None, "article_id": None, "answer": None}
        preds.append(pred)
        if "answerable" in q:
            gold = q.get("answers", [])
            hit = hits(best.text if best else None, gold)
            art_ok = best is not None and best_article == q.get("article_id")
            ranked.append(Outcome(bool(q["answerable"]), best is None, hit, art_ok, a.confidence))
            said = a.quote is not None
            answered.append(
                Outcome(bool(q["answerable"]), not said, hit and said, art_ok and said, a.confidence)
            )
            if q["answerable"]:
                right.append(said and hit)
                wrong.append(said and not hit)
                declined.append(not said)
                if hit and best is not None:
                    # The reader's best phrase, shown in bold or not (shown when it is sure).
                    g = a.answer_guess
                    phrase = best.text[g[0] - best.start : g[1] - best.start] if g else ""
                    spans.append(best.answer_phrase is not None)
                    em.append(exact_match(phrase, gold))
                    f1s.append(f1(phrase, gold))
                    if best.answer_phrase is not None:
                        shown_f1.append(f1(best.answer_phrase, gold))
    if args.out:
        args.out.write_text(
            "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in preds), encoding="utf-8"
        )
    if args.details:
        rows = []
        for q, a in zip(questions, main, strict=True):
            kind = "answerable" if q.get("answerable", True) else "unanswerable"
            rows.append((kind, a, hits(a.best.text if a.best else None, q.get("answers", []))))
        rows += [("offtopic", a, False) for a in off_answers]
        rows += [
            ("odd:" + str(o.get("kind", "odd")), a, False) for o, a in zip(odd, odd_answers, strict=True)
        ]
        args.details.write_text(
            "".join(
                json.dumps({"kind": k, "confidence": round(a.confidence, 6), "reply": a.kind, "hit": h})
                + "\n"
                for k, a, h in rows
            ),
            encoding="utf-8",
        )

    lat.sort()
    print(
        f"articles ingested in {ingest_s:.1f}s; {len(asked)} questions in {batch_s:.1f}s "
        f"({len(asked) / max(batch_s, 1e-9):.0f}/s batched); single ask median "
        f"{lat[len(lat) // 2]:.1f} ms, p95 {lat[max(0, int(len(lat) * 0.95) - 1)]:.1f} ms",
        file=out,
    )
    result: dict[str, float] = {}
    print(f"replies: quote from confidence {threshold:.2f}, 'this may answer it' from {may:.2f}", file=out)
    if ranked:
        r, m = metrics(ranked), metrics(answered)
        n_ans = sum(o.answerable for o in ranked)
        print(f"questions: {len(ranked)} (answerable {n_ans}, unanswerable {len(ranked) - n_ans})", file=out)
        print(f"  ranking hit@1    {r['hit@1']:.4f}   best quote contains a gold answer", file=out)
        print(f"  article@1        {r['article@1']:.4f}   best quote from the gold article", file=out)
        print("  answerable, as answered ('may answer' counts as answered):", file=out)
        print(f"    quoted right   {_rate(right):.4f}", file=out)
        print(f"    quoted wrong   {_rate(wrong):.4f}", file=out)
        print(f"    declined       {_rate(declined):.4f}", file=out)
        print(f"  near-miss (unanswerable) declined {m['decline_unans']:.4f}", file=out)
        print(
            f"  answer phrase on right quotes (n={len(f1s)}): EM {_rate([e > 0 for e in em]):.4f}, "
            f"F1 {_mean(f1s):.4f}; shown in bold on {_rate(spans):.4f} of them, F1 there {_mean(shown_f1):.4f}",
            file=out,
        )
        t, acc_best = best_threshold(
            [o.score or 0.0 for o in ranked], [o.answerable for o in ranked], [o.hit for o in ranked]
        )
        print(
            f"  accuracy {m['acc']:.4f}; best single threshold on this file {t:.4f} -> {acc_best:.4f}",
            file=out,
        )
        result.update(
            {
                "hit@1": r["hit@1"],
                "article@1": r["article@1"],
                "quoted_right": _rate(right),
                "quoted_wrong": _rate(wrong),
                "declined_ans": _rate(declined),
                "declined_unans": m["decline_unans"],
                "span_em": _rate([e > 0 for e in em]),
                "span_f1": _mean(f1s),
                "span_shown": _rate(spans),
                "span_f1_shown": _mean(shown_f1),
                "acc": m["acc"],
            }
        )
    if offtopic:
        rate = _rate([a.quote is None for a in off_answers])
        print(f"off-topic declined {rate:.4f} (n={len(offtopic)})", file=out)
        result["offtopic_declined"] = rate
    if odd:
        rate = _rate([a.quote is None for a in odd_answers])
        kinds: dict[str, list[bool]] = {}
        for o, a in zip(odd, odd_answers, strict=True):
            kinds.setdefault(str(o.get("kind", "odd")), []).append(a.quote is None)
        per = ", ".join(f"{k} {_rate(v):.2f}" for k, v in sorted(kinds.items()))
        print(f"odd input declined {rate:.4f} (n={len(odd)}): {per}", file=out)
        result["odd_declined"] = rate
    result["ask_median_ms"] = lat[len(lat) // 2] if lat else math.nan
    result["threshold"], result["may_threshold"] = threshold, may
    print("RESULT " + " ".join(f"{k}={v:.4f}" for k, v in result.items() if not math.isnan(v)), file=out)
    return 0


def _askable(text: str) -> str:
    """An eval text as a member could send it (Discord caps messages at 2,000 characters)."""
    text = " ".join(str(text).split())
    return (text or "?")[:2000]
