"""What a question asks for (a number, a date, a person, a place) and the patterns that find such
things in text: used by the ranking features, the shelf's per-sentence facts and the judge's evidence."""

from __future__ import annotations

import re
from collections import Counter

_QTYPE_PATTERNS = (
    (
        "number",
        re.compile(
            r"\bhow (many|much|long|old|far|large|big|tall|high|deep|wide|often|fast|heavy|hot|cold|big)\b|"
            r"\bwhat (percentage|percent|number|amount|proportion|fraction|size|population|speed|temperature)\b|"
            r"\bhow (much|many)\b",
            re.I,
        ),
    ),
    (
        "date",
        re.compile(
            r"^\s*when\b|\bwhen (did|was|were|is|does|do|will|had|has)\b|"
            r"\b(what|which|in what|in which) (year|years|century|decade|date|month|day|era|period|time)\b|"
            r"\bhow long ago\b|\bsince when\b",
            re.I,
        ),
    ),
    (
        "person",
        re.compile(
            r"^\s*who\b|\bwho(m|se)?\b|\b(which|what) (person|people|man|woman|scientist|president|king|"
            r"queen|emperor|leader|author|writer|composer|artist|player|general|minister)\b",
            re.I,
        ),
    ),
    (
        "place",
        re.compile(
            r"^\s*where\b|\bwhere\b|\b(which|what) (country|city|state|region|place|continent|town|"
            r"river|island|location|area|province|nation)\b",
            re.I,
        ),
    ),
)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|"
    r"thousand|million|billion|trillion|dozen|half|third|quarter|several|many|few)\b",
    re.I,
)
_DATE = re.compile(
    r"\b(1\d{3}|20\d{2}|\d{1,2}(st|nd|rd|th) century|\d0s)\b|\b(january|february|march|april|may|june|july|august|"
    r"september|october|november|december|spring|summer|autumn|winter|century|decade|monday|tuesday|"
    r"wednesday|thursday|friday|saturday|sunday|year|years|ago|bc|ad|bce|ce)\b",
    re.I,
)
_CAPITALISED = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][\w'’-]+")


def question_type(question: str) -> str | None:
    for name, pat in _QTYPE_PATTERNS:
        if pat.search(question):
            return name
    return None


_WORDS = re.compile(r"\w+")


def said_over_and_over(text: str) -> bool:
    """A message that is one word or one phrase said over and over ("test test test", "why why
    why ...", "why is the sky blue why is the sky blue why is the sky blue"): at least three words,
    and one of them is 60% or more of all, or the words are one phrase three times or more in a
    row (a last copy may be cut short). No question of the training or dev sets reads like that."""
    words = [w.casefold() for w in _WORDS.findall(text)]
    n = len(words)
    if n < 3:
        return False
    if Counter(words).most_common(1)[0][1] >= 0.6 * n:
        return True
    return any(all(words[i] == words[i % p] for i in range(p, n)) for p in range(2, n // 3 + 1))
