"""Exact text (issue 13): files and pastes are stored as given; only scraped web pages lose furniture,
and what the filter drops is reported in Document.dropped."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from index.embedding import FakeEmbedder
from index.ingest.extract import extract
from index.library import Library
from index.settings import LibrarySettings
from index.types import Document
from tests.index.test_extract import HTML, SAMPLE, make_pdf

# A server-rules paste whose lines look like page furniture to the web-page filter; it lost 5 of 7.
RULES = (
    "Welcome to the Example Guild server\n"
    "Click here to verify your account in #verify before you can post anywhere else.\n"
    "Subscribe to the patch notes role in #roles to get pinged on every update.\n"
    "Share this server with friends, but never advertise other servers in DMs.\n"
    "Follow us on Twitter for outage announcements.\n"
    "© Example Guild artwork may not be reposted without asking a moderator.\n"
    "Be kind: no harassment, slurs or hate speech, ever.\n"
)


def only(documents: list[Document]) -> Document:
    assert len(documents) == 1
    return documents[0]


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [("pasted.txt", None), (None, "text/plain"), ("rules.text", None), (None, None)],
)
def test_a_pasted_rules_text_is_stored_byte_for_byte(filename: str | None, content_type: str | None) -> None:
    document = only(extract(RULES.encode(), filename=filename, content_type=content_type))
    assert document.kind == "text"
    assert document.text == RULES
    assert document.dropped == ()
    assert document.normalised is None
    assert document.title == "Welcome to the Example Guild server"  # taken from, not cut out of, the text


def test_plain_text_keeps_spacing_tabs_controls_and_unicode_exactly() -> None:
    raw = "  Indented\ttext with  two spaces.  \n\n\n\nCafe\u0301 \u200bzero-width, bell\x07 and NBSP\xa0here.\n   "
    document = only(extract(raw.encode(), filename="a.txt"))
    assert document.text == raw  # no NFC, no collapsing, no stripping
    assert document.normalised is None


def test_crlf_and_a_bom_are_the_only_changes_and_they_are_recorded() -> None:
    data = codecs.BOM_UTF8 + RULES.replace("\n", "\r\n").encode()
    document = only(extract(data, filename="rules.txt"))
    assert document.text == RULES
    assert document.normalised is not None
    assert "byte order mark" in document.normalised and "CRLF" in document.normalised
    utf16 = only(extract(RULES.encode("utf-16"), filename="rules.txt"))
    assert utf16.text == RULES and utf16.normalised == "the leading byte order mark removed"


def test_replaced_bad_bytes_are_recorded() -> None:
    data = ("An ordinary sentence about the weather today. " * 50).encode() + b"\xff"
    document = only(extract(data, filename="a.txt"))
    assert document.text.endswith("\ufffd")
    assert document.normalised == "1 undecodable byte sequence replaced with U+FFFD"


def test_a_web_page_saved_as_text_is_recognised_and_its_furniture_reported() -> None:
    """The sample article is a page saved as text: two template lines ("JUST IN:", a comment form)
    mark it, so its furniture is dropped and listed; asked for exact text, every line stays."""
    raw = SAMPLE.read_bytes()
    scraped = only(extract(raw, filename=SAMPLE.name))
    assert "Hancock" not in scraped.text and "Please enter" not in scraped.text
    assert any(line.startswith("JUST IN") for line in scraped.dropped)
    assert all(line not in scraped.text for line in scraped.dropped)
    exact = only(extract(raw, filename=SAMPLE.name, detect_scraped=False))
    assert exact.text == raw.decode("utf-8").replace("\r\n", "\n")
    assert "JUST IN:\xa0Hancock snubbing voters" in exact.text and exact.dropped == ()
    # One template-like line alone is not enough: a text someone wrote stays exact.
    one = "Our rules.\nPlease enter your name in the sign-up sheet.\nBe kind.\n"
    assert only(extract(one.encode(), filename="notes.txt")).text == one


def test_html_furniture_is_dropped_and_reported() -> None:
    document = only(extract(HTML.encode(), filename="bridge.html"))
    assert "READ MORE: Mayor unveils plan for cycle lanes" in document.dropped
    assert "READ MORE" not in document.text


def test_markdown_and_pdf_lines_are_not_treated_as_furniture() -> None:
    markdown = only(extract(b"# Rules\n\nClick here to verify your account in #verify.\n", filename="r.md"))
    assert "Click here to verify your account in #verify." in markdown.text
    assert markdown.dropped == ()
    pdf = only(
        extract(
            make_pdf(
                [["Guild Handbook", "Subscribe to the patch notes role for updates.", "Be kind always."]]
            ),
            filename="h.pdf",
        )
    )
    assert "Subscribe to the patch notes role for updates." in pdf.text
    assert pdf.dropped == ()


def test_a_paste_through_the_library_is_quoted_from_the_exact_text(tmp_path: Path) -> None:
    lib = Library(LibrarySettings(data_dir=tmp_path, threshold=0.0), embedder=FakeEmbedder())
    try:
        result = lib.add_text("g", RULES)
        _, stored = lib.article_text("g", result.article.id)
        assert stored == RULES
        answer = lib.ask("g", "How do I verify my account?")
        for quote in [answer.quote, answer.best, *answer.alternatives]:
            if quote is not None:
                assert stored[quote.start : quote.end] == quote.text
    finally:
        lib.close()
