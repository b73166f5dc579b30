"""`quotebot` / `python -m bot`: the command line (run, ingest, ask, list, remove, reindex, stats, doctor,
export, import, eval, bench). The parser and `main` are here; each command group has its module:

    run.py          run (the Discord bot)
    articles.py     ingest, refresh, list, remove
    ask.py          ask (one question, or a batch)
    maintenance.py  reindex, stats, doctor, health
    archive.py      export, import
    eval.py         eval (index/evaluation/run.py measures, this prints)
    bench.py        bench (index/evaluation/bench.py measures, this prints)
    common.py       what they share: --guild, the library, progress bars, one-line text and errors

User mistakes print one line on stderr and exit non-zero; only bugs print a traceback. Untrusted text
(article text, titles, urls, questions) is shown through `bot.safe_text`: no raw control characters
or bidi overrides reach the terminal, and JSON output escapes them (the parsed strings stay exact).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from bot.cli import archive, articles, ask, bench, maintenance, run
from bot.cli import eval as evaluation
from bot.cli.common import EXIT_USER, error_line
from bot.config import Settings, load_settings
from index.errors import QuotebotError


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
        "--offtopic-sample",
        type=int,
        default=0,
        metavar="N",
        help="ask N questions of each --offtopic file, drawn at random with a fixed seed (default: all)",
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


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings, TextIO], int]] = {
    "run": run.cmd_run,
    "ingest": articles.cmd_ingest,
    "refresh": articles.cmd_refresh,
    "ask": ask.cmd_ask,
    "list": articles.cmd_list,
    "remove": articles.cmd_remove,
    "reindex": maintenance.cmd_reindex,
    "stats": maintenance.cmd_stats,
    "doctor": maintenance.cmd_doctor,
    "health": maintenance.cmd_health,
    "eval": evaluation.cmd_eval,
    "export": archive.cmd_export,
    "import": archive.cmd_import,
    "bench": bench.cmd_bench,
}


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
