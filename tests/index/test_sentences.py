"""The sentence splitter: hard cases, offsets into the original text, and invariants on any text."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from index.ingest.sentences import MAX_SENTENCE_CHARS, split_sentences


def sentences(text: str, **kw: int) -> list[str]:
    spans = split_sentences(text, **kw)
    return [text[s:e] for s, e in spans]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mr Kirby said so. He left.", ["Mr Kirby said so.", "He left."]),
        ("Mr. Smith went to Washington. He stayed.", ["Mr. Smith went to Washington.", "He stayed."]),
        ("She saw Dr. Jones today. It was fine.", ["She saw Dr. Jones today.", "It was fine."]),
        (
            "He served in the U.S. Army for years. Then he retired.",
            ["He served in the U.S. Army for years.", "Then he retired."],
        ),
        (
            "The author J. K. Rowling wrote it. It sold well.",
            ["The author J. K. Rowling wrote it.", "It sold well."],
        ),
        (
            "Growth was 3.5 percent last year. It fell later.",
            ["Growth was 3.5 percent last year.", "It fell later."],
        ),
        ("He paused... Then he spoke.", ["He paused...", "Then he spoke."]),
        ("Well… Okay then.", ["Well…", "Okay then."]),
        ("“Where?” he asked. Nobody knew.", ["“Where?” he asked.", "Nobody knew."]),
        ('"Why not?" she asked. Fine.', ['"Why not?" she asked.', "Fine."]),
        ("It was supplied “covertly”. He added more.", ["It was supplied “covertly”.", "He added more."]),
        (
            "He added: “We’re still monitoring this.” He left.",
            ["He added: “We’re still monitoring this.”", "He left."],
        ),
        ("The plan (which failed.) was bad. Next one.", ["The plan (which failed.) was bad.", "Next one."]),
        ("He left (finally). Then we ate.", ["He left (finally).", "Then we ate."]),
        ("(This is an aside.) The story goes on.", ["(This is an aside.)", "The story goes on."]),
        ("He lives at No. 5 Baker Street. It is old.", ["He lives at No. 5 Baker Street.", "It is old."]),
        (
            "Some fruits, e.g. apples, are red. Others are not.",
            ["Some fruits, e.g. apples, are red.", "Others are not."],
        ),
        ("We met at 3 p.m. yesterday. It rained.", ["We met at 3 p.m. yesterday.", "It rained."]),
        ("Is it true? Yes! Fine.", ["Is it true?", "Yes!", "Fine."]),
        (
            "A heading without a full stop\n\nThe first sentence. The second.",
            ["A heading without a full stop", "The first sentence.", "The second."],
        ),
        ("Water is H\n2\nO, and that is all. Done.", ["Water is H\n2\nO, and that is all.", "Done."]),
        ("A hard-wrapped line\nthat goes on. Next.", ["A hard-wrapped line\nthat goes on.", "Next."]),
        ("   Leading and trailing spaces.   \n", ["Leading and trailing spaces."]),
        ("", []),
        ("   \n\n \t ", []),
    ],
)
def test_hard_cases(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_offsets_point_into_the_original_text() -> None:
    text = "  Mr Kirby said the US knew.\n\n  “Covertly,” he said. It was 3.5 percent…  "
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "Mr Kirby said the US knew.",
        "“Covertly,” he said.",
        "It was 3.5 percent…",
    ]
    assert spans[0] == (2, 2 + len("Mr Kirby said the US knew."))
    assert text.index("“Covertly") == spans[1][0]


def test_paragraph_break_always_ends_a_sentence() -> None:
    text = "no full stop here\n\nand a lowercase paragraph"
    assert sentences(text) == ["no full stop here", "and a lowercase paragraph"]
    assert sentences("line one\n  \n\tline two") == ["line one", "line two"]


def test_a_very_long_sentence_is_cut_at_word_boundaries() -> None:
    words = [f"word{i % 97}" for i in range(1500)]
    text = " ".join(words) + "."
    assert len(text) > 10_000
    spans = split_sentences(text, max_chars=300)
    assert len(spans) > 1
    pieces = [text[s:e] for s, e in spans]
    assert all(len(p) <= 300 for p in pieces)
    for s, e in spans:
        assert s == 0 or text[s - 1] == " "  # starts at a word
        assert e == len(text) or text[e] == " "  # ends at a word
    # Nothing lost: the pieces are the words of the text, in order.
    assert " ".join(pieces).split() == text.split()


def test_default_max_chars_applies() -> None:
    text = ("lorem ipsum dolor sit amet, " * 400).strip()
    spans = split_sentences(text)
    assert all(e - s <= MAX_SENTENCE_CHARS for s, e in spans)
    assert len(spans) >= len(text) // MAX_SENTENCE_CHARS


_ALPHABET = st.sampled_from(
    [*list("ab AZ.?!…\"'“”’()[]\n\t;,0123456789"), "Mr.", "U.S.", " e.g. ", "\xa0", "\u2028"]
)
_TEXT = st.one_of(st.text(max_size=400), st.lists(_ALPHABET, max_size=200).map("".join))


@settings(max_examples=300, deadline=None)
@given(_TEXT, st.integers(min_value=5, max_value=200))
@example("a. b", 50)
@example("x" * 300, 10)
@example(" \n\n .\n\n ", 5)
def test_spans_are_ordered_trimmed_and_cover_the_text(text: str, max_chars: int) -> None:
    spans = split_sentences(text, max_chars=max_chars)
    prev_end = 0
    covered = [False] * len(text)
    for s, e in spans:
        assert 0 <= prev_end <= s < e <= len(text), (spans, text)
        assert not text[s].isspace() and not text[e - 1].isspace()
        assert e - s <= max_chars
        for i in range(s, e):
            covered[i] = True
        prev_end = e
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missing, (text, spans, missing)
