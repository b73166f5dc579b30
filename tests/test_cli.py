"""The `quotebot` command line: in-process through `bot.cli.main` (fake embedder, fast), and as real
subprocesses (`python -m bot`, the `quotebot` script) with the bundled model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from index.embedding import FakeEmbedder
from index.library import Library
from index.settings import LibrarySettings
from tests.conftest import FAKE_MODEL, fake_model_cli

TXT = (
    "Tomatoes need at least six hours of direct sunlight every day. "
    "Water the plants deeply twice a week rather than a little every day.\n"
)
MD = "# Planets\n\nJupiter is the largest planet in the Solar System. Saturn's rings are made of ice and rock.\n"
HTML = (
    "<html><head><title>Baking bread</title></head><body><nav>Home | News | Contact</nav><article>"
    "<h1>Baking bread</h1><p>Bread rises because yeast produces carbon dioxide gas while the dough rests.</p>"
    "<p>Knead the dough for ten minutes until it feels smooth and elastic under your hands.</p>"
    "<p>Bake the loaf at 220 degrees Celsius for about thirty minutes, then let it cool.</p></article>"
    "</body></html>"
)
JSONL = (
    "\n".join(
        json.dumps(r)
        for r in [
            {
                "id": "kites",
                "title": "Kites",
                "url": "https://example.org/kites",
                "text": "Kites fly best in steady winds of about fifteen kilometres per hour.",
            },
            {
                "id": "boats",
                "title": "Sailing",
                "text": "A sailboat can travel against the wind by tacking from side to side.",
            },
        ]
    )
    + "\n"
)

BATCH = [
    ("q1", "How many hours of sunlight do tomatoes need?"),
    ("q2", "What is the largest planet in the Solar System?"),
    ("q3", "How long should you knead the dough?"),
    ("q4", "In what winds do kites fly best?"),
    ("q5", "How can a sailboat travel against the wind?"),
]


@pytest.fixture
def articles(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "articles"
    folder.mkdir()
    files = {
        "txt": folder / "tomatoes.txt",
        "md": folder / "planets.md",
        "html": folder / "bread.html",
        "jsonl": folder / "more.jsonl",
    }
    for kind, text in (("txt", TXT), ("md", MD), ("html", HTML), ("jsonl", JSONL)):
        files[kind].write_text(text, encoding="utf-8")
    return files


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run `quotebot --data DIR ...` in-process with the fake embedder; returns (exit code, stdout, stderr)."""
    run_in = fake_model_cli(tmp_path, monkeypatch, capsys)
    data = tmp_path / "data"

    def run(*argv: str) -> tuple[int, str, str]:
        return run_in(data, *argv)

    run.data = data  # type: ignore[attr-defined]
    return run


def stored_text(data: Path, article_id: str, collection: str = "local") -> str:
    lib = Library(LibrarySettings(data_dir=data, model=FAKE_MODEL), embedder=FakeEmbedder())
    try:
        return lib.article_text(collection, article_id)[1]
    finally:
        lib.close()


def assert_one_error_line(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("quotebot:"), err
    assert "Traceback" not in err


def ingest_all(cli, articles: dict[str, Path]) -> str:  # type: ignore[no-untyped-def]
    code, out, err = cli("ingest", *(str(p) for p in articles.values()))
    assert code == 0, err
    return out


# -- ingest, ask ----------------------------------------------------------------------------------


def test_ingest_every_file_type(cli, articles: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    out = ingest_all(cli, articles)
    lines = out.strip().splitlines()
    assert len(lines) == 5 and all(line.startswith("added [") for line in lines)
    for title in ("tomatoes", "Planets", "Baking bread", "Kites", "Sailing"):
        assert title in out
    # Again: nothing new.
    code, out, _ = cli("ingest", *(str(p) for p in articles.values()))
    assert code == 0
    assert "added" not in out and "unchanged" in out
    code, out, _ = cli("list")
    assert code == 0 and len(out.strip().splitlines()) == 5
    # The HTML page's navigation is not part of the article.
    listed = {a["title"]: a["id"] for a in map(json.loads, cli("list", "--json")[1].splitlines())}
    bread = stored_text(cli.data, str(listed["Baking bread"]))
    assert "Knead the dough" in bread and "Home | News" not in bread


def test_ask_prints_the_quote_title_and_source(cli, articles: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    ingest_all(cli, articles)
    code, out, err = cli("ask", "In what winds do kites fly best?")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "> Kites fly best in steady winds of about fifteen kilometres per hour."
    assert lines[1] == "— Kites (https://example.org/kites)"
    assert err == ""


def test_ask_declines_in_words(cli, articles: dict[str, Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ingest_all(cli, articles)
    strict = tmp_path / "strict.toml"
    strict.write_text("[index]\nthreshold = 1.0\n")
    code, out, _ = cli("--config", str(strict), "ask", "What is the boiling point of water?")
    assert code == 0
    assert out.startswith("I couldn't find that")
    assert "Possibly related:" in out


def test_ask_json_is_one_object(cli, articles: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    ingest_all(cli, articles)
    code, out, _ = cli("ask", "--json", "What is the largest planet in the Solar System?")
    assert code == 0
    [line] = out.strip().splitlines()
    rec = json.loads(line)
    assert {"quote", "article_id", "title", "url", "score"} <= set(rec)
    assert rec["quote"] == "Jupiter is the largest planet in the Solar System."
    assert rec["title"] == "Planets"
    assert rec["url"] is None
    assert 0.0 <= rec["score"] <= 1.0
    assert rec["quote"] in stored_text(cli.data, rec["article_id"])


def test_ask_batch_json(cli, articles: dict[str, Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ingest_all(cli, articles)
    batch = tmp_path / "questions.jsonl"
    rows = [*BATCH, ("empty", "   ")]
    batch.write_text("".join(json.dumps({"qid": q, "question": t}) + "\n" for q, t in rows))
    code, out, err = cli("ask", "--batch", str(batch), "--json")
    assert code == 0, err
    recs = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["qid"] for r in recs] == [q for q, _ in rows]
    for rec in recs[:-1]:
        assert {"qid", "quote", "article_id", "title", "url", "score"} <= set(rec)
        assert rec["quote"] in stored_text(cli.data, rec["article_id"])
    by_qid = {r["qid"]: r for r in recs}
    assert by_qid["q4"]["article_id"] == "kites"  # the JSON Lines record's own id
    assert by_qid["q4"]["url"] == "https://example.org/kites"
    assert by_qid["q5"]["article_id"] == "boats"
    assert by_qid["q2"]["title"] == "Planets"
    assert by_qid["empty"]["quote"] is None and "error" in by_qid["empty"]


def test_bad_batch_file(cli, articles: dict[str, Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ingest_all(cli, articles)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"qid": "1", "question": "ok?"}\nnot json\n')
    code, _, err = cli("ask", "--batch", str(bad), "--json")
    assert code == 1
    assert_one_error_line(err)
    code, _, err = cli("ask", "--batch", str(tmp_path / "missing.jsonl"))
    assert code == 1
    assert_one_error_line(err)


# -- list, remove, reindex, stats, doctor ---------------------------------------------------------


def test_list_and_remove(cli, articles: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    ingest_all(cli, articles)
    code, out, _ = cli("list", "--json")
    listed = [json.loads(line) for line in out.strip().splitlines()]
    ids = {a["title"]: a["id"] for a in listed}
    code, out, _ = cli("remove", str(ids["Planets"]))
    assert code == 0 and "removed" in out and "Planets" in out
    code, out, _ = cli("remove", "kites")  # by source id
    assert code == 0 and "Kites" in out
    code, out, _ = cli("list")
    assert "Planets" not in out and "Kites" not in out and "Sailing" in out
    assert len(out.strip().splitlines()) == 3
    code, _, err = cli("remove", "kites")
    assert code == 1
    assert_one_error_line(err)
    code, out, _ = cli("ask", "--json", "What is the largest planet in the Solar System?")
    assert "Jupiter" not in (json.loads(out)["quote"] or "")


def test_reindex_stats_and_doctor(cli, articles: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    ingest_all(cli, articles)
    code, out, _ = cli("doctor")
    assert code == 0 and out.startswith("ok")

    code, out, _ = cli("stats", "--json")
    st = json.loads(out)
    assert st["articles"] == 5
    assert st["vectors"] == st["passages"] >= 5
    assert st["model"] == FAKE_MODEL and st["index_type"] == "flat"
    code, out, _ = cli("stats")
    for key in ("articles", "passages", "vectors", "model", "index_type"):
        assert key in out

    index_file = cli.data / "index" / "local.faiss"
    index_file.unlink()
    code, out, err = cli("doctor")
    assert code != 0
    assert "problem:" in out and "local" in out and "reindex" in out
    assert "Traceback" not in err

    code, out, _ = cli("reindex")
    assert code == 0 and f"{st['passages']} passage vectors" in out
    assert cli("doctor")[0] == 0

    index_file.write_bytes(b"\x00not a faiss index\x00" * 10)
    code, out, _ = cli("doctor")
    assert code != 0 and "problem:" in out
    # Asking still works: the damaged index is rebuilt from SQL on load.
    code, out, _ = cli("ask", "--json", "What is the largest planet in the Solar System?")
    assert code == 0 and "Jupiter" in json.loads(out)["quote"]
    assert cli("doctor")[0] == 0


def test_guild_collections_are_separate(cli, articles: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    code, _, _ = cli("ingest", str(articles["md"]), "--guild", "123456")
    assert code == 0
    assert cli("list")[1].strip() == "No articles yet."
    assert "Planets" in cli("list", "--guild", "123456")[1]
    code, _, err = cli("ask", "What is the largest planet?")
    assert code == 1
    assert_one_error_line(err)
    code, out, _ = cli(
        "ask", "--guild", "123456", "--json", "What is the largest planet in the Solar System?"
    )
    assert code == 0 and "Jupiter" in json.loads(out)["quote"]


# -- errors ---------------------------------------------------------------------------------------


def _docx(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("word/document.xml", "<w:document/>" * 50)


@pytest.mark.parametrize(
    "case",
    [
        "missing-file",
        "empty-folder",
        "docx",
        "png",
        "empty-file",
        "bad-guild-ingest",
        "bad-guild-ask",
        "bad-guild-list",
        "no-question",
        "question-and-batch",
        "too-long",
        "empty-collection",
        "url-scheme",
    ],
)
def test_user_errors_are_one_line_and_exit_1(
    cli, articles: dict[str, Path], tmp_path: Path, case: str
) -> None:  # type: ignore[no-untyped-def]
    ingest_all(cli, articles)
    folder = articles["txt"].parent
    if case == "docx":
        _docx(folder / "report.docx")
    if case == "png":
        (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    if case == "empty-file":
        (folder / "empty.txt").write_bytes(b"")
    if case == "empty-folder":
        (tmp_path / "empty-folder" / "sub").mkdir(parents=True)
        (tmp_path / "empty-folder" / "notes.docx").write_bytes(b"not read")
    argv = {
        "missing-file": ["ingest", str(folder / "nope.txt")],
        "empty-folder": ["ingest", str(tmp_path / "empty-folder")],
        "docx": ["ingest", str(folder / "report.docx")],
        "png": ["ingest", str(folder / "image.png")],
        "empty-file": ["ingest", str(folder / "empty.txt")],
        "bad-guild-ingest": ["ingest", str(articles["txt"]), "--guild", "my-server"],
        "bad-guild-ask": ["ask", "What?", "--guild", "../etc"],
        "bad-guild-list": ["list", "--guild", "abc"],
        "no-question": ["ask"],
        "question-and-batch": ["ask", "Why?", "--batch", str(tmp_path / "q.jsonl")],
        "too-long": ["ask", "why " * 1000],
        "empty-collection": ["ask", "What?", "--guild", "42"],
        "url-scheme": ["ingest", "ftp://example.org/a.txt"],
    }[case]
    before = cli("list", "--json")[1]
    code, out, err = cli(*argv)
    assert code == 1
    assert out == ""
    assert_one_error_line(err)
    assert cli("list", "--json")[1] == before


def test_a_folder_ingests_every_file_once_and_again_changes_nothing(cli, articles: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    folder = articles["txt"].parent
    code, out, err = cli("ingest", str(folder))
    assert code == 0, err
    assert out.strip().splitlines()[-1].endswith("5 added, 0 replaced, 0 unchanged, 0 failed"), out
    code, out, err = cli("ingest", str(folder))
    assert code == 0 and out.strip().splitlines()[-1].endswith("0 added, 0 replaced, 5 unchanged, 0 failed")
    articles["txt"].write_text("Tomatoes need eight hours of direct sunlight every day.\n")
    code, out, err = cli("ingest", str(folder))
    assert "replaced" in out and out.strip().splitlines()[-1].endswith(
        "0 added, 1 replaced, 4 unchanged, 0 failed"
    )


# -- real processes, real model -------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUOTEBOT_")}
    env["PYTHONWARNINGS"] = "ignore"
    return env


def test_subprocesses_with_the_bundled_model(articles: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "data"
    script = shutil.which("quotebot", path=str(Path(sys.executable).parent))
    assert script is not None, "the quotebot console script is not installed"

    def run(*argv: str, via_script: bool = False) -> subprocess.CompletedProcess[str]:
        cmd = [script] if via_script else [sys.executable, "-m", "bot"]
        return subprocess.run(
            [*cmd, "--data", str(data), *argv],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=180,
        )

    done = run("ingest", str(articles["md"]), str(articles["jsonl"]))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("added [") == 3
    assert "Traceback" not in done.stderr

    done = run("ask", "--json", "What is the largest planet in the Solar System?", via_script=True)
    assert done.returncode == 0, done.stderr
    rec = json.loads(done.stdout)
    assert rec["quote"] == "Jupiter is the largest planet in the Solar System."
    assert rec["title"] == "Planets"

    done = run("ingest", str(tmp_path / "missing.txt"), via_script=True)
    assert done.returncode == 1
    assert done.stdout == ""
    assert_one_error_line(done.stderr)


def test_a_decline_prints_the_closest_sentence_with_its_confidence() -> None:
    from bot.cli.ask import format_answer
    from index.types import Answer, ArticleRef, Quote

    ref = ArticleRef(1, "Weapons report", "https://example.org/r", "r")
    best = Quote("Spokesman John Kirby said so.", ref, 10, 39, 1.0)
    text = format_answer(Answer("Who is the spokesman?", None, 0.42, best=best), alternatives=0)
    lines = text.splitlines()
    assert lines[0] == "I couldn't find that in the articles."
    assert "confidence 42%" in lines[2] and lines[3] == "> Spokesman John Kirby said so."
    assert lines[4] == "— Weapons report (https://example.org/r)"
    far = format_answer(Answer("What is the boiling point of water?", None, 0.04, best=best), alternatives=0)
    assert "closest" not in far and "Kirby" not in far
