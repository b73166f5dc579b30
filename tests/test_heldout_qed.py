"""scripts/heldout_qed.py: the QED articles and search queries that no fit reads (3, 7, 11, ...)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from index.evaluation.trainingdata import QAArticle, QEDSplit

ROOT = Path(__file__).resolve().parents[1]


def test_qed_split_parts_are_disjoint_and_cover_every_article() -> None:
    arts = [QAArticle(f"a{i}", "", "") for i in range(11)]
    split = QEDSplit.of(arts)
    ids = [[a.id for a in part] for part in (split.reader, split.fit, split.held_out)]
    assert ids == [["a0", "a2", "a4", "a6", "a8", "a10"], ["a1", "a5", "a9"], ["a3", "a7"]]
    assert sorted((x for part in ids for x in part), key=lambda x: int(x[1:])) == [a.id for a in arts]


def _qed(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    arts = [{"id": f"a{i}", "title": f"Title {i}", "text": f"Paragraph number {i} ."} for i in range(n)]
    qs = [
        {"qid": f"q{i}-{k}", "article_id": f"a{i}", "question": f"what is paragraph {i}",
         "answers": [f"number {i}"], "answerable": True, "spans": [[10, 18]]}
        for i in range(n)
        for k in range(2)
    ]  # fmt: skip
    (root / "articles.jsonl").write_text("".join(json.dumps(a) + "\n" for a in arts))
    (root / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    return root


def _run(qed: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = ROOT / "scripts" / "heldout_qed.py"
    cmd = [sys.executable, str(script), str(out), "--qed", str(qed), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)


def test_writes_the_articles_no_fit_reads_with_their_questions(tmp_path: Path) -> None:
    qed = _qed(tmp_path / "qed", 16)
    done = _run(qed, tmp_path / "out")
    arts = [json.loads(x) for x in (tmp_path / "out" / "articles.jsonl").read_text().splitlines()]
    qs = [json.loads(x) for x in (tmp_path / "out" / "questions.jsonl").read_text().splitlines()]
    assert [a["id"] for a in arts] == ["a3", "a7", "a11", "a15"]
    # Neither the reader's articles (even) nor fit_answer's collection (1, 5, 9, 13).
    assert not {a["id"] for a in arts} & {f"a{i}" for i in [*range(0, 16, 2), *range(1, 16, 4)]}
    assert arts[0] == {"id": "a3", "title": "Title 3", "text": "Paragraph number 3 ."}
    assert [q["qid"] for q in qs] == [f"q{i}-{k}" for i in (3, 7, 11, 15) for k in (0, 1)]
    assert set(qs[0]) == {"qid", "article_id", "question", "answers", "answerable"}
    assert "4 articles, 8 questions" in done.stdout


def test_articles_caps_the_count(tmp_path: Path) -> None:
    qed = _qed(tmp_path / "qed", 16)
    _run(qed, tmp_path / "out", "--articles", "2")
    arts = (tmp_path / "out" / "articles.jsonl").read_text().splitlines()
    assert [json.loads(a)["id"] for a in arts] == ["a3", "a7"]
