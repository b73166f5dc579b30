"""The question sets `quotebot eval` asks: an off-topic sample is the same on every run."""

from __future__ import annotations

import json
from pathlib import Path

from index.evaluation.run import read_sets


def _write(path: Path, n: int) -> Path:
    path.write_text(
        "".join(json.dumps({"qid": f"q{i}", "question": f"question {i}?"}) + "\n" for i in range(n))
    )
    return path


def test_offtopic_sample_is_fixed_and_in_file_order(tmp_path: Path) -> None:
    main = _write(tmp_path / "main.jsonl", 3)
    other = _write(tmp_path / "other.jsonl", 50)
    first = read_sets(main, [other], no_odd=True, offtopic_sample=10)
    again = read_sets(main, [other], no_odd=True, offtopic_sample=10)
    ids = [q["qid"] for q in first.offtopic]
    assert len(ids) == 10 and len(set(ids)) == 10
    assert ids == [q["qid"] for q in again.offtopic]
    assert ids == sorted(ids, key=lambda q: int(q[1:]))
    assert ids != [f"q{i}" for i in range(10)]  # drawn, not the head of the file
    assert len(first.questions) == 3  # the main questions are never sampled


def test_offtopic_sample_per_file_and_all_when_larger(tmp_path: Path) -> None:
    main = _write(tmp_path / "main.jsonl", 2)
    small = _write(tmp_path / "small.jsonl", 4)
    big = _write(tmp_path / "big.jsonl", 30)
    sets = read_sets(main, [small, big], no_odd=True, offtopic_sample=5)
    assert len(sets.offtopic) == 4 + 5
    assert len(read_sets(main, [small, big], no_odd=True).offtopic) == 34
