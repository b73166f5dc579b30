"""The refit runs end to end on a small slice and writes files that load.

scripts/refit.sh (reader_cache.py x3 -> fit_reader.py x4 -> fit_answer.py), the recipe that made
the shipped files, run on a copy of the package with a training-shaped folder made from the SQuAD
slice (real model; a few minutes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from index.answering.model import COMBINE_INPUTS, JUDGE_INPUTS, AnswerModel
from index.answering.reader import Reader

ROOT = Path(__file__).resolve().parents[1]
SLICE = ROOT / "tests" / "data" / "squad-slice"


def _train_folder(root: Path) -> Path:
    """shared/train's layout (squad1-train, squad2-train-10, qed-train) from the slice's articles."""
    arts = [json.loads(line) for line in (SLICE / "articles.jsonl").open()]
    qs = [json.loads(line) for line in (SLICE / "questions.jsonl").open()]
    for q in qs:  # the slice has no spans: take each answer's first occurrence
        text = next(a["text"] for a in arts if a["id"] == q["article_id"])
        q["spans"] = [[i, i + len(x)] for x in q["answers"] if (i := text.find(x)) >= 0]
    # SQuAD 1.1 train gets the slice twice (copies under new ids): refit.sh splits it into even
    # articles (the reader's first stages), the first odd one (fit_answer's collection) and the
    # odd ones after it (the reader's last two stages).
    copies = [{**a, "id": a["id"] + "-copy"} for a in arts]
    qs += [{**q, "qid": q["qid"] + "-copy", "article_id": q["article_id"] + "-copy"} for q in qs]
    parts = {"squad1-train": arts + copies, "squad2-train-10": arts[:1], "qed-train": arts[1:]}
    for name, chosen in parts.items():
        d = root / name
        d.mkdir(parents=True)
        ids = {a["id"] for a in chosen}
        (d / "articles.jsonl").write_text("".join(json.dumps(a) + "\n" for a in chosen))
        mine = [q for q in qs if q["article_id"] in ids and (q["answerable"] or name == "squad2-train-10")]
        (d / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in mine))
    return root


@pytest.mark.slow
def test_refit_script_runs_the_whole_recipe_and_writes_files_that_load(tmp_path: Path) -> None:
    train = _train_folder(tmp_path / "train")
    # refit.sh writes into its own package: run a copy, so the shipped files stay as they are.
    pkg = tmp_path / "pkg"
    shutil.copytree(ROOT / "index", pkg / "index", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "scripts", pkg / "scripts")
    (pkg / "index" / "answering" / "reader.pt").unlink()
    work = tmp_path / "work"
    env = {
        **os.environ,
        "TRAIN": str(train),
        "WORK": str(work),
        "FIT_ARTICLES": "1",
        "VIRTUAL_ENV": str(Path(sys.executable).parent.parent),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    fit_args = ["--answerable", "150", "--offtopic", "60", "--near-misses", "40", "--keywords", "20"]
    done = subprocess.run(
        ["bash", str(pkg / "scripts" / "refit.sh"), *fit_args],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "near misses {" in out and "near misses {}" not in out  # the last stage made changed questions
    assert "== refit done in" in out
    steps = dict(line.split() for line in (work / "times.txt").read_text().splitlines())
    names = ["cache-even", "cache-qed", "cache-odd", "reader-1", "reader-2", "reader-3", "reader-4"]
    names.append("answer-model")
    assert list(steps) == [*names, "total"]
    assert int(steps["total"]) >= sum(int(v) for k, v in steps.items() if k != "total")

    reader_file = pkg / "index" / "answering" / "reader.pt"
    reader = Reader(reader_file)
    assert reader.model_id == "all-MiniLM-L6-v2"
    assert reader_file.stat().st_size < 25_000_000
    # Four stages, each continuing the one before, recorded in the model card; the last reads the
    # sentences' context.
    assert reader.uses_context
    cards = [reader.info]
    while "started_from" in cards[-1]:
        cards.append(cards[-1]["started_from"])  # type: ignore[arg-type]
    assert len(cards) == 4
    assert "--context" in str(cards[0]["command"]) and "--context" not in str(cards[1]["command"])
    assert "sq1odd.npz" in str(cards[1]["command"]) and "--near-misses 0.35" in str(cards[1]["command"])
    assert "--init" not in str(cards[3]["command"])
    assert all(int(c["steps"]) > 0 for c in cards)  # type: ignore[call-overload]
    # Each card says what its stage read: the odd copies after fit_answer's first one for the last
    # stages (with synthetic near misses; the fourth with QED too), the even articles and QED before.
    last = cards[0]["training_data"]
    assert [(d["cache"], d["articles"]) for d in last] == [("sq1odd", 2), ("qed", 1)]  # type: ignore[index]
    assert last[0]["synthetic_near_misses"] > 0  # type: ignore[index]
    third = cards[1]["training_data"]
    assert [(d["cache"], d["articles"]) for d in third] == [("sq1odd", 2)]  # type: ignore[index]
    assert third[0]["synthetic_near_misses"] > 0  # type: ignore[index]
    first = cards[3]["training_data"]
    assert [(d["cache"], d["articles"], d["synthetic_near_misses"]) for d in first] == [  # type: ignore[index]
        ("sq1", 3, 0),
        ("qed", 1, 0),
    ]

    model = AnswerModel.load(pkg / "index" / "answering" / "answer_model.json")
    info = model.info
    # The asked answerable questions: 150 crowdworkers' questions and the real search queries of the
    # QED articles in the collection (qed-train's articles 1, 5, 9, ...).
    queries = info["fitted_on"]["answerable_search_queries"]  # type: ignore[index]
    assert queries > 0 and info["fitted_on"]["answerable"] == 150 + queries  # type: ignore[index,operator]
    assert "qed-train articles [1::4]" in info["fitted_on"]["collection"]  # type: ignore[index,operator]
    assert 0 < info["fitted_on"]["synthetic_near_miss"] <= 40  # type: ignore[index,operator]
    assert info["fitted_on"]["keywords"] == 20  # type: ignore[index]
    assert "keywords_mean_confidence" in info["fit_figures"]  # type: ignore[operator]
    assert info["reader"]["questions"] == reader.info["questions"]  # type: ignore[index]  # the new reader
    assert 0.0 < float(info["shortlist_recall"]) <= 1.0  # type: ignore[arg-type]
    assert model.ranker is not None and np.isfinite(model.ranker).all()
    # The rescoring is the network (three seeds' hidden units side by side), fitted on the asked
    # answerable questions and more of the collection's.
    assert info["fitted_on"]["rescoring_extra_answerable"] > 0  # type: ignore[index,operator]
    r = model.combine
    assert (
        r.hidden is not None and r.hidden.shape == (len(COMBINE_INPUTS), 96) and np.isfinite(r.hidden).all()
    )
    assert np.isfinite(r.out).all() and r.out.any()
    x = np.zeros(len(JUDGE_INPUTS), np.float32)
    assert 0.0 < model.confidence(x) < 1.0
