"""scripts/fit_scorer.py refits the shipped weights: run it on the SQuAD slice (real model)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from index.answering.scorer import JUDGE_FEATURES, Scorer

ROOT = Path(__file__).resolve().parents[1]
SLICE = ROOT / "tests" / "data" / "squad-slice"


@pytest.mark.slow
def test_fit_scorer_writes_a_scorer_that_loads(tmp_path: Path) -> None:
    out = tmp_path / "scorer.json"
    script = ROOT / "scripts" / "fit_scorer.py"
    files = [str(SLICE / "articles.jsonl"), str(SLICE / "questions.jsonl")]
    done = subprocess.run(
        [sys.executable, str(script), *files, "--folds", "3", "--networks", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "cross-validated accuracy by threshold" in done.stdout
    sc = Scorer.load(out)
    info = json.loads(out.read_text())["info"]
    assert 0.2 <= sc.threshold <= 0.6 and sc.threshold == info["cv_threshold"]
    assert info["cv"]["acc"] > 0.55 and info["cv"]["hit@1"] > 0.8  # the slice's answers are easy to rank
    assert sc.lite is not None and not sc.lite.uses_alignment and sc.full.uses_alignment
    assert len(sc.full.networks) == 1 and len(sc.lite.networks) == 1
    x = np.zeros(len(JUDGE_FEATURES), np.float32)
    assert 0.0 < sc.full.probability(x) < 1.0
