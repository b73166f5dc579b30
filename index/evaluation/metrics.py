"""Answer-quality metrics, identical in rule to the project's scorer (`shared/eval/score.py`).

A quote *hits* when it contains a gold answer as whole words after case folding and whitespace
collapsing; overall accuracy counts answerable questions hit and unanswerable ones declined.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

_WS = re.compile(r"\s+")
# The shipped suite of chat input that must never be answered with a quote (greetings, thanks,
# chit-chat, long messages, code, links, emoji, repeated words, commands, other languages).
ODD_INPUTS = Path(__file__).with_name("odd_inputs.jsonl")


def norm(s: str) -> str:
    return _WS.sub(" ", s).strip().casefold()


def contains_words(text: str, ans: str) -> bool:
    """`ans` occurs in `text`, not starting or ending inside a word (both normalised)."""
    i = text.find(ans)
    while i != -1:
        j = i + len(ans)
        left_ok = i == 0 or not (text[i - 1].isalnum() and ans[0].isalnum())
        right_ok = j == len(text) or not (text[j].isalnum() and ans[-1].isalnum())
        if left_ok and right_ok:
            return True
        i = text.find(ans, i + 1)
    return False


def hits(quote: str | None, answers: Iterable[str]) -> bool:
    if quote is None or not quote.strip():
        return False
    nq = norm(quote)
    return any(contains_words(nq, a) for a in (norm(x) for x in answers) if a)


@dataclass(frozen=True)
class Outcome:
    """One question's result: was it answerable, did we decline, did the quote hit, right article?"""

    answerable: bool
    declined: bool
    hit: bool
    article_ok: bool
    score: float | None


def metrics(outcomes: Sequence[Outcome]) -> dict[str, float]:
    ans = [o for o in outcomes if o.answerable]
    una = [o for o in outcomes if not o.answerable]

    def frac(a: int, b: int) -> float:
        return a / b if b else math.nan

    m = {
        "hit@1": frac(sum(o.hit for o in ans), len(ans)),
        "article@1": frac(sum(o.article_ok for o in ans), len(ans)),
        "decline_unans": frac(sum(o.declined for o in una), len(una)),
        "decline_ans": frac(sum(o.declined for o in ans), len(ans)),
        "acc": frac(sum(o.hit for o in ans) + sum(o.declined for o in una), len(outcomes)),
    }
    return m


def best_threshold(
    probs: Sequence[float], answerable: Sequence[bool], hit: Sequence[bool]
) -> tuple[float, float]:
    """The threshold t (quote iff p >= t) that maximises accuracy, and that accuracy.

    Ties keep the higher threshold, as score.py does.
    """
    n = len(probs)
    order = sorted(range(n), key=lambda i: -probs[i])
    correct = sum(1 for a in answerable if not a)  # t = +inf: everything declined
    best_t, best_c = math.inf, correct
    i = 0
    while i < n:
        p = probs[order[i]]
        while i < n and probs[order[i]] == p:
            k = order[i]
            if answerable[k]:
                correct += 1 if hit[k] else 0
            else:
                correct -= 1
            i += 1
        if correct > best_c:
            best_t, best_c = p, correct
    return best_t, best_c / n if n else math.nan


# -- answer phrases: the official SQuAD exact match and F1 ------------------------------------------

_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def squad_normalize(s: str) -> str:
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def exact_match(prediction: str, answers: Iterable[str]) -> float:
    p = squad_normalize(prediction)
    return float(any(p == squad_normalize(a) for a in answers))


def f1(prediction: str, answers: Iterable[str]) -> float:
    """The best token-overlap F1 of `prediction` against any gold answer (SQuAD's rule)."""
    best = 0.0
    pt = squad_normalize(prediction).split()
    for a in answers:
        gt = squad_normalize(a).split()
        common: dict[str, int] = {}
        for t in pt:
            common[t] = common.get(t, 0) + 1
        same = 0
        for t in gt:
            if common.get(t, 0) > 0:
                same += 1
                common[t] -= 1
        if same == 0:
            continue
        precision, recall = same / len(pt), same / len(gt)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best
