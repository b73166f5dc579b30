"""Hostile input at the command line (issue 16, items 6, 9, 11 and the SQLAlchemy error text): a bad
config, a bad data folder, a question that is not text, a batch with repeated ids or null questions,
and stored text full of terminal escapes. Each gives one clear line (or one JSON line per input line),
never a traceback, and nothing raw reaches the terminal.

The config cases and the bytes question run the real CLI as a subprocess (`python -m bot`); those that
need articles share one data folder ingested once with the bundled model. The output-neutralising
cases run `bot.cli.main` in-process with the fake embedder (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.ask import format_answer
from index.embedding import FakeEmbedder
from index.errors import StoreError
from index.library import Library
from index.settings import LibrarySettings
from index.types import Answer, ArticleRef, Quote
from tests.conftest import FAKE_MODEL, fake_model_cli

# What must never reach a terminal raw: C0 controls but tab and newline, DEL, C1, bidi embeddings,
# overrides and isolates, line/paragraph separators, zero-width spaces, lone surrogates.
RAW = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029\u200b\u2060\ufeff\ud800-\udfff]"
)

ARTICLES = [
    {
        "id": "kites",
        "title": "Kites",
        "text": "Kites fly best in steady winds of about fifteen kilometres per hour.",
    },
    {
        "id": "boats",
        "title": "Sailing",
        "text": "A sailboat can travel against the wind by tacking from side to side.",
    },
]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUOTEBOT_")}
    env["PYTHONWARNINGS"] = "ignore"
    return env


def quotebot(cwd: Path, *argv: str | bytes, timeout: float = 180) -> subprocess.CompletedProcess[bytes]:
    """The real CLI in a subprocess; bytes arguments reach it as the OS gives them."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *argv], cwd=cwd, env=_env(), capture_output=True, timeout=timeout
    )


def assert_one_line_error(done: subprocess.CompletedProcess[bytes], *words: str) -> str:
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 1, err
    assert done.stdout == b"", done.stdout
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("quotebot:"), err
    for word in words:
        assert word in lines[0], err
    return lines[0]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(working folder, data folder) with the two ARTICLES ingested by the real CLI and model."""
    root = tmp_path_factory.mktemp("hostile-cli")
    source = root / "articles.jsonl"
    source.write_text("".join(json.dumps(a) + "\n" for a in ARTICLES), encoding="utf-8")
    data = root / "data"
    done = quotebot(root, "--data", str(data), "ingest", str(source))
    assert done.returncode == 0, done.stderr.decode()
    return root, data


# -- item 6: configuration and data folder mistakes ---------------------------------------------------


@pytest.mark.parametrize(
    ("case", "toml", "words"),
    [
        ("section-not-a-table", "index = 5\n", ["index", "table"]),
        ("section-a-list", "bot = [1, 2]\n", ["bot", "table"]),
        ("bad-network", '[fetch]\nallow_networks = ["not-a-network"]\n', ["allow_networks", "not-a-network"]),
        ("config-is-a-folder", None, ["directory"]),
        ("data-is-a-file", "", ["data_dir", "not a directory"]),
    ],
)
def test_config_mistakes_are_one_line(tmp_path: Path, case: str, toml: str | None, words: list[str]) -> None:
    config = tmp_path / "config.toml"
    data = tmp_path / "data"
    if toml is None:
        config.mkdir()
    else:
        config.write_text(toml, encoding="utf-8")
    if case == "data-is-a-file":
        data.write_text("not a folder\n")
    done = quotebot(tmp_path, "--config", str(config), "--data", str(data), "list", timeout=60)
    assert_one_line_error(done, *words)
    if case == "data-is-a-file":
        assert data.read_text() == "not a folder\n"


def test_role_names_are_not_tokens_but_tokens_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[bot]\nmoderator_role = "Token Keepers"\nadmin_role = "token"\n', encoding="utf-8")
    done = quotebot(tmp_path, "--config", str(config), "--data", str(tmp_path / "data"), "list", timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == "No articles yet."
    # Something shaped like a Discord bot token (id . timestamp . HMAC), or a key named token, is not.
    token = "MTE5ODc2NTQzMjEwOTg3NjU0Mw.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789"
    for toml in (f'[bot]\nmoderator_role = "{token}"\n', '[bot]\ntoken = "x"\n'):
        config.write_text(toml, encoding="utf-8")
        done = quotebot(
            tmp_path, "--config", str(config), "--data", str(tmp_path / "data"), "list", timeout=60
        )
        assert_one_line_error(done, "DISCORD_TOKEN")


def test_a_question_that_is_not_utf8_is_one_line(shared: tuple[Path, Path]) -> None:
    root, data = shared
    done = quotebot(root, "--data", str(data), "ask", b"what \xff?")
    line = assert_one_line_error(done)
    assert "UTF-8" in line or "text" in line, line


# -- item 9: ask --batch answers every line, in order -------------------------------------------------


def test_batch_answers_each_line_in_order_and_refuses_non_text(shared: tuple[Path, Path]) -> None:
    root, data = shared
    lines = [
        {"qid": "q1", "question": "In what winds do kites fly best?"},
        {"qid": "q1", "question": "How can a sailboat travel against the wind?"},
        {"qid": "null", "question": None},
        {"qid": "number", "question": 42},
        {"qid": "q1", "question": "In what winds do kites fly best?"},
        {"qid": "blank", "question": "   "},
        {"qid": "surrogate", "question": "why \ud800?"},
    ]
    batch = root / "batch.jsonl"
    batch.write_text("".join(json.dumps(rec) + "\n" for rec in lines), encoding="utf-8")
    done = quotebot(root, "--data", str(data), "ask", "--batch", str(batch), "--json", "--always-quote")
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr
    recs = [json.loads(line) for line in done.stdout.decode("utf-8").splitlines()]
    assert [r["qid"] for r in recs] == [rec["qid"] for rec in lines]
    assert [r["article_id"] for r in recs] == ["kites", "boats", None, None, "kites", None, None]
    assert "Kites fly best" in recs[0]["quote"] and "sailboat" in recs[1]["quote"]
    for rec in (recs[2], recs[3], recs[5], recs[6]):
        assert rec["quote"] is None and rec["score"] is None and rec["error"], rec
    assert "string" in recs[2]["error"] and "string" in recs[3]["error"]
    assert "UTF-8" in recs[6]["error"]


# -- the SQLAlchemy error text ---------------------------------------------------------------------


def test_a_database_error_is_one_line_without_sqlalchemy_background(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[index]\ndatabase_url = "sqlite:///{tmp_path}/missing/folder/store.db"\n')
    done = quotebot(tmp_path, "--config", str(config), "--data", str(tmp_path / "data"), "list", timeout=60)
    line = assert_one_line_error(done, "database")
    assert "sqlalche.me" not in line and "Background on this error" not in line
    # The same rule for any multi-line message.
    from bot.cli.common import error_line

    e = StoreError(
        "Cannot open: (x) locked\n[SQL: BEGIN IMMEDIATE]\n(Background on this error at: https://sqlalche.me/e/20/e3q8)"
    )
    assert error_line(e) == "Cannot open: (x) locked [SQL: BEGIN IMMEDIATE]"


# -- item 11: no raw control characters on the terminal ------------------------------------------------

HOSTILE_TITLE = "T\x1b[1mitle\u202e \x00"
HOSTILE_URL = "https://example.org/\x1b]8;;x\x07"
HOSTILE = "Kites \x1b[2J\x1b]0;pwned\x07fly \x9b31m best \u202eevil\u202c in\u200b steady \u2066winds\u2069."


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    run_in = fake_model_cli(tmp_path, monkeypatch, capsys)
    data = tmp_path / "data"

    def run(*argv: str) -> tuple[int, str, str]:
        return run_in(data, *argv)

    run.data = data  # type: ignore[attr-defined]
    return run


def test_stored_escapes_never_reach_the_terminal_raw(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "hostile.jsonl"
    record = {"id": "kites", "title": "Kites", "text": HOSTILE}
    source.write_text(json.dumps(record) + "\n", encoding="utf-8")
    code, out, err = cli("ingest", str(source))
    assert code == 0, err
    assert not RAW.search(out + err)
    # Stored exactly as given (the text is untouched; only output is neutralised).
    lib = Library(LibrarySettings(data_dir=cli.data, model=FAKE_MODEL), embedder=FakeEmbedder())
    try:
        assert lib.article_text("local", "kites")[1] == HOSTILE
    finally:
        lib.close()
    # A title and a url that today's ingest would clean or refuse, as an older version or another
    # tool may have stored them.
    with sqlite3.connect(cli.data / "quotebot.db") as db:
        db.execute("UPDATE article SET title = ?, url = ?", (HOSTILE_TITLE, HOSTILE_URL))

    code, out, err = cli("ask", "In what winds do kites fly best?")
    assert code == 0, err
    assert not RAW.search(out), ascii(out)
    assert "\\x1b[2J" in out and "\\x9b31m" in out and "\\u202eevil" in out
    assert "T\\x1b[1mitle\\u202e" in out and "\\x1b]8;;x\\x07" in out  # title and url, escaped too

    code, out, err = cli("list")
    assert code == 0, err
    assert not RAW.search(out), ascii(out)
    assert "T\\x1b[1mitle\\u202e" in out and "\\x1b]8;;x\\x07" in out

    # JSON output: escaped in the JSON (nothing raw on the terminal), the exact text once parsed.
    code, out, err = cli("ask", "--json", "In what winds do kites fly best?")
    assert code == 0, err
    assert not RAW.search(out), ascii(out)
    rec = json.loads(out)
    assert rec["quote"] == HOSTILE and rec["title"] == HOSTILE_TITLE and rec["url"] == HOSTILE_URL
    code, out, _ = cli("list", "--json")
    assert not RAW.search(out) and json.loads(out)["title"] == HOSTILE_TITLE

    code, out, err = cli("remove", "kites")
    assert code == 0 and not RAW.search(out) and "T\\x1b[1mitle" in out

    # An error that echoes hostile input is one line with the input escaped.
    code, out, err = cli("remove", "no\x1b]0;such\x07\nid")
    assert code == 1 and not RAW.search(err)
    assert len(err.strip().splitlines()) == 1


def test_format_answer_escapes_titles_urls_and_text() -> None:
    ref = ArticleRef(7, "Ti\x1b[1mtle\u202e", "https://example.org/\x1b]8;;evil\x07", "src")
    q = Quote("Quoted \x00 text \x9b0m here.", ref, 0, 24, 1.0)
    alt = Quote("Other \u2067 text.", ref, 30, 45, 0.5)
    text = format_answer(Answer("q?", q, 0.9, alternatives=[alt]), alternatives=2)
    assert not RAW.search(text), ascii(text)
    assert "Ti\\x1b[1mtle\\u202e" in text and "\\x1b]8;;evil\\x07" in text
    assert "\\x00" in text and "\\x9b0m" in text and "\\u2067" in text
    declined = format_answer(Answer("q?", None, 0.42, best=q, related=[alt]), alternatives=2)
    assert not RAW.search(declined), ascii(declined)


def test_a_batch_of_only_refused_lines_is_one_error_record_each(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "a.jsonl"
    source.write_text("".join(json.dumps(a) + "\n" for a in ARTICLES), encoding="utf-8")
    assert cli("ingest", str(source))[0] == 0
    batch = tmp_path / "batch.jsonl"
    batch.write_text(
        '{"qid": "a", "question": null}\n\n{"qid": 7, "question": ["x"]}\n{"qid": null, "question": "ok?"}\n'
    )
    code, out, err = cli("ask", "--batch", str(batch), "--json")
    assert code == 0, err
    recs = [json.loads(line) for line in out.splitlines()]
    assert [r["qid"] for r in recs] == ["a", "7", None]
    assert all(r["quote"] is None and r["error"] for r in recs)
    assert "qid" in recs[2]["error"]
