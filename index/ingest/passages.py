"""Sentences -> overlapping passages (windows of consecutive sentences), offsets kept."""

from __future__ import annotations

from index.types import PassageSpan


def make_passages(
    spans: list[tuple[int, int]], *, size: int = 4, overlap: int = 1, max_chars: int = 1500
) -> list[PassageSpan]:
    """Windows of up to `size` sentences (fewer if they would pass `max_chars`), each sharing
    `overlap` sentences with the previous one so that no sentence loses its context at a border."""
    if size < 1 or not 0 <= overlap < size:
        raise ValueError("need size >= 1 and 0 <= overlap < size")
    out: list[PassageSpan] = []
    i, n = 0, len(spans)
    while i < n:
        j = i
        while j + 1 < n and j + 1 - i < size and spans[j + 1][1] - spans[i][0] <= max_chars:
            j += 1
        out.append(PassageSpan(i, j, spans[i][0], spans[j][1]))
        if j == n - 1:
            break
        i = max(i + 1, j + 1 - overlap)
    return out
