"""`quotebot ask`: one question (as text, or `--json`) or a batch (`--batch FILE`, one JSON line per input
line, in order), answered by quoting a sentence of the collection."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from bot.cli.common import collection_of, flat, open_library
from bot.config import Settings
from bot.safe_text import json_line
from index.errors import InputError
from index.types import Answer, Quote


def format_answer(ans: Answer, *, alternatives: int) -> str:
    lines: list[str] = []
    if ans.quote is None:
        lines.append("I couldn't find that in the articles.")
        if ans.closest is not None:
            b = ans.closest
            lines.append("")
            lines.append(
                f"The closest sentence I found (confidence {ans.confidence:.0%}, too low to answer):"
            )
            lines.append(f"> {flat(b.text)}")
            lines.append(f"— {flat(b.article.title)} ({_source(b)})")
        if ans.related:
            lines.append("")
            lines.append("Possibly related:")
            for r in ans.related[:3]:
                text = " ".join(r.text.split())
                more = "…" if len(text) > 300 else ""
                lines.append(f"  - {flat(text[:300])}{more}  [{flat(r.article.title)}]")
        return "\n".join(lines)
    q = ans.quote
    if ans.kind == "may":
        lines.append(f"This may answer it (not sure, {ans.confidence:.0%}):")
    lines.append(f"> {flat(_marked(q))}")
    lines.append(f"— {flat(q.article.title)} ({_source(q)})")
    lines.append(f"confidence {ans.confidence:.0%}")
    for alt in ans.alternatives[:alternatives]:
        lines.append(f"  also: {flat(' '.join(alt.text.split())[:300])}  [{flat(alt.article.title)}]")
    return "\n".join(lines)


def _source(q: Quote) -> str:
    a = q.article
    where = f", page {q.page}" if q.page is not None else ""
    return flat(a.url or a.source_id or f"article {a.id}") + where


def _marked(q: Quote) -> str:
    """The quote with its answer phrase (when there is one) between ** as in Discord."""
    if q.answer_start is None or q.answer_end is None:
        return q.text
    a, b = q.answer_start - q.start, q.answer_end - q.start
    return f"{q.text[:a]}**{q.text[a:b]}**{q.text[b:]}"


def answer_json(ans: Answer, qid: str | None = None, *, always_quote: bool = False) -> dict[str, Any]:
    q = ans.best if always_quote else ans.quote
    out: dict[str, Any] = {} if qid is None else {"qid": qid}
    out.update(
        {
            "question": ans.question,
            "quote": q.text if q else None,
            "article_id": (q.article.source_id or str(q.article.id)) if q else None,
            "title": q.article.title if q else None,
            "url": q.article.url if q else None,
            "start": q.start if q else None,
            "end": q.end if q else None,
            "answer": q.answer_phrase if q else None,
            "answer_start": q.answer_start if q else None,
            "answer_end": q.answer_end if q else None,
            "reply": ans.kind,
            "score": round(ans.confidence, 6),
        }
    )
    if qid is not None:
        del out["question"]
    return out


def _is_text(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def question_problem(question: str, max_chars: int) -> str | None:
    """Why `question` cannot be asked (a short phrase), or None when it can."""
    if not _is_text(question):
        return "question is not valid text (UTF-8)"
    flat = " ".join(question.split())
    if not flat or len(flat) > max_chars:
        return "empty or too long question"
    return None


def _read_batch(path: Path) -> list[tuple[Any, object]]:
    """The (qid, question) of every non-blank line, in order, as the JSON gave them (repeats kept)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InputError(f"Cannot read {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not UTF-8 text.") from e
    items: list[tuple[Any, object]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            qid, question = rec["qid"], rec["question"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise InputError(f"{path}:{n}: expected a JSON object with qid and question.") from e
        if isinstance(qid, int | str) and not isinstance(qid, bool):
            qid = str(qid)
        items.append((qid, question))
    return items


def _batch_error(qid: Any, error: str) -> dict[str, Any]:
    return {
        "qid": qid,
        "quote": None,
        "article_id": None,
        "title": None,
        "url": None,
        "score": None,
        "error": error,
    }


def cmd_ask(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if (args.question is None) == (args.batch is None):
        raise InputError("Give either a QUESTION or --batch FILE.")
    if args.question is not None and not _is_text(args.question):
        # A command-line argument that was not UTF-8 arrives with lone surrogates (surrogateescape).
        raise InputError("The question is not valid text (UTF-8).")
    lib = open_library(settings)
    coll = collection_of(args)
    if lib.count(coll) == 0:
        raise InputError("There are no articles yet; add some with `quotebot ingest PATH`.")
    limit = settings.limits.max_question_chars
    if args.batch is not None:
        # One output line per input line, in order: a repeated qid is answered (or refused) each time.
        items = _read_batch(args.batch)
        problems: list[str | None] = []
        for qid, q in items:
            if not isinstance(q, str):
                problems.append(f"question must be a string, not {'null' if q is None else type(q).__name__}")
            elif not isinstance(qid, str):
                problems.append("qid must be a string or a number")
            else:
                problems.append(question_problem(q, limit))
        asked = [str(q) for (_, q), p in zip(items, problems, strict=True) if p is None]
        answers = iter(lib.ask_many(coll, asked))
        for (qid, _q), problem in zip(items, problems, strict=True):
            if problem is not None:
                rec = _batch_error(qid, problem)
            else:
                rec = answer_json(next(answers), qid, always_quote=args.always_quote)
            out.write(json_line(rec) + "\n")
        return 0
    ans = lib.ask(coll, args.question, alternatives=args.alternatives)
    if args.json:
        out.write(json_line(answer_json(ans, always_quote=args.always_quote)) + "\n")
    else:
        print(format_answer(ans, alternatives=args.alternatives), file=out)
    return 0
