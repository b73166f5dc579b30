"""Shelf rows -> the `Quote` values users see: the exact sentence (a slice of its article's text),
its article, its PDF page, and the nearest passages a decline offers instead."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable

import numpy as np

from index.search.shelf import Shelf
from index.types import ArticleRef, Quote


class Quotes:
    """`page_starts(collection, article_id)`: a PDF article's page start offsets (cached by the caller)."""

    def __init__(self, page_starts: Callable[[str, int], list[int]]) -> None:
        self._page_starts = page_starts

    def refs(self, shelf: Shelf, rows: Iterable[int]) -> dict[int, ArticleRef]:
        ids = {int(shelf.article_ids[r]) for r in rows}
        return {i: ArticleRef(i, shelf.titles[i], *shelf.refs.get(i, (None, None))) for i in ids}

    def quote(self, shelf: Shelf, row: int, score: float, refs: dict[int, ArticleRef]) -> Quote:
        aid = int(shelf.article_ids[row])
        ref = refs.get(aid) or self.refs(shelf, [row])[aid]
        refs[aid] = ref
        start, end = int(shelf.starts[row]), int(shelf.ends[row])
        return Quote(shelf.texts[aid][start:end], ref, start, end, score, page=self._page(shelf, aid, start))

    def related(self, shelf: Shelf, qvec: np.ndarray, refs: dict[int, ArticleRef]) -> list[Quote]:
        scores, ids = shelf.passages.search(qvec, 3)
        out = []
        for sc, cid in zip(scores[0].tolist(), ids[0].tolist(), strict=True):
            rows = shelf.passage_sentences(cid)
            if not rows:
                continue
            aid = int(shelf.article_ids[rows[0]])
            if aid not in refs:
                refs.update(self.refs(shelf, [rows[0]]))
            start, end = int(shelf.starts[rows[0]]), int(shelf.ends[rows[-1]])
            out.append(
                Quote(
                    shelf.texts[aid][start:end],
                    refs[aid],
                    start,
                    end,
                    float(sc),
                    page=self._page(shelf, aid, start),
                )
            )
        return out

    def _page(self, shelf: Shelf, article_id: int, start: int) -> int | None:
        """The 1-based PDF page holding offset `start` (None for other kinds)."""
        pages = self._page_starts(shelf.collection, article_id)
        return bisect.bisect_right(pages, start) if pages else None


def whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """`text[start:end]` widened so that it neither starts nor ends inside a word: the reader marks
    word pieces, and a phrase cut at one ("**Ecuador**ian", "two-**third**s") is not a phrase. A word
    here is letters and digits, also joined by a hyphen, an apostrophe, a point, a slash or a colon
    between two of them ("two-thirds", "King's", "3.5", "19:30")."""

    def inside(i: int) -> bool:  # is there a word boundary at i, or are we in the middle of one?
        if i <= 0 or i >= len(text):
            return False
        a, b = text[i - 1], text[i]
        if a.isalnum() and b.isalnum():
            return True
        if b in _JOINERS and a.isalnum():
            return i + 1 < len(text) and text[i + 1].isalnum()
        if a in _JOINERS and b.isalnum():
            return i - 2 >= 0 and text[i - 2].isalnum()
        return False

    while inside(start):
        start -= 1
    while inside(end):
        end += 1
    return start, end


_JOINERS = frozenset("-'’./:")
