"""Answer-quality regression on a SQuAD 2.0 slice, with the real bundled model.

Floors sit a little below the figures measured when the scorer was last fitted, so a change that
makes answers worse fails here; `quotebot eval` on the full dev split gives the real numbers.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.__main__ import main

SLICE = Path(__file__).parent / "data" / "squad-slice"
SCORE_PY = Path(__file__).resolve().parents[2] / "shared" / "eval" / "score.py"

# Measured on this slice with index/scorer.json (see the closing notes of the quality issue).
FLOOR_HIT_ALL = 0.80  # best quote contains a gold answer (never declining)
FLOOR_ACC = 0.58  # answerable hit or unanswerable declined, at the shipped threshold


def _result(text: str) -> dict[str, float]:
    line = next(ln for ln in text.splitlines() if ln.startswith("RESULT "))
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, float], Path]:
    preds = tmp_path_factory.mktemp("eval") / "predictions.jsonl"
    out = io.StringIO()
    code = main(
        ["eval", str(SLICE / "articles.jsonl"), str(SLICE / "questions.jsonl"), "--out", str(preds)], out=out
    )
    assert code == 0, out.getvalue()
    return _result(out.getvalue()), preds


def test_quality_floor(eval_run: tuple[dict[str, float], Path]) -> None:
    result, _ = eval_run
    assert result["hit@1_all"] >= FLOOR_HIT_ALL, result
    assert result["acc"] >= FLOOR_ACC, result


def test_every_quote_is_verbatim(eval_run: tuple[dict[str, float], Path]) -> None:
    _, preds = eval_run
    texts = {json.loads(line)["id"]: json.loads(line)["text"] for line in (SLICE / "articles.jsonl").open()}
    quoted = [json.loads(line) for line in preds.open() if json.loads(line)["quote"] is not None]
    assert quoted
    for p in quoted:
        assert p["quote"] in texts[p["article_id"]]


@pytest.mark.skipif(
    not SCORE_PY.exists(), reason="the project's scorer (shared/eval/score.py) is not beside the repo"
)
def test_eval_figures_equal_score_py(eval_run: tuple[dict[str, float], Path]) -> None:
    result, preds = eval_run
    done = subprocess.run(
        [sys.executable, str(SCORE_PY), str(SLICE / "questions.jsonl"), str(preds)],
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = _result(done.stdout)
    for key in ("hit@1", "article@1", "decline_unans", "decline_ans", "acc"):
        assert abs(result[key] - theirs[key]) < 1e-4, (key, result[key], theirs[key])
