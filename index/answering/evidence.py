"""What the answer judge weighs beyond the ranking features: evidence for or against quoting the
best candidate sentence as the answer to a question.

SQuAD 2.0's unanswerable questions were written to look answerable: they reuse a sentence's words
but swap one ("men" for "women", "three" for "two", "imperfections" for "perfections"), negate or
flip a modifier ("least" for "most"), or ask about something the article never says. Most features
here look for exactly those traces; `index.answering.alignment` adds the contextual word-matching ones.
"""

from __future__ import annotations

import re
from itertools import pairwise

import numpy as np

from index.search.features import row as named_row
from index.search.lexical import terms
from index.search.questions import _DATE, _NUMBER, question_type
from index.search.shelf import Shelf

# Words whose absence from the answer sentence often means the question asks about something
# the text does not say (SQuAD 2.0's unanswerable questions flip exactly these).
_MODIFIERS = frozenset(
    [
        "least",
        "most",
        "first",
        "last",
        "only",
        "never",
        "not",
        "no",
        "none",
        "largest",
        "smallest",
        "highest",
        "lowest",
        "best",
        "worst",
        "before",
        "after",
        "earliest",
        "latest",
        "fewest",
        "minimum",
        "maximum",
        "less",
        "more",
        "fewer",
        "greater",
        "lesser",
        "longest",
        "shortest",
        "oldest",
        "youngest",
        "newest",
        "biggest",
        "main",
        "primary",
        "second",
        "third",
    ]
)
_PLAIN_TOKEN = re.compile(r"[a-z]+(?:'t)?")
_NEGATION = re.compile(r"\b(not|never|no|cannot|without|neither|nor|none)\b|n't", re.I)
_CAPITAL_WORD = re.compile(r"(?<!^)\b[A-Z][\w'-]+")
_NUMERAL = re.compile(r"\b\d[\d,.]*\b")

_WH = ("what", "which", "who", "when", "where", "why", "how")

EVIDENCE = (
    "full_coverage",  # every question term is in the sentence itself
    "bigram",  # share of the question's term bigrams found in the sentence
    "lex_prev",  # idf share of question terms in the previous sentence
    "lex_next",  # ... and in the next one
    "missing_share",  # share of question terms absent from sentence and neighbours
    "missing_unseen",  # idf of the rarest question term absent from the whole article / max idf
    "caps_missing",  # share of the question's capitalised words absent from sentence and neighbours
    "numbers_missing",  # share of the question's numbers absent from the sentence
    "negation_mismatch",  # one of question and sentence is negated, the other not
    "modifiers_missing",  # count of modifiers (least, first, never...) of the question absent nearby
    "any_modifier_missing",
    "caps_not_in_article",  # capitalised question words the article never mentions
    "caps_not_nearby",  # capitalised question words absent from sentence and neighbours (count)
    "q_number",
    "q_date",
    "q_person",
    "q_place",  # question type
    "q_negated",
    "q_terms",  # number of distinct question terms
    "affix_flip",  # a question word absent nearby whose negated / un-negated form is there (im-perfect)
    "antonym",  # a question word absent nearby whose opposite is there (men / women, north / south)
    "number_words_missing",  # numbers of the question, in digits or words, absent nearby (count)
    "quantifier_missing",  # all / some / only / never ... of the question absent nearby (count)
    "quantifier_extra",  # a limiting word nearby that the question lacks (not, only, some, never)
    "order_discord",  # share of question-term pairs that the sentence has in the other order
    "match_spread",  # how spread out the question's terms are in the sentence
    "words_missing",  # question words (not stems) absent from sentence and neighbours
    "missing_in_article",  # share of question terms absent nearby but present elsewhere in the article
    "second_same_article",  # the runner-up candidate is from the same article
    "second_adjacent",  # ... and is a neighbouring sentence
    "q_words",  # question length in words
    "answer_adjacent",  # what the question type asks for (a name, number, date) stands next to its words
    *(f"wh_first_{w}" for w in _WH),  # the question's first word
    *(f"wh_{w}" for w in _WH),  # any of its words
)


def judge_evidence(shelf: Shelf, question: str, row: int, runner_up: int | None = None) -> np.ndarray:
    """Evidence for or against quoting `row` as the answer; `runner_up` is the second-best candidate."""
    idf = shelf.bm25.idf
    max_idf = float(idf.max()) if len(idf) else 1.0

    def weight(t: str) -> float:
        j = shelf.vocab.ids.get(t)
        return float(idf[j]) if j is not None and j < len(idf) else max_idf

    qt = terms(question)
    qs = list(dict.fromkeys(qt))
    aid = int(shelf.article_ids[row])
    same = [r for r in (row - 1, row + 1) if 0 <= r < shelf.size and int(shelf.article_ids[r]) == aid]
    text = shelf.sentence_text(row)
    st = terms(text)
    prev = terms(shelf.sentence_text(row - 1)) if row - 1 in same else []
    nxt = terms(shelf.sentence_text(row + 1)) if row + 1 in same else []
    total = sum(weight(t) for t in qs) or 1.0
    ctx_terms = set(st) | set(prev) | set(nxt)
    missing = [t for t in qs if t not in ctx_terms]
    article = shelf.texts[aid]
    article_terms = shelf.article_terms(aid)
    bigrams = set(pairwise(qt))
    ctx_text = " ".join(shelf.sentence_text(r) for r in sorted([row, *same])).lower()
    ctx_tokens = set(_PLAIN_TOKEN.findall(ctx_text))
    mods = set(_PLAIN_TOKEN.findall(question.lower())) & _MODIFIERS
    caps = [c.lower() for c in _CAPITAL_WORD.findall(question)]
    cap_terms = [t[0] for t in (terms(c) for c in _CAPITAL_WORD.findall(question)) if t]
    numbers = _NUMERAL.findall(question)
    qtype = question_type(question)
    article_lower = article.lower()
    runner_up_here = runner_up is not None and int(shelf.article_ids[runner_up]) == aid
    values = {
        "full_coverage": float(bool(qs) and all(t in set(st) for t in qs)),
        "bigram": len(bigrams & set(pairwise(st))) / max(1, len(bigrams)),
        "lex_prev": sum(weight(t) for t in qs if t in set(prev)) / total,
        "lex_next": sum(weight(t) for t in qs if t in set(nxt)) / total,
        "missing_share": len(missing) / max(1, len(qs)),
        "missing_unseen": max((weight(t) for t in missing if t not in article_terms), default=0.0) / max_idf,
        "caps_missing": sum(1 for c in cap_terms if c not in ctx_terms) / len(cap_terms)
        if cap_terms
        else 0.0,
        "numbers_missing": sum(1 for x in numbers if x not in text) / len(numbers) if numbers else 0.0,
        "negation_mismatch": float(bool(_NEGATION.search(question)) != bool(_NEGATION.search(text))),
        "modifiers_missing": float(len(mods - ctx_tokens)),
        "any_modifier_missing": float(bool(mods - ctx_tokens)),
        "caps_not_in_article": float(sum(1 for c in caps if c not in article_lower)),
        "caps_not_nearby": float(sum(1 for c in caps if c not in ctx_text)),
        "q_number": float(qtype == "number"),
        "q_date": float(qtype == "date"),
        "q_person": float(qtype == "person"),
        "q_place": float(qtype == "place"),
        "q_negated": float(bool(_NEGATION.search(question))),
        "q_terms": float(len(qs)),
        **_swap_evidence(question, ctx_text, qs, st, ctx_terms, article_terms),
        "second_same_article": float(runner_up_here),
        "second_adjacent": float(runner_up_here and runner_up is not None and abs(runner_up - row) == 1),
        "q_words": float(len(question.split())),
        "answer_adjacent": _answer_adjacent(frozenset(qs), question, text, qtype),
        **_wh_evidence(question),
    }
    return named_row(EVIDENCE, values)


_WORD = re.compile(r"[a-z0-9]+")
_NEGATING_PREFIXES = frozenset(
    ["un", "in", "im", "il", "ir", "dis", "non", "anti", "wo", "mis", "de", "counter"]
)
_OPPOSITES = (
    "men women|man woman|increase decrease|increased decreased|before after|more less|more fewer|larger smaller|"
    "largest smallest|first last|north south|east west|northern southern|eastern western|positive negative|"
    "major minor|maximum minimum|upper lower|high low|higher lower|highest lowest|inside outside|"
    "internal external|import export|imports exports|rise fall|gain loss|win lose|won lost|earliest latest|"
    "oldest youngest|older younger|early late|earlier later|start end|began ended|begin end|open close|"
    "opened closed|private public|old new|strong weak|stronger weaker|long short|longer shorter|"
    "longest shortest|best worst|better worse|above below|top bottom|left right|allowed banned|accept reject|"
    "accepted rejected|agree disagree|support oppose|supported opposed|male female|boys girls|father mother|"
    "son daughter|king queen|husband wife|always never|all some|many few|most least|cause prevent|add remove|"
    "added removed|from to|into out|heavier lighter|hot cold|warm cool|wet dry|rich poor|legal illegal|"
    "domestic foreign|ancient modern|success failure|successful unsuccessful|true false|same different|"
    "similar different|attack defend|buy sell|bought sold|lend borrow|inner outer|front back|full empty|"
    "part whole|slow fast|slower faster|cheap expensive"
)
_OPPOSITE: dict[str, set[str]] = {}
for _pair in _OPPOSITES.split("|"):
    _a, _b = _pair.split()
    _OPPOSITE.setdefault(_a, set()).add(_b)
    _OPPOSITE.setdefault(_b, set()).add(_a)


def opposites(word: str) -> frozenset[str]:
    """The opposites of a lower-case word that the near-miss evidence knows (north: south)."""
    return frozenset(_OPPOSITE.get(word, ()))


_NUMBER_WORDS = frozenset(
    [
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "hundred",
        "thousand",
        "million",
        "billion",
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "half",
        "single",
        "double",
        "triple",
    ]
)
_QUANTIFIERS = frozenset(
    [
        "all",
        "every",
        "some",
        "none",
        "only",
        "always",
        "never",
        "each",
        "any",
        "both",
        "neither",
        "either",
        "no",
        "not",
    ]
)
_LIMITING = frozenset(["not", "no", "never", "only", "some", "neither"])


def _swap_evidence(
    question: str,
    ctx_text: str,
    qs: list[str],
    st: list[str],
    ctx_terms: set[str],
    article_terms: frozenset[str],
) -> dict[str, float]:
    """Traces of a swapped, flipped or reordered word (see the module docstring)."""
    qw = _WORD.findall(question.lower())
    cw = set(_WORD.findall(ctx_text))
    absent = [w for w in qw if w not in cw and len(w) >= 2]
    flips = sum(
        1
        for w in absent
        for v in cw
        if v != w
        and (
            (v.endswith(w) and v[: -len(w)] in _NEGATING_PREFIXES)
            or (w.endswith(v) and w[: -len(v)] in _NEGATING_PREFIXES)
        )
    )
    opposites = sum(1 for w in absent if _OPPOSITE.get(w, set()) & cw)
    numbers = [w for w in qw if w in _NUMBER_WORDS or w.isdigit()]
    numbers_absent = sum(1 for w in numbers if w not in cw)
    quantifiers_absent = sum(1 for w in set(qw) & _QUANTIFIERS if w not in cw)
    limiting_extra = len((cw & _LIMITING) - set(qw))
    first_at: dict[str, int] = {}
    for i, t in enumerate(st):
        first_at.setdefault(t, i)
    seq = [first_at[t] for t in qs if t in first_at]
    pairs = [(i, j) for i in range(len(seq)) for j in range(i + 1, len(seq))]
    discord = sum(1 for i, j in pairs if seq[i] > seq[j]) / len(pairs) if pairs else 0.0
    spread = (max(seq) - min(seq) + 1) / len(seq) if seq else 0.0
    elsewhere = sum(1 for t in qs if t not in ctx_terms and t in article_terms) / max(1, len(qs))
    return {
        "affix_flip": float(flips > 0),
        "antonym": float(opposites > 0),
        "number_words_missing": float(numbers_absent),
        "quantifier_missing": float(quantifiers_absent),
        "quantifier_extra": float(limiting_extra),
        "order_discord": discord,
        "match_spread": spread,
        "words_missing": float(len(absent)),
        "missing_in_article": elsewhere,
    }


_SENTENCE_WORD = re.compile(r"[\w'’-]+")


def _answer_adjacent(
    qterms: frozenset[str], question: str, text: str, qtype: str | None, reach: int = 3
) -> float:
    """1 if a word of the kind the question asks for (a name for who/where, a number for how many,
    a date for when) stands within `reach` words of a question word (`qterms`: the question's terms)
    in the sentence, else 0; 0.5 when the question type is unknown."""
    if qtype is None:
        return 0.5
    qwords = {w.lower() for w in _SENTENCE_WORD.findall(question)}
    words = _SENTENCE_WORD.findall(text)
    matched = [i for i, w in enumerate(words) if (t := terms(w)) and t[0] in qterms]
    if not matched:
        return 0.0

    def fits(i: int, w: str) -> bool:
        if w.lower() in qwords:
            return False
        if qtype == "number":
            return bool(_NUMBER.search(w))
        if qtype == "date":
            return bool(_DATE.search(w))
        return i > 0 and w[:1].isupper()  # person / place: a capitalised word, not the first

    near = {j for i in matched for j in range(max(0, i - reach), min(len(words), i + reach + 1))}
    return float(any(fits(j, words[j]) for j in near))


def _wh_evidence(question: str) -> dict[str, float]:
    words = question.lower().split()
    first = words[0] if words else ""
    return {
        **{f"wh_first_{w}": float(first == w) for w in _WH},
        **{f"wh_{w}": float(w in words) for w in _WH},
    }
