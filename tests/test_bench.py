"""`quotebot bench --quick` on a tiny data set: the table and the BENCH line come out, numbers positive."""

from __future__ import annotations

import argparse
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from bot.cli.bench import run_bench
from bot.config import load_settings

ARTICLES = [
    {
        "id": "tomatoes",
        "title": "Growing tomatoes",
        "text": "Tomatoes need at least six hours of direct sunlight every day. "
        "Water the plants deeply twice a week rather than a little every day. "
        "Mulch keeps the soil moist and stops weeds from growing around the stems.\n\n"
        "Pinch out side shoots so that the plant puts its energy into fruit. "
        "Ripe tomatoes are picked when they are fully red and slightly soft.",
    },
    {
        "id": "planets",
        "title": "Planets and moons",
        "text": "The Moon orbits the Earth once every 27.3 days. "
        "Jupiter is the largest planet in the Solar System. "
        "Saturn's rings are made mostly of ice and rock.\n\n"
        "A light year is the distance light travels in one year. "
        "Mars has two small moons called Phobos and Deimos.",
    },
]
QUESTIONS = [
    ("q1", "tomatoes", "How much sunlight do tomatoes need?", ["six hours"], True),
    ("q2", "tomatoes", "What does mulch do?", ["keeps the soil moist"], True),
    ("q3", "planets", "What is the largest planet?", ["Jupiter"], True),
    ("q4", "planets", "What are the moons of Mars called?", ["Phobos and Deimos"], True),
    ("q5", "planets", "Who discovered Neptune?", [], False),
]


@pytest.mark.slow
def test_quick_bench_prints_table_and_bench_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "eval"
    data.mkdir()
    (data / "articles.jsonl").write_text("".join(json.dumps(a) + "\n" for a in ARTICLES), encoding="utf-8")
    (data / "questions.jsonl").write_text(
        "".join(
            json.dumps({"qid": q, "article_id": a, "question": t, "answers": g, "answerable": ok}) + "\n"
            for q, a, t, g, ok in QUESTIONS
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("QUOTEBOT_EVAL_DIR", str(data))
    monkeypatch.chdir(tmp_path)  # no ./config.toml
    settings = load_settings(None, data_dir=tmp_path / "unused", env={})
    out = io.StringIO()
    code = run_bench(argparse.Namespace(quick=True, skip="peer,scale,real"), settings, out)
    assert code == 0
    lines = out.getvalue().strip().splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["part", "measure", "quotebot"])
    assert lines[header].split() == ["part", "measure", "quotebot", "raw/peer", "ratio", "goal", "met"]
    table = "\n".join(lines[header:])
    assert "ingest" in table and "ask" in table and "scale" not in table
    assert lines[-1].startswith("BENCH ")
    kv = dict(item.split("=", 1) for item in lines[-1].split()[1:])
    for key in (
        "ingest_s",
        "ingest_raw_s",
        "ingest_ratio",
        "ask_median_ms",
        "ask_raw_median_ms",
        "ask_median_ratio",
        "ask_p95_ms",
        "ask_many_qps",
    ):
        v = float(kv[key])
        assert math.isfinite(v) and v > 0, (key, kv[key])
    assert kv["quick"] == "1"
    assert int(kv["torch_threads"]) >= 1
    assert not any(k.startswith(("scale_", "peer_")) for k in kv)


@pytest.mark.slow
def test_real_vector_rows_use_training_sentences_and_cache_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real part on a small training folder: vectors embedded once, cached, and the recall
    rows printed (a flat index below ivf_threshold is exact: recall 1.0)."""
    from index.evaluation import bench, bench_report, bench_scale

    train = tmp_path / "train" / "squad1-train"
    train.mkdir(parents=True)
    arts = [
        {"id": f"a{i}", "title": f"A{i}", "text": f"Fact {i} about topic {i % 7} is short. Another line {i}."}
        for i in range(60)
    ]
    (train / "articles.jsonl").write_text("".join(json.dumps(a) + "\n" for a in arts))
    qs = [{"qid": str(i), "article_id": f"a{i}", "question": f"What is fact {i}?"} for i in range(30)]
    (train / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    monkeypatch.setenv("QUOTEBOT_TRAIN_DIR", str(tmp_path / "train"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = bench_scale.real_vectors(100, 20)
    assert first is not None and first[0].shape == (100, 384) and first[1].shape == (20, 384)
    assert list((tmp_path / "cache" / "quotebot").glob("bench-real-*.npz"))
    again = bench_scale.real_vectors(100, 20)
    assert again is not None and np.array_equal(again[0], first[0])
    report = bench_report.Report()
    monkeypatch.setattr(bench_scale, "real_vectors", lambda n, q: first)
    settings = load_settings(None, data_dir=tmp_path / "d", env={}).library_settings()
    bench.Bench(True, settings, report, tmp_path).real()
    rows = {r.measure: r for r in report.rows}
    assert any(k.startswith("recall@10") for k in rows)
    assert float(report.keys["real_recall10"]) == 1.0
