"""Synthetic near-miss questions for fitting the reader (scripts/fit_reader.py).

SQuAD 2.0's unanswerable questions are answerable ones with one thing changed: a name swapped for
another name of the article, a number changed, a word turned into its opposite, a negation added.
The sentence that answered the original still matches almost every word, but it no longer answers.
The training data hold few such questions (348, and the answer model's fit needs them), so the
reader learns the trap from SQuAD 1.1 questions changed the same ways: each changed question is
paired with the original's answering sentence as a negative.

    perturb(question, answer_sentence, article_text, rng) -> (kind, changed question) | None
"""

from __future__ import annotations

import random
import re

from index.answering.evidence import opposites

_TOKEN = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d[\d,.]*")
_CAPS = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*\b")
# A name inside a sentence (after a lower-case word or a comma), so not a capitalised first word.
_NAME = re.compile(r"(?<=[a-z,] )[A-Z][a-z]+(?: [A-Z][a-z]+)*\b")
# Opposites that are mostly function words or idioms in questions ("how many", "left for").
_NOT_SWAPPED = frozenset(
    {"to", "from", "into", "out", "many", "few", "left", "right", "back", "front", "part", "whole"}
)
_NUMBER = re.compile(r"\b\d[\d,.]*\d\b|\b\d\b")
_AUX = re.compile(r"\b(was|were|is|are|has|have|had|can|could|would|will)\b", re.I)
SWAPS = ("entity", "number", "opposite")  # tried first, in random order


def _swap_entity(question: str, sentence: str, article: str, rng: random.Random) -> str | None:
    """A capitalised name of the question that the sentence holds, replaced by another name of
    the article that neither the sentence nor the question holds."""
    found = [m for m in _CAPS.finditer(question) if m.start() > 0 and m.group() in sentence]
    if not found:
        return None
    m = rng.choice(found)
    pool = sorted({c for c in _NAME.findall(article) if c not in sentence and c not in question})
    same_size = [c for c in pool if len(c.split()) == len(m.group().split())]
    if not (same_size or pool):
        return None
    other = rng.choice(same_size or pool)
    return question[: m.start()] + other + question[m.end() :]


def _swap_number(question: str, sentence: str, article: str, rng: random.Random) -> str | None:
    """A number of the question replaced by one the sentence does not hold (another number of the
    article, or the same one moved)."""
    found = list(_NUMBER.finditer(question))
    if not found:
        return None
    m = rng.choice(found)
    pool = sorted({n for n in _NUMBER.findall(article) if n not in sentence and n != m.group()})
    if pool:
        other = rng.choice(pool)
    else:
        digits = m.group().replace(",", "")
        if not digits.isdigit():
            return None
        other = str(int(digits) + rng.choice([-3, -2, -1, 1, 2, 3, 10]))
        if other in sentence or int(other) < 0:
            return None
    return question[: m.start()] + other + question[m.end() :]


def _opposite(question: str, sentence: str, article: str, rng: random.Random) -> str | None:
    """A word of the question turned into its opposite (first -> last, north -> south), where the
    opposite is not in the sentence."""
    found = []
    for m in _TOKEN.finditer(question):
        w = m.group()
        if w.lower() in _NOT_SWAPPED:
            continue
        others = sorted(o for o in opposites(w.lower()) if o not in sentence.lower().split())
        if others:
            found.append((m, others))
    if not found:
        return None
    m, others = rng.choice(found)
    other = rng.choice(others)
    if m.group()[0].isupper():
        other = other.capitalize()
    return question[: m.start()] + other + question[m.end() :]


def _negate(question: str, sentence: str, article: str, rng: random.Random) -> str | None:
    """'Who was the first king?' -> 'Who was not the first king?': "not" after the question's first
    auxiliary (is, was, has, can...; not do/did, whose "not" belongs after the subject)."""
    m = _AUX.search(question)
    if m is None or m.start() == 0 or re.search(r"\b(not|never|no)\b", question, re.I):
        return None
    if re.search(r"\b(not|never|no)\b|n't\b", sentence, re.I):
        return None  # the sentence may itself say the negated thing
    return question[: m.end()] + " not" + question[m.end() :]


_MAKERS = {"entity": _swap_entity, "number": _swap_number, "opposite": _opposite, "negation": _negate}
KINDS = tuple(_MAKERS)  # every change perturb can make


def perturb(question: str, sentence: str, article: str, rng: random.Random) -> tuple[str, str] | None:
    """One changed question that `sentence` no longer answers, as (kind, text); None when no change
    applies. A swap (name, number, opposite; in random order) is preferred; failing all three, a
    negation, half of the time (it is the easiest to add, and the reader must not learn that
    "not" alone means no answer)."""
    kinds = list(SWAPS)
    rng.shuffle(kinds)
    if rng.random() < 0.5:
        kinds.append("negation")
    for kind in kinds:
        changed = _MAKERS[kind](question, sentence, article, rng)
        if changed and changed != question:
            return kind, changed
    return None
