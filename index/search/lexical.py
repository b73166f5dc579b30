"""Lexical matching: tokenising, a light stemmer, and a BM25 index over sentences (scipy sparse).

Portable across SQL engines (it lives in memory, built from the stored text), append-only
friendly (new rows and new terms extend the matrix), and vectorised for many questions at once.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "being",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "for",
        "from",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "ours",
        "she",
        "should",
        "so",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "too",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "whose",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "also",
        "about",
        "after",
        "again",
        "against",
        "all",
        "am",
        "any",
        "because",
        "before",
        "below",
        "between",
        "both",
        "during",
        "each",
        "few",
        "further",
        "here",
        "just",
        "more",
        "most",
        "no",
        "nor",
        "not",
        "now",
        "off",
        "once",
        "only",
        "other",
        "out",
        "over",
        "own",
        "same",
        "some",
        "such",
        "through",
        "under",
        "until",
        "up",
        "very",
        "s",
        "t",
        "don",
        "ve",
        "ll",
        "re",
        "d",
        "m",
        "o",
        "y",
        "did",
        "name",
        "named",
        "called",
        "many",
        "much",
        # Words for whoever wrote the text ("What does the author recommend?", "Where does the
        # poster live?"): a member asks about a post or review in the third person, while the
        # text says "I"; as terms they would only be question words the text never contains.
        "author",
        "authors",
        "writer",
        "writers",
        "poster",
        "posters",
        "reviewer",
        "reviewers",
        "commenter",
        "commenters",
        "narrator",
        "redditor",
        "redditors",
        "blogger",
        "bloggers",
    ]
)

# Irregular verb forms -> their base, so "Who leads ...?" meets "... led by ..." (a light stemmer
# cannot see these).
_IRREGULAR = {
    w: base
    for base, forms in {
        "lead": "led leads",
        "write": "wrote written writes",
        "begin": "began begun begins",
        "build": "built builds",
        "make": "made makes",
        "find": "found finds",
        "fight": "fought fights",
        "win": "won wins",
        "give": "gave given gives",
        "take": "took taken takes",
        "bring": "brought brings",
        "buy": "bought buys",
        "think": "thought thinks",
        "teach": "taught teaches",
        "catch": "caught",
        "seek": "sought seeks",
        "hold": "held holds",
        "tell": "told tells",
        "sell": "sold sells",
        "leave": "left leaves",
        "keep": "kept keeps",
        "meet": "met meets",
        "pay": "paid pays",
        "say": "said says",
        "see": "saw seen sees",
        "go": "went gone goes",
        "come": "came comes",
        "become": "became becomes",
        "know": "knew known knows",
        "grow": "grew grown grows",
        "throw": "threw thrown",
        "draw": "drew drawn",
        "fly": "flew flown flies",
        "rise": "rose risen rises",
        "drive": "drove driven drives",
        "choose": "chose chosen",
        "speak": "spoke spoken speaks",
        "break": "broke broken breaks",
        "steal": "stole stolen",
        "freeze": "froze frozen",
        "fall": "fell fallen falls",
        "eat": "ate eaten",
        "lose": "lost loses",
        "send": "sent sends",
        "spend": "spent spends",
        "lend": "lent",
        "feel": "felt feels",
        "run": "ran runs",
        "sit": "sat",
        "stand": "stood stands",
        "understand": "understood",
        "hear": "heard hears",
        "sing": "sang sung",
        "swim": "swam swum",
        "strike": "struck strikes",
        "die": "died dies",
        "lie": "lay lain lies",
        "shoot": "shot shoots",
        "bear": "bore born borne",
        "forbid": "forbade forbidden",
        "slay": "slew slain",
        "shake": "shook shaken",
        "wear": "wore worn",
        "tear": "tore torn",
    }.items()
    for w in forms.split()
}

_SUFFIXES = ("ingly", "edly", "ings", "ing", "ies", "ied", "ed", "es", "ly", "s")


def stem(word: str) -> str:
    """A deliberately light suffix stripper: 'covered' ~ 'cover', 'nations' ~ 'nation'."""
    if word in _IRREGULAR:
        word = _IRREGULAR[word]
    if len(word) <= 3 or word.isdigit():
        return word
    for suf in _SUFFIXES:
        if word.endswith(suf) and len(word) - len(suf) >= 3:
            base = word[: -len(suf)]
            if suf in ("ies", "ied"):
                return base + "y"
            if suf == "s" and word.endswith("ss"):
                return word
            if len(base) > 3 and base[-1] == base[-2] and base[-1] not in "lsz":
                base = base[:-1]  # 'stopped' -> 'stop'
            return base
    if word.endswith("e") and len(word) >= 4:
        return word[:-1]  # 'fire' ~ 'fired' -> 'fir', 'produce' ~ 'produced'
    return word


def _fold(text: str) -> str:
    text = text.casefold()
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c))


def terms(text: str) -> list[str]:
    """Content terms of `text`: case- and accent-folded, stemmed, without stopwords."""
    out = []
    for w in _WORD.findall(_fold(text)):
        w = w.replace("’", "'")
        if w.endswith("'s"):
            w = w[:-2]
        w = w.replace("'", "")
        if w and w not in STOPWORDS:
            out.append(stem(w))
    return out


class Vocabulary:
    """term -> column id; grows as new text arrives."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, term: str) -> int:
        i = self.ids.get(term)
        if i is None:
            i = self.ids[term] = len(self.ids)
        return i

    def lookup(self, toks: Iterable[str]) -> list[int]:
        return [i for t in toks if (i := self.ids.get(t)) is not None]


def term_matrix(token_lists: Sequence[Sequence[str]], vocab: Vocabulary) -> sp.csr_matrix:
    """Rows of term counts over `vocab` (which grows to cover every token)."""
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for toks in token_lists:
        counts: dict[int, int] = {}
        for t in toks:
            j = vocab.add(t)
            counts[j] = counts.get(j, 0) + 1
        indices.extend(counts)
        data.extend(counts.values())
        indptr.append(len(indices))
    return sp.csr_matrix(
        (np.asarray(data, np.float32), np.asarray(indices, np.int64), np.asarray(indptr, np.int64)),
        shape=(len(token_lists), max(1, len(vocab))),
    )


class BM25:
    """Okapi BM25 over rows of a term-count matrix."""

    def __init__(self, counts: sp.csr_matrix, k1: float = 1.2, b: float = 0.75) -> None:
        self.counts = counts.tocsr()
        n = self.counts.shape[0]
        self.n = n
        df = np.bincount(self.counts.indices, minlength=self.counts.shape[1]).astype(np.float64)
        self.idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        lengths = np.asarray(self.counts.sum(axis=1)).ravel()
        avg = float(lengths.mean()) if n else 1.0
        norm = k1 * (1 - b + b * lengths / max(avg, 1e-9))
        tf = self.counts.copy().astype(np.float32)
        # tf * (k1 + 1) / (tf + norm_row), done on the sparse data in place
        row_of = np.repeat(np.arange(n), np.diff(tf.indptr))
        tf.data = tf.data * (k1 + 1) / (tf.data + norm[row_of].astype(np.float32))
        self.weights = tf.tocsc()
        self.lengths = lengths.astype(np.float32)  # terms per row

    def scores(self, term_ids: Sequence[int]) -> np.ndarray:
        """BM25 score of every row for a question's term ids."""
        cols = sorted({j for j in term_ids if j < self.counts.shape[1]})
        if not cols or self.n == 0:
            return np.zeros(self.n, np.float32)
        sub = self.weights[:, cols]
        return np.asarray(sub @ self.idf[cols]).ravel().astype(np.float32)
