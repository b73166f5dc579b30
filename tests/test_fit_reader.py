"""The reader pipeline's refit runs end to end on a small slice and writes files that load.

scripts/reader_cache.py -> scripts/fit_reader.py -> scripts/fit_answer.py, on a training-shaped
folder made from the SQuAD slice (real model; a few minutes)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from index.answering.model import JUDGE_INPUTS, AnswerModel
from index.answering.reader import Reader

ROOT = Path(__file__).resolve().parents[1]
SLICE = ROOT / "tests" / "data" / "squad-slice"


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def _train_folder(root: Path) -> Path:
    """shared/train's layout (squad1-train, squad2-train-10, qed-train) from the slice's articles."""
    arts = [json.loads(line) for line in (SLICE / "articles.jsonl").open()]
    qs = [json.loads(line) for line in (SLICE / "questions.jsonl").open()]
    for q in qs:  # the slice has no spans: take each answer's first occurrence
        text = next(a["text"] for a in arts if a["id"] == q["article_id"])
        q["spans"] = [[i, i + len(x)] for x in q["answers"] if (i := text.find(x)) >= 0]
    parts = {"squad1-train": arts, "squad2-train-10": arts[:1], "qed-train": arts[1:]}
    for name, chosen in parts.items():
        d = root / name
        d.mkdir(parents=True)
        ids = {a["id"] for a in chosen}
        (d / "articles.jsonl").write_text("".join(json.dumps(a) + "\n" for a in chosen))
        mine = [q for q in qs if q["article_id"] in ids and (q["answerable"] or name == "squad2-train-10")]
        (d / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in mine))
    return root


@pytest.mark.slow
def test_refit_on_a_slice_writes_files_that_load(tmp_path: Path) -> None:
    train = _train_folder(tmp_path / "train")
    cache = tmp_path / "cache.npz"
    _run("scripts/reader_cache.py", str(train / "squad1-train"), str(cache))
    reader_file = tmp_path / "reader.pt"
    out = _run(
        "scripts/fit_reader.py",
        str(cache),
        "--epochs",
        "1",
        "--max-questions",
        "96",
        "--near-misses",
        "0.5",
        "--out",
        str(reader_file),
    )
    assert "wrote" in out
    assert "near misses {" in out and "near misses {}" not in out  # changed questions were made
    reader = Reader(reader_file)
    assert reader.model_id == "all-MiniLM-L6-v2" and reader.info["questions"] == 96
    assert reader_file.stat().st_size < 25_000_000
    # fit_answer reads the shipped reader: point it at the new one through a copy of the package.
    model_file = tmp_path / "answer_model.json"
    pkg = tmp_path / "pkg"
    shutil.copytree(ROOT / "index", pkg / "index", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "scripts", pkg / "scripts")
    shutil.copy(reader_file, pkg / "index" / "answering" / "reader.pt")
    done = subprocess.run(
        [
            sys.executable,
            str(pkg / "scripts" / "fit_answer.py"),
            "--train",
            str(train),
            "--articles",
            "2",
            "--answerable",
            "150",
            "--offtopic",
            "60",
            "--near-misses",
            "40",
            "--keywords",
            "20",
            "--out",
            str(model_file),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=pkg,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    model = AnswerModel.load(model_file)
    info = model.info
    assert info["fitted_on"]["answerable"] == 150  # type: ignore[index]
    assert 0 < info["fitted_on"]["synthetic_near_miss"] <= 40  # type: ignore[index,operator]
    assert info["fitted_on"]["keywords"] == 20  # type: ignore[index]
    assert "keywords_mean_confidence" in info["fit_figures"]  # type: ignore[operator]
    assert info["reader"]["questions"] == reader.info["questions"]  # type: ignore[index]  # the new reader
    assert 0.0 < float(info["shortlist_recall"]) <= 1.0  # type: ignore[arg-type]
    assert model.ranker is not None and np.isfinite(model.ranker).all()
    x = np.zeros(len(JUDGE_INPUTS), np.float32)
    assert 0.0 < model.confidence(x) < 1.0
