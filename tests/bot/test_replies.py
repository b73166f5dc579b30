"""replies: pure Answer -> text/embed functions within Discord's limits, with untrusted text made inert."""

from __future__ import annotations

import re
import urllib.parse

from hypothesis import given, settings
from hypothesis import strategies as st

from bot import replies
from index.answer import Answer, ArticleRef, Quote

REF = ArticleRef(1, "Rain & sun - a survey, 2024", "https://example.org/a-b?x=1&y=(2)", None)


def quote(text: str, ref: ArticleRef = REF) -> Quote:
    return Quote(text, ref, 0, len(text), 1.0)


def test_text_fragment_encodes_directive_characters() -> None:
    frag = replies.text_fragment("Rain, sun & wind - all at once.")
    assert frag == ":~:text=Rain%2C%20sun%20%26%20wind%20%2D%20all%20at%20once."
    long = " ".join(f"w{i}" for i in range(60))
    start, end = long.split()[:5], long.split()[-5:]
    assert replies.text_fragment(long) == ":~:text=" + "%20".join(start) + "," + "%20".join(end)


def test_source_link_points_at_the_sentence_without_preview() -> None:
    line = replies.source_line(REF, "It rained.")
    assert line.startswith("[Rain & sun") and "](<https://example.org/a-b?x=1&y=%282%29#:~:text=" in line
    assert "#:~:text=It%20rained." in line and "(2)" not in line
    assert replies.source_line(ArticleRef(2, "Notes", None, "notes.txt")) == "*Notes*"
    assert replies.source_line(ArticleRef(2, "Notes", "file:///etc/passwd", None)) == "*Notes*"


def test_confidence_labels() -> None:
    assert replies.confidence_label(0.87) == "High confidence (87%)"
    assert replies.confidence_label(0.5) == "Medium confidence (50%)"
    assert replies.confidence_label(0.31) == "Low confidence (31%)"


def test_long_quote_is_trimmed_to_a_prefix() -> None:
    sentence = "A " + "very " * 3000 + "long sentence."
    content = replies.answer_content(Answer("q?", quote(sentence), 0.9))
    assert len(content) <= replies.CONTENT_MAX
    first = content.split("\n")[0]
    assert first.startswith("> ") and first.endswith("…")
    assert sentence.startswith(first[2:-1])


def test_decline_lists_up_to_three_related() -> None:
    related = [quote(f"Passage {i} " + "x " * 800) for i in range(5)]
    content = replies.answer_content(Answer("q?", None, 0.1, related=related))
    assert content.startswith(replies.DECLINE) and "Possibly related:" in content
    assert content.count("> Passage") == 3 and len(content) <= replies.CONTENT_MAX


def test_decline_shows_the_closest_sentence_with_its_confidence() -> None:
    best = quote("Kirby is the spokesman.")
    related = [quote(f"Passage {i} " + "x " * 800) for i in range(5)]
    content = replies.answer_content(Answer("q?", None, 0.42, best=best, related=related))
    lines = content.split("\n")
    assert lines[0] == replies.DECLINE
    assert lines[1] == "The closest sentence I found (confidence 42%, too low to answer):"
    assert lines[2] == "> Kirby is the spokesman." and lines[3].startswith("— ")
    assert "Possibly related:" in content and content.count("> Passage") == 2
    assert len(content) <= replies.CONTENT_MAX
    # A far-off best candidate (an unrelated question) is not offered as the closest sentence.
    far = replies.answer_content(Answer("q?", None, 0.04, best=best, related=related))
    assert "closest" not in far and "Kirby" not in far and far.count("> Passage") == 3


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=3000), st.text(max_size=300))
def test_any_text_stays_inside_the_quote_and_pings_nobody(text: str, title: str) -> None:
    ref = ArticleRef(3, title, "https://example.org/p", None)
    answer = Answer("q?", quote(text, ref), 0.8, alternatives=[quote(text, ref)] * 6)
    content = replies.answer_content(answer)
    assert len(content) <= replies.CONTENT_MAX
    lines = content.split("\n")
    assert all(ln.startswith(">") for ln in lines[:-1]) and lines[-1].startswith("— ")
    assert not re.search(r"@(everyone|here)|<[@#/:t]", content)
    embed = replies.sources_embed(answer)
    assert len(embed) <= replies.EMBED_TOTAL_MAX and len(embed.fields) <= replies.EMBED_FIELDS_MAX
    assert all(len(f.value or "") <= replies.EMBED_FIELD_VALUE_MAX for f in embed.fields)
    assert all(len(f.name or "") <= replies.EMBED_FIELD_NAME_MAX for f in embed.fields)
    assert len(embed.title or "") <= replies.EMBED_TITLE_MAX


def test_fragment_round_trips() -> None:
    sentence = "Tomatoes need six hours of sun, water & care - daily."
    frag = replies.text_fragment(sentence)
    assert urllib.parse.unquote(frag.removeprefix(":~:text=")) == sentence
