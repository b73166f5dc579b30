"""Write the QED articles and real search queries that no fit sees, to measure on with `quotebot eval`.

    python scripts/heldout_qed.py OUT_DIR [--qed ../shared/train/qed-train] [--articles 1500]

The reader is fitted on QED's even articles and fit_answer.py's collection takes articles 1, 5, 9,
...; articles 3, 7, 11, ... are held out: OUT_DIR/articles.jsonl gets the first `--articles` of
them and OUT_DIR/questions.jsonl their questions. The files are derived from the training data:
keep them out of the repository (as the training data itself).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index.evaluation.trainingdata import QEDSplit, read_qa


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--qed", type=Path, default=Path("../shared/train/qed-train"))
    ap.add_argument("--articles", type=int, default=1500)
    a = ap.parse_args()
    qed = read_qa(a.qed)
    held = QEDSplit.of(qed.articles).held_out[: a.articles]
    ids = {x.id for x in held}
    a.out.mkdir(parents=True, exist_ok=True)
    with (a.out / "articles.jsonl").open("w", encoding="utf-8") as f:
        for x in held:
            f.write(json.dumps({"id": x.id, "title": x.title, "text": x.text}, ensure_ascii=False) + "\n")
    n = 0
    with (a.out / "questions.jsonl").open("w", encoding="utf-8") as f:
        for q in qed.questions:
            if q.article_id in ids:
                row = {
                    "qid": q.qid,
                    "article_id": q.article_id,
                    "question": q.question,
                    "answers": q.answers,
                    "answerable": q.answerable,
                }
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
    print(f"{len(held)} articles, {n} questions -> {a.out}")


if __name__ == "__main__":
    main()
