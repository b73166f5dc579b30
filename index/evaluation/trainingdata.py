"""Reading question-answering data for fitting and evaluation: the project's JSON Lines pair
(`articles.jsonl` + `questions.jsonl`, see shared/eval/README.md) or an official SQuAD JSON file
(train-v1.1.json, train-v2.0.json, dev-*.json), as one shape: articles and questions whose gold
answers carry character spans into the article text where known."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from index.errors import InputError


@dataclass(frozen=True)
class QAArticle:
    id: str
    title: str
    text: str


@dataclass(frozen=True)
class QAQuestion:
    qid: str
    article_id: str
    question: str
    answers: list[str]
    answerable: bool
    spans: list[tuple[int, int]] = field(default_factory=list)  # into the article's text


@dataclass(frozen=True)
class QASet:
    articles: list[QAArticle]
    questions: list[QAQuestion]


@dataclass(frozen=True)
class QEDSplit:
    """QED's articles by who reads them: the reader's fit (the even ones: scripts/refit.sh's
    `reader_cache.py qed-train --every 2`), fit_answer.py's collection (1, 5, 9, ...) and the
    held-out ones no fit reads (3, 7, 11, ...: scripts/heldout_qed.py)."""

    reader: list[QAArticle]
    fit: list[QAArticle]
    held_out: list[QAArticle]

    @classmethod
    def of(cls, articles: list[QAArticle]) -> QEDSplit:
        return cls(articles[0::2], articles[1::4], articles[3::4])


def read_jsonl(path: Path) -> list[dict]:  # type: ignore[type-arg]
    """Every JSON object of a JSON Lines file (blank lines skipped); a bad line is an InputError.
    The one reader of the project's data files (eval, bench, fit scripts). Lines end at "\\n" only:
    a raw U+2028 is legal inside a JSON string, so `str.splitlines` would cut records."""
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"Cannot read {path}: {e}") from e
    out = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{n}: bad JSON ({e.msg}).") from e
    return out


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def read_squad_json(path: Path) -> QASet:
    """An official SQuAD file: each title is one article, its paragraphs joined by a blank line."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    articles, questions = [], []
    for art in raw["data"]:
        aid, title = _slug(art["title"]), art["title"].replace("_", " ")
        parts, pos = [], 0
        for para in art["paragraphs"]:
            ctx = para["context"]
            for qa in para["qas"]:
                texts, spans = [], []
                for a in qa.get("answers", []):
                    if a["text"] not in texts:
                        texts.append(a["text"])
                    spans.append((pos + a["answer_start"], pos + a["answer_start"] + len(a["text"])))
                questions.append(
                    QAQuestion(qa["id"], aid, qa["question"], texts, bool(texts), sorted(set(spans)))
                )
            parts.append(ctx)
            pos += len(ctx) + 2
        articles.append(QAArticle(aid, title, "\n\n".join(parts)))
    return QASet(articles, questions)


def read_qa(source: Path) -> QASet:
    """A folder with articles.jsonl + questions.jsonl, or an official SQuAD .json file."""
    source = Path(source)
    if source.is_file() and source.suffix == ".json":
        return read_squad_json(source)
    arts = read_jsonl(source / "articles.jsonl")
    qs = read_jsonl(source / "questions.jsonl")
    return QASet(
        [QAArticle(a["id"], a.get("title") or a["id"], a["text"]) for a in arts],
        [
            QAQuestion(
                str(q["qid"]),
                q["article_id"],
                q["question"],
                list(q.get("answers", [])),
                bool(q.get("answerable", bool(q.get("answers")))),
                [tuple(s) for s in q.get("spans", [])],  # type: ignore[misc]
            )
            for q in qs
        ],
    )
