"""The synthetic near-miss questions the reader is fitted with (scripts/near_misses.py)."""

from __future__ import annotations

import itertools
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from near_misses import _negate, _opposite, _swap_entity, _swap_number, perturb

ARTICLE = (
    "The Normans conquered England in 1066 under William the Conqueror. Later the Normans ruled "
    "parts of Sicily, and in 1130 the Kingdom of Sicily was founded by Roger II. The first king was "
    "crowned in Palermo. Many castles were built in the north."
)
SENTENCE = "The Normans conquered England in 1066 under William the Conqueror."


def test_entity_swap_takes_another_name_of_the_article() -> None:
    out = _swap_entity("When did the Normans conquer England?", SENTENCE, ARTICLE, random.Random(0))
    assert out is not None and out != "When did the Normans conquer England?"
    swapped = {"Sicily", "Kingdom", "Palermo", "Roger"}
    assert any(name in out for name in swapped), out
    # The first word of a sentence is no name: "Later", "Many" are never taken.
    for seed in range(20):
        got = _swap_entity("When did the Normans conquer England?", SENTENCE, ARTICLE, random.Random(seed))
        assert got is not None and "Later" not in got and "Many" not in got


def test_number_swap_never_keeps_a_number_of_the_sentence() -> None:
    for seed in range(10):
        out = _swap_number("Who led the Normans in 1066?", SENTENCE, ARTICLE, random.Random(seed))
        assert out is not None and "1066" not in out


def test_opposite_and_negation() -> None:
    got = _opposite(
        "Who was the first king?", "The first king was crowned in Palermo.", ARTICLE, random.Random(0)
    )
    assert got in {"Who was the last king?", "Who was the first queen?"}
    assert (
        _opposite("How many castles were built?", "Many castles were built.", ARTICLE, random.Random(0))
        is None
    )
    assert _negate("Who was the first king?", "The first king was crowned.", ARTICLE, random.Random(0)) == (
        "Who was not the first king?"
    )
    # A sentence that negates itself, or a question that already does: no negation.
    assert _negate("Who was the first king?", "He was not the first king.", ARTICLE, random.Random(0)) is None
    assert _negate("Who was not crowned?", "The first king was crowned.", ARTICLE, random.Random(0)) is None


def test_perturb_changes_the_question_or_gives_none() -> None:
    rng = random.Random(1)
    kinds = set()
    for q in [
        "When did the Normans conquer England?",
        "Who led the Normans in 1066?",
        "Who was the first king?",
    ]:
        got = perturb(
            q, SENTENCE if "Normans" in q else "The first king was crowned in Palermo.", ARTICLE, rng
        )
        assert got is not None and got[1] != q
        kinds.add(got[0])
    assert kinds <= {"entity", "number", "opposite", "negation"}
    assert perturb("Why?", "Because.", "Because.", random.Random(0)) is None


def test_fit_answer_changes_questions_that_are_not_asked_into_near_misses() -> None:
    from fit_answer import synthetic_near_misses

    from index.evaluation.trainingdata import QAArticle, QAQuestion

    art = QAArticle("normans", "Normans", ARTICLE)

    def asked(qid: str, question: str, answer: str) -> QAQuestion:
        start = ARTICLE.index(answer)
        return QAQuestion(qid, art.id, question, [answer], True, [(start, start + len(answer))])

    pool = [
        asked("a", "In what year did the Normans conquer England?", "1066"),
        asked("b", "Who founded the Kingdom of Sicily in 1130?", "Roger II"),
        asked("c", "Where was the first king crowned?", "Palermo"),
        QAQuestion("d", art.id, "What is not in the article?", [], False),  # no answer span: skipped
    ]
    made = synthetic_near_misses(pool, {art.id: art}, 10, random.Random(0))
    assert 1 <= len(made) <= 3
    originals = {q.qid: q.question for q in pool}
    for q in made:
        base, kind = q.qid.rsplit("-", 1)
        assert base in {"a", "b", "c"} and kind in ("entity", "number", "opposite", "negation")
        assert not q.answerable and q.answers == [] and q.spans == []
        assert q.question != originals[base] and q.article_id == art.id
    assert len(synthetic_near_misses(pool, {art.id: art}, 1, random.Random(0))) == 1


def test_fit_answer_keyword_messages_are_one_or_two_words_of_the_articles() -> None:
    from fit_answer import keyword_messages

    from index.evaluation.trainingdata import QAArticle

    arts = [QAArticle("normans", "Normans", ARTICLE), QAArticle("empty", "Empty", "A b.")]
    made = keyword_messages(arts, 50, random.Random(1))
    assert len(made) == 50
    text_words = ARTICLE.lower().replace(".", " ").replace(",", " ").split()
    words = set(text_words)
    long_words = re.findall(r"[a-z][a-z'-]{2,}", ARTICLE.lower())
    pairs = set(itertools.pairwise(long_words))
    lengths = set()
    for q in made:
        assert not q.answerable and q.answers == [] and q.question
        said = q.question.lower().split()
        lengths.add(len(said))
        assert all(w in words and len(w) >= 3 for w in said), q.question
        assert len(said) == 1 or tuple(said) in pairs  # neighbours among the text's longer words
    assert lengths == {1, 2}
    assert keyword_messages([QAArticle("x", "X", "A b.")], 5, random.Random(0)) == []  # no words: none
    assert keyword_messages([QAArticle("x", "X", "Hello.")], 5, random.Random(0)) == []  # one: none


def test_fit_answer_records_its_command_without_the_judge_dump() -> None:
    from fit_answer import recorded_args

    argv = ["--train", "T", "--dump-judge", "/tmp/j.npz", "--seed", "2", "--dump-judge=/tmp/k.npz"]
    assert recorded_args(argv) == ["--train", "T", "--seed", "2"]
    assert recorded_args(["--near-misses", "700"]) == ["--near-misses", "700"]
