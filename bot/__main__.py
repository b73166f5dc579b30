"""`quotebot` / `python -m bot`: the command line (run, ingest, ask, list, remove, reindex, stats, doctor,
export, import, eval, bench).

User mistakes print one line on stderr and exit non-zero; only bugs print a traceback. Untrusted text
(article text, titles, urls, questions) is shown through `bot.safe_text`: no raw control characters
or bidi overrides reach the terminal, and JSON output escapes them (the parsed strings stay exact).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from bot.config import Settings, load_settings
from bot.safe_text import json_line, visible
from index.errors import InputError, QuotebotError
from index.types import Answer, Quote

LOCAL_COLLECTION = "local"
EXIT_USER = 1
EXIT_DOCTOR = 3

log = logging.getLogger("quotebot")


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quotebot", description="Answer questions by quoting your articles.")
    p.add_argument("--config", type=Path, help="config file (default: ./config.toml when present)")
    p.add_argument("--data", type=Path, help="data directory (overrides the config's index.data_dir)")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def guild(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--guild", help="Discord guild id (default: the local collection)")

    sp = sub.add_parser("run", help="start the Discord bot (token from DISCORD_TOKEN)")

    sp = sub.add_parser(
        "ingest",
        help="add articles: files (.txt .md .html .pdf .jsonl), folders, .zip archives, http(s) URLs, "
        "sitemaps and feeds; adding an edited article again replaces it",
    )
    sp.add_argument("paths", nargs="*", metavar="PATH_OR_URL")
    sp.add_argument("--glob", help='with a folder: only files matching this pattern (e.g. "**/*.md")')
    sp.add_argument("--sitemap", action="append", default=[], metavar="URL", help="every page of a sitemap")
    sp.add_argument(
        "--feed", action="append", default=[], metavar="URL", help="every entry of an RSS/Atom feed"
    )
    guild(sp)

    sp = sub.add_parser(
        "refresh", help="fetch web articles again: replace the changed, report unchanged / changed / gone"
    )
    sp.add_argument("--remove-gone", action="store_true", help="remove articles whose page answers 404 / 410")
    guild(sp)

    sp = sub.add_parser("ask", help="answer a question (or a batch of them) by quoting a sentence")
    sp.add_argument("question", nargs="?", help="the question")
    sp.add_argument("--batch", type=Path, help="JSON Lines file of {qid, question}")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.add_argument("--alternatives", type=int, default=2, help="other quotes to show (default 2)")
    sp.add_argument(
        "--always-quote",
        action="store_true",
        help="print the best quote even when declining (its score tells; for evaluation)",
    )
    guild(sp)

    sp = sub.add_parser("list", help="list articles")
    sp.add_argument("--json", action="store_true")
    guild(sp)

    sp = sub.add_parser("remove", help="remove an article (by id or source id)")
    sp.add_argument("ids", nargs="+", metavar="ID")
    guild(sp)

    sp = sub.add_parser("reindex", help="rebuild the vector index from the database")
    sp.add_argument("--reencode", action="store_true", help="also re-embed every sentence")
    guild(sp)

    sp = sub.add_parser("stats", help="articles, passages, vectors, model, index type and sizes")
    sp.add_argument("--json", action="store_true")
    guild(sp)

    sub.add_parser("doctor", help="check that the database and the vector index agree")

    sp = sub.add_parser(
        "health", help="one line and exit 0/1: database, schema, index files (and with --bot the running bot)"
    )
    sp.add_argument("--bot", action="store_true", help="also require a fresh heartbeat from a connected bot")

    sp = sub.add_parser("export", help="write the collection's articles as JSON Lines (to stdout)")
    guild(sp)

    sp = sub.add_parser("import", help="add the articles of an export file (re-embedded; idempotent)")
    sp.add_argument("file", type=Path, metavar="FILE.jsonl")
    guild(sp)

    sp = sub.add_parser("eval", help="score answers on a question set (same metrics as score.py)")
    sp.add_argument("articles", type=Path)
    sp.add_argument("questions", type=Path)
    sp.add_argument(
        "--out", type=Path, help="write predictions here: every best quote with its confidence as the score"
    )
    sp.add_argument(
        "--as-answered",
        action="store_true",
        help="in --out, no quote where the bot declines (as users see it)",
    )
    sp.add_argument("--reuse", action="store_true", help="reuse --data instead of a throwaway data dir")
    sp.add_argument(
        "--offtopic",
        type=Path,
        action="append",
        default=[],
        metavar="QUESTIONS.jsonl",
        help="questions about other articles (not in the collection): each must be declined; repeatable",
    )
    sp.add_argument(
        "--odd",
        type=Path,
        default=None,
        metavar="FILE.jsonl",
        help="odd chat input to be declined ({kind, text} lines; default: the shipped suite)",
    )
    sp.add_argument("--no-odd", action="store_true", help="skip the odd-input suite")
    sp.add_argument(
        "--details",
        type=Path,
        metavar="FILE.jsonl",
        help="one line per question asked: its kind, confidence, reply and whether the best quote hit",
    )
    sp.add_argument("--limit", type=int, default=0, help="use only the first N questions of each file")

    sp = sub.add_parser("bench", help="benchmark ingest, ask and scale against raw model/FAISS limits")
    sp.add_argument("--quick", action="store_true", help="a one-minute run")
    sp.add_argument("--skip", default="", help="comma-separated parts to skip: ingest,ask,scale,real,peer")
    return p


def collection_of(args: argparse.Namespace) -> str:
    g = getattr(args, "guild", None)
    if g is None:
        return LOCAL_COLLECTION
    if not str(g).isdigit():
        raise InputError(f"--guild must be a Discord guild id (digits), not {g!r}.")
    return str(g)


@contextmanager
def progress_bar(
    label: str, enabled: bool, unit: str = "sent"
) -> Iterator[Callable[[int, int], None] | None]:
    """A tqdm bar on a terminal, nothing otherwise."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bar: Any = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=label, unit=unit, file=sys.stderr, leave=False)
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


def _open_library(settings: Settings) -> Any:
    from index.library import Library

    return Library(settings.library_settings())


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
            lines.append(f"> {_flat(b.text)}")
            lines.append(f"— {_flat(b.article.title)} ({_source(b)})")
        if ans.related:
            lines.append("")
            lines.append("Possibly related:")
            for r in ans.related[:3]:
                text = " ".join(r.text.split())
                more = "…" if len(text) > 300 else ""
                lines.append(f"  - {_flat(text[:300])}{more}  [{_flat(r.article.title)}]")
        return "\n".join(lines)
    q = ans.quote
    if ans.kind == "may":
        lines.append(f"This may answer it (not sure, {ans.confidence:.0%}):")
    lines.append(f"> {_flat(_marked(q))}")
    lines.append(f"— {_flat(q.article.title)} ({_source(q)})")
    lines.append(f"confidence {ans.confidence:.0%}")
    for alt in ans.alternatives[:alternatives]:
        lines.append(f"  also: {_flat(' '.join(alt.text.split())[:300])}  [{_flat(alt.article.title)}]")
    return "\n".join(lines)


def _flat(text: str | None) -> str:
    """Untrusted text on one line: whitespace runs as one space, controls and bidi overrides escaped."""
    return visible(" ".join((text or "").split()), multiline=False)


def _source(q: Quote) -> str:
    a = q.article
    where = f", page {q.page}" if q.page is not None else ""
    return _flat(a.url or a.source_id or f"article {a.id}") + where


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


def cmd_ingest(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if not args.paths and not args.sitemap and not args.feed:
        raise InputError("Give files, folders or URLs to ingest (or --sitemap URL / --feed URL).")
    lib = _open_library(settings)
    coll = collection_of(args)
    failures = 0
    items = [("path", p) for p in args.paths] + [("sitemap", u) for u in args.sitemap]
    items += [("feed", u) for u in args.feed]
    for how, item in items:
        try:
            bulk = None
            results: list[Any] = []
            tty = sys.stderr.isatty()
            if how in ("sitemap", "feed"):
                with progress_bar(f"{how} {item}", tty, unit="page") as bar:
                    add = lib.add_sitemap if how == "sitemap" else lib.add_feed
                    bulk = add(coll, item, progress=bar)
            elif item.lower().startswith(("http://", "https://")):
                results = [lib.add_url(coll, item)]
            elif "://" in item:
                raise InputError(f"Only http(s) URLs and local files can be ingested, not {item!r}.")
            elif Path(item).is_dir():
                with progress_bar(f"reading {Path(item).name or item}", tty, unit="file") as bar:
                    bulk = lib.add_folder(coll, Path(item), glob=args.glob, progress=bar)
            elif item.lower().endswith(".zip"):
                with progress_bar(f"reading {Path(item).name}", tty, unit="file") as bar:
                    data = lib.read_path(Path(item), None)
                    bulk = lib.add_zip(coll, data, Path(item).name, progress=bar)
            else:
                with progress_bar(f"embedding {Path(item).name}", tty) as bar:
                    results = lib.add_file(coll, Path(item), progress=bar)
        except QuotebotError as e:
            print(f"quotebot: {_flat(item)}: {error_line(e)}", file=sys.stderr)
            failures += 1
            continue
        if bulk is not None:
            results = [r for _, r in bulk.added]
            for name, why in bulk.failed[:50]:
                print(f"quotebot: {_flat(name)}: {_flat(why)}", file=sys.stderr)
            if len(bulk.failed) > 50:
                print(f"quotebot: ... and {len(bulk.failed) - 50} more failures", file=sys.stderr)
            failures += len(bulk.failed)
        _print_added(results, item, out)
        if bulk is not None:
            c = bulk.counts()
            print(
                f"{_flat(item)}: {c['added']} added, {c['replaced']} replaced, {c['unchanged']} unchanged, "
                f"{c['failed']} failed",
                file=out,
            )
    return EXIT_USER if failures else 0


def _print_added(results: list[Any], item: str, out: TextIO) -> None:
    added = [r for r in results if r.status != "unchanged"]
    same = len(results) - len(added)
    verbose = log.isEnabledFor(logging.INFO)
    for k, r in enumerate(added):
        a = r.article
        if k < 20:
            dropped = f", {len(r.dropped)} page-furniture lines dropped" if r.dropped else ""
            print(
                f"{r.status} [{a.id}] {_flat(a.title)} ({a.n_sentences} sentences, {a.n_chunks} passages"
                f"{dropped})",
                file=out,
            )
        if verbose:
            for line in r.dropped:
                print(f"  dropped: {_flat(line)}", file=out)
    if len(added) > 20:
        print(f"... and {len(added) - 20} more", file=out)
    if same:
        print(f"{same} unchanged (already stored) from {_flat(item)}", file=out)


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


def cmd_refresh(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    lib = _open_library(settings)
    coll = collection_of(args)
    with progress_bar("refreshing", sys.stderr.isatty(), unit="page") as bar:
        report = lib.refresh(coll, remove_gone=args.remove_gone, progress=bar)
    for a in report.changed:
        print(f"changed [{a.id}] {_flat(a.title)} ({_flat(a.url or '')})", file=out)
    for a, why in report.gone:
        verb = "removed" if args.remove_gone else "gone"
        print(f"{verb} [{a.id}] {_flat(a.title)} ({_flat(a.url or '')}): {_flat(why)}", file=out)
    for a, why in report.failed:
        print(f"quotebot: [{a.id}] {_flat(a.url or a.title)}: {_flat(why)}", file=sys.stderr)
    print(
        f"refreshed {coll}: {len(report.unchanged)} unchanged, {len(report.changed)} changed, "
        f"{len(report.gone)} gone, {len(report.failed)} failed",
        file=out,
    )
    return EXIT_USER if report.failed else 0


def cmd_ask(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if (args.question is None) == (args.batch is None):
        raise InputError("Give either a QUESTION or --batch FILE.")
    if args.question is not None and not _is_text(args.question):
        # A command-line argument that was not UTF-8 arrives with lone surrogates (surrogateescape).
        raise InputError("The question is not valid text (UTF-8).")
    lib = _open_library(settings)
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


def cmd_list(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    lib = _open_library(settings)
    arts = lib.articles(collection_of(args))
    if args.json:
        for a in arts:
            out.write(json_line(a.__dict__) + "\n")
        return 0
    if not arts:
        print("No articles yet.", file=out)
    for a in arts:
        src = _flat(a.url or a.source_id or "")
        print(f"[{a.id}] {_flat(a.title)}  ({a.n_sentences} sentences)  {src}".rstrip(), file=out)
    return 0


def cmd_remove(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    lib = _open_library(settings)
    coll = collection_of(args)
    failures = 0
    for ref in args.ids:
        try:
            info = lib.remove(coll, ref)
            print(f"removed [{info.id}] {_flat(info.title)}", file=out)
        except QuotebotError as e:
            print(f"quotebot: {error_line(e)}", file=sys.stderr)
            failures += 1
    return EXIT_USER if failures else 0


def cmd_reindex(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    lib = _open_library(settings)
    colls = [collection_of(args)] if args.guild else (lib.collections() or [LOCAL_COLLECTION])
    for c in colls:
        with progress_bar(f"re-embedding {c}", sys.stderr.isatty() and args.reencode) as bar:
            shelf = lib.rebuild(c, reencode=args.reencode, progress=bar)
        print(f"reindexed {c}: {shelf.passages.count} passage vectors ({shelf.passages.kind})", file=out)
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    lib = _open_library(settings)
    st = lib.stats(collection_of(args))
    if args.json:
        out.write(json.dumps(st, default=str) + "\n")
    else:
        for k, v in st.items():
            print(f"{k:>15}: {v}", file=out)
    return 0


def cmd_doctor(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    lib = _open_library(settings)
    problems = lib.doctor()
    if problems:
        for p in problems:
            print(f"problem: {_flat(p)}", file=out)
        if any(p.startswith("the database file is damaged") for p in problems):
            print(
                "The database itself is damaged: reindexing cannot help. Restore a backup (a copy of "
                "the database file, or `quotebot import` of an export).",
                file=out,
            )
        else:
            print("Run `quotebot reindex` to rebuild the index from the database.", file=out)
        return EXIT_DOCTOR
    print(f"ok: database and index agree ({len(lib.collections())} collections)", file=out)
    return 0


def cmd_health(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from index.health import check

    ls = settings.library_settings()
    result = check(ls.db_url, Path(ls.data_dir), bot=args.bot)
    print(_flat(result.line), file=out if result.ok else sys.stderr)
    return 0 if result.ok else EXIT_USER


def cmd_run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    token = os.environ.get("DISCORD_TOKEN", "").strip()
    if not token:
        raise InputError("DISCORD_TOKEN is not set: export DISCORD_TOKEN=<your bot token> and run again.")
    from bot.client import run_bot

    run_bot(settings, token)
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.evaluate import run_eval

    return run_eval(args, settings, out)


def cmd_export(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot import archive

    return archive.cmd_export(args, settings, out, collection_of(args))


def cmd_import(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot import archive

    return archive.cmd_import(args, settings, out, collection_of(args))


def cmd_bench(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from bot.bench import run_bench

    return run_bench(args, settings, out)


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings, TextIO], int]] = {
    "run": cmd_run,
    "ingest": cmd_ingest,
    "refresh": cmd_refresh,
    "ask": cmd_ask,
    "list": cmd_list,
    "remove": cmd_remove,
    "reindex": cmd_reindex,
    "stats": cmd_stats,
    "doctor": cmd_doctor,
    "health": cmd_health,
    "eval": cmd_eval,
    "export": cmd_export,
    "import": cmd_import,
    "bench": cmd_bench,
}


_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)")


def error_line(e: BaseException) -> str:
    """An error's message on one line: SQLAlchemy's "[SQL: ...]" and "(Background on this error at:
    ...)" lines joined or dropped, controls and bidi overrides of echoed input escaped."""
    return _flat(_BACKGROUND.sub("", str(e))) or e.__class__.__name__


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    _quiet_libraries()
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings(args.config, data_dir=args.data)
        return COMMANDS[args.command](args, settings, out or sys.stdout)
    except QuotebotError as e:
        print(f"quotebot: error: {error_line(e)}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("quotebot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
