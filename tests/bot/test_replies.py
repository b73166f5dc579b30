"""replies: pure Answer -> text/embed functions within Discord's limits, with untrusted text made inert."""

from __future__ import annotations

import re
import urllib.parse

from hypothesis import given, settings
from hypothesis import strategies as st

from bot import replies
from index.types import Answer, ArticleRef, Quote

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
    # A file is named by its path (it has no link); a paste by its title alone.
    assert replies.source_line(ArticleRef(2, "Notes", None, "docs/notes.txt")) == "*Notes* (docs/notes.txt)"
    assert replies.source_line(ArticleRef(2, "Rules", None, "paste:rules")) == "*Rules*"
    assert replies.source_line(ArticleRef(2, "Notes", "file:///etc/passwd", None)) == "*Notes*"


def test_a_pdf_quote_links_its_page() -> None:
    ref = ArticleRef(3, "Manual", "https://example.org/manual.pdf", "https://example.org/manual.pdf")
    line = replies.source_line(ref, "Press the red button.", page=4)
    assert line == "[Manual, page 4](<https://example.org/manual.pdf#page=4>)"
    assert (
        replies.source_line(ArticleRef(3, "Manual", None, "manual.pdf"), page=2)
        == "*Manual* (manual.pdf, page 2)"
    )


def test_confidence_labels() -> None:
    assert replies.confidence_label(0.87) == "High confidence (87%)"
    assert replies.confidence_label(0.5) == "Medium confidence (50%)"
    assert replies.confidence_label(0.31) == "Low confidence (31%)"


def test_long_quote_is_trimmed_to_a_prefix() -> None:
    sentence = "A " + "very " * 3000 + "long sentence."
    content = replies.answer_content(Answer("q?", quote(sentence), 0.9), show_question=False)
    assert len(content) <= replies.CONTENT_MAX
    first = content.split("\n")[0]
    assert first.startswith("> ") and first.endswith("…")
    assert sentence.startswith(first[2:-1])


def test_decline_is_one_line_and_more_sources_holds_the_passages() -> None:
    best = quote("Kirby is the spokesman.")
    related = [quote(f"Passage {i} " + "x " * 800) for i in range(5)]
    answer = Answer("q?", None, 0.42, best=best, related=related)
    assert replies.answer_content(answer, show_question=False) == replies.DECLINE
    assert replies.answer_content(answer) == "**Q:** q?\n" + replies.DECLINE
    embed = replies.sources_embed(answer)
    names = [f.name for f in embed.fields]
    assert names[0] == "Closest sentence (confidence 42%, too low to answer)"
    assert embed.fields[0].value.startswith("> Kirby is the spokesman.")  # type: ignore[union-attr]
    assert names[1:] == ["Possibly related: Rain & sun - a survey, 2024"] * 4  # five fields in all
    assert len(embed) <= replies.EMBED_TOTAL_MAX
    # The full decline (the CLI's view) still offers the closest sentence, only when near enough.
    full = replies.decline_content(answer)
    lines = full.split("\n")
    assert lines[0] == replies.DECLINE
    assert lines[1] == "The closest sentence I found (confidence 42%, too low to answer):"
    assert lines[2] == "> Kirby is the spokesman." and lines[3].startswith("— ")
    assert "Possibly related:" in full and full.count("> Passage") == 2
    assert len(full) <= replies.CONTENT_MAX
    far = replies.decline_content(Answer("q?", None, 0.04, best=best, related=related))
    assert "closest" not in far and "Kirby" not in far and far.count("> Passage") == 3


@settings(max_examples=150, deadline=None)
@given(
    st.text(min_size=1, max_size=3000),
    st.text(max_size=300),
    st.text(min_size=1, max_size=2500),
    st.tuples(st.integers(0, 3000), st.integers(0, 3000)),
)
def test_any_text_stays_inside_the_quote_and_pings_nobody(
    text: str, title: str, question: str, span: tuple[int, int]
) -> None:
    ref = ArticleRef(3, title, "https://example.org/p", None)
    lo, hi = sorted(min(x, len(text)) for x in span)
    q = Quote(text, ref, 0, len(text), 1.0, lo, hi) if lo < hi else quote(text, ref)
    answer = Answer(question, q, 0.8, alternatives=[quote(text, ref)] * 6)
    content = replies.answer_content(answer)
    assert len(content) <= replies.CONTENT_MAX
    lines = content.split("\n")
    assert lines[0].startswith("**Q:** ")  # the question is one neutralised line
    assert all(ln.startswith(">") for ln in lines[1:-1]) and lines[-1].startswith("— ")
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


# -- the answer phrase and the three replies ---------------------------------------------------------

KIRBY = "Speaking the explosives, National Security Council spokesman John Kirby said the shells arrived."


def kirby_quote(start: int = 100) -> Quote:
    a = start + KIRBY.index("John Kirby")
    return Quote(KIRBY, REF, start, start + len(KIRBY), 1.0, a, a + len("John Kirby"))


def test_answer_phrase_is_bold_and_question_is_shown() -> None:
    q = kirby_quote()
    assert q.answer_phrase == "John Kirby"
    text = replies.answer_content(Answer("Who is the NSC spokesman?", q, 0.8, q))
    first, second = text.split("\n")[:2]
    assert first == "**Q:** Who is the NSC spokesman?"
    assert (
        second
        == "> Speaking the explosives, National Security Council spokesman **John Kirby** said the shells arrived."
    )
    assert "High confidence (80%)" in text


def test_may_answer_is_marked_and_decline_is_not_a_quote() -> None:
    q = kirby_quote()
    may = replies.answer_content(Answer("Who spoke?", q, 0.38, q, confident=False))
    assert may.split("\n")[1] == "This may answer it (not sure, 38%):"
    assert "**John Kirby**" in may
    declined = replies.answer_content(Answer("Who spoke?", None, 0.05, q))
    assert declined.split("\n")[1] == replies.DECLINE and "**John Kirby**" not in declined


def test_bold_phrase_stays_inert_and_within_limits() -> None:
    """Markdown and mentions inside the phrase are escaped; a phrase the trim would cut is left plain."""
    text = "The winner was **@everyone** <@123> and then " + "more words " * 400
    a = text.index("**@everyone**")
    q = Quote(text, REF, 0, len(text), 1.0, a, a + len("**@everyone** <@123>"))
    out = replies.block_quote(text, 500, (a, a + len("**@everyone** <@123>")))
    assert len(out) <= 500
    assert "@everyone" not in out.replace("@\u200beveryone", "") and "<@123>" not in out
    assert out.count("**") == 2  # our bold pair only; the article's own asterisks are escaped
    late = len(text) - 5
    plain_out = replies.block_quote(text, 300, (late, len(text)))
    assert "**" not in plain_out.replace("\\*\\*", "")
    full = replies.answer_content(Answer("q", q, 0.9, q))
    assert len(full) <= replies.CONTENT_MAX


# -- control characters, bidi overrides, zero-width spaces (issue 16, item 11) -------------------------

# What must never reach Discord raw (replies insert their own zero-width spaces to break mentions, so
# U+200B is checked on the input side: a source's own ZWSP is dropped).
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff]")
HOSTILE = (
    "Evil \x1b[2J\x1b]0;title\x07 text \x00 \x9b31m \u202eesrever\u202c and \u2066iso\u2069 z\u200bw\ufeff."
)


def test_visible_escapes_controls_and_bidi_and_drops_zero_width() -> None:
    from bot.safe_text import visible

    assert visible("a\x1b[31mb") == "a\\x1b[31mb"
    assert visible("\u202eabc\u202c") == "\\u202eabc\\u202c"
    assert visible("\x00\x7f\x85\x9b") == "\\x00\\x7f\\x85\\x9b"
    assert visible("\u2066x\u2069 \u2028") == "\\u2066x\\u2069 \\u2028"
    assert visible("z\u200bw\u2060j\ufeff") == "zwj"
    assert visible("bad \udcff") == "bad \\udcff"
    assert visible("line\n\ttab\r") == "line\n\ttab\\x0d"
    assert visible("line\n\ttab", multiline=False) == "line\\x0a\\x09tab"
    # Ordinary text of every script is left alone, joiners included (emoji, Persian, Hindi).
    for ok in ("Café — naïve “quotes” …", "שלום עולם", "سلام\u200cدنیا", "👨\u200d👩\u200d👧", "हिन्दी"):
        assert visible(ok) == ok


def test_json_line_escapes_what_json_leaves_raw_and_round_trips() -> None:
    import json

    from bot.safe_text import json_line

    obj = {"t": HOSTILE + " \udcff", "n": 1}
    line = json_line(obj)
    assert not RAW_CONTROL.search(line) and "\u200b" not in line and "\udcff" not in line
    line.encode("utf-8")  # printable on any UTF-8 terminal: no lone surrogate left
    assert json.loads(line) == obj
    assert json_line({"x": "Café"}) == '{"x": "Café"}'  # non-ASCII text stays readable


def test_hostile_text_reaches_discord_neutralised() -> None:
    ref = ArticleRef(4, "Ti\x1btle \u202ereversed", "https://example.org/a", None)
    q = Quote(HOSTILE, ref, 0, len(HOSTILE), 1.0, 0, 4)
    answer = Answer("Why \x1b[5m?\u202e", q, 0.8, q, alternatives=[quote(HOSTILE, ref)])
    content = replies.answer_content(answer)
    assert not RAW_CONTROL.search(content), ascii(content)
    assert "\\x1b" in content and "\\u202e" in content  # shown, not hidden
    assert "z\u200bw" not in content
    declined = replies.answer_content(Answer("q", None, 0.42, best=q, related=[q]))
    assert not RAW_CONTROL.search(declined)
    embed = replies.sources_embed(answer)
    every = [embed.title or ""] + [f.name or "" for f in embed.fields] + [f.value or "" for f in embed.fields]
    assert not any(RAW_CONTROL.search(s) for s in every)
    shown = replies.article_embed(
        article_id=4,
        title=ref.title,
        url="file:///\x1b",
        n_sentences=1,
        n_passages=1,
        added_by="bob\x1b",
        created_at="now",
        excerpt=HOSTILE,
    )
    texts = [shown.title or "", shown.description or ""] + [f.value or "" for f in shown.fields]
    assert not any(RAW_CONTROL.search(s) for s in texts), texts
    listed = replies.articles_embed([(4, ref.title, 1, None)], page=0, pages=1, total=1)
    assert not RAW_CONTROL.search(listed.description or "")
    assert not RAW_CONTROL.search(replies.unanswered_content([(HOSTILE, False, 0, "now")]))
    # Line breaks still lay out a block quote, and \r\n is one break.
    assert replies.block_quote("one\r\ntwo", 100) == "> one\n> two"


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400), st.text(max_size=100))
def test_no_control_character_survives_any_reply(text: str, title: str) -> None:
    ref = ArticleRef(3, title, "https://example.org/p", None)
    answer = Answer(text or "q", quote(text or "x", ref), 0.8, alternatives=[quote(text or "x", ref)])
    assert not RAW_CONTROL.search(replies.answer_content(answer))
    assert not RAW_CONTROL.search(replies.plain(text, 300))
