"""Sentences -> overlapping passages: coverage, overlap, size limits and offsets."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.ingest.passages import PassageSpan, make_passages
from index.ingest.sentences import split_sentences

TEXT = " ".join(f"Sentence number {i} says something about topic {i % 5}." for i in range(23))


def spans_of(lengths: list[int], gap: int = 1) -> list[tuple[int, int]]:
    out, pos = [], 0
    for n in lengths:
        out.append((pos, pos + n))
        pos += n + gap
    return out


@pytest.mark.parametrize(("size", "overlap"), [(1, 0), (2, 1), (3, 0), (4, 1), (4, 2), (5, 4)])
def test_passages_cover_every_sentence_with_the_configured_overlap(size: int, overlap: int) -> None:
    spans = split_sentences(TEXT)
    assert len(spans) == 23
    passages = make_passages(spans, size=size, overlap=overlap)
    covered = sorted({i for p in passages for i in range(p.first, p.last + 1)})
    assert covered == list(range(len(spans)))
    assert passages[0].first == 0 and passages[-1].last == len(spans) - 1
    for p in passages:
        assert p.last - p.first + 1 <= size
    for a, b in itertools.pairwise(passages):
        assert b.first > a.first  # always moves forward
        assert a.last - b.first + 1 == overlap  # shares exactly `overlap` sentences


def test_offsets_match_the_sentence_offsets() -> None:
    spans = split_sentences(TEXT)
    for p in make_passages(spans, size=4, overlap=1):
        assert (p.start, p.end) == (spans[p.first][0], spans[p.last][1])
        assert TEXT[p.start : p.end].startswith(TEXT[slice(*spans[p.first])])
        assert TEXT[p.start : p.end].endswith(TEXT[slice(*spans[p.last])])


def test_max_chars_shrinks_windows() -> None:
    spans = spans_of([100] * 10)
    passages = make_passages(spans, size=4, overlap=1, max_chars=250)
    assert all(p.end - p.start <= 250 for p in passages)
    assert all(p.last - p.first + 1 == 2 for p in passages)
    assert {i for p in passages for i in range(p.first, p.last + 1)} == set(range(10))


def test_a_sentence_longer_than_max_chars_is_a_passage_of_its_own() -> None:
    spans = spans_of([50, 2000, 50])
    passages = make_passages(spans, size=4, overlap=1, max_chars=500)
    assert [(p.first, p.last) for p in passages] == [(0, 0), (1, 1), (2, 2)]


def test_edge_cases() -> None:
    assert make_passages([]) == []
    assert make_passages([(0, 5)]) == [PassageSpan(0, 0, 0, 5)]
    with pytest.raises(ValueError):
        make_passages([(0, 5)], size=2, overlap=2)
    with pytest.raises(ValueError):
        make_passages([(0, 5)], size=0, overlap=0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=400), max_size=40),
    st.integers(min_value=1, max_value=6),
    st.data(),
)
def test_passage_invariants(lengths: list[int], size: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(min_value=0, max_value=size - 1))
    max_chars = data.draw(st.integers(min_value=1, max_value=1500))
    spans = spans_of(lengths)
    passages = make_passages(spans, size=size, overlap=overlap, max_chars=max_chars)
    assert {i for p in passages for i in range(p.first, p.last + 1)} == set(range(len(spans)))
    for p in passages:
        assert (p.start, p.end) == (spans[p.first][0], spans[p.last][1])
        assert p.first == p.last or p.end - p.start <= max_chars
        assert p.last - p.first + 1 <= size
    for a, b in itertools.pairwise(passages):
        assert b.first > a.first and b.first <= a.last + 1
