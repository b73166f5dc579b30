"""PDF page numbers (issue 13): Document.pages holds the offset where each page starts in the text."""

from __future__ import annotations

from bisect import bisect_right

from index.ingest.extract import extract
from index.ingest.sentences import split_sentences
from tests.index.test_extract import PDF_PAGES, make_pdf

THREE_PAGES = [
    ["Field Guide", "Owls hunt at night and sleep through most of the day."],
    ["Herons wade in shallow water and wait for fish to pass."],
    [],  # a blank page
    ["Swifts spend almost their whole lives in the air, even sleeping on the wing."],
]


def page_of(pages: tuple[int, ...], offset: int) -> int:
    return bisect_right(pages, offset)  # 1-based page number


def test_each_sentence_finds_its_page_by_bisecting_its_start() -> None:
    [document] = extract(make_pdf(THREE_PAGES), filename="guide.pdf")
    assert document.title == "Field Guide"
    text, pages = document.text, document.pages
    assert len(pages) == 4 and pages[0] == 0
    assert list(pages) == sorted(pages)
    found = {text[start:end]: page_of(pages, start) for start, end in split_sentences(text)}
    assert found == {
        "Owls hunt at night and sleep through most of the day.": 1,
        "Herons wade in shallow water and wait for fish to pass.": 2,
        "Swifts spend almost their whole lives in the air, even sleeping on the wing.": 4,
    }
    assert pages[2] == pages[3] == text.index("Swifts")  # the blank page starts where page 4 does


def test_the_helpers_two_page_pdf_starts_page_two_at_its_paragraph() -> None:
    [document] = extract(make_pdf(PDF_PAGES), filename="study.pdf")
    assert document.pages == (0, document.text.index("The second page begins"))


def test_a_word_hyphenated_across_pages_starts_page_two_mid_word() -> None:
    pages = [
        ["Notes", "The committee discussed the long-awaited infor-"],
        ["mation policy at length before agreeing on it."],
    ]
    [document] = extract(make_pdf(pages), filename="notes.pdf")
    assert "the long-awaited information policy" in document.text
    assert document.text[document.pages[1] :].startswith("mation policy")


def test_a_metadata_title_keeps_the_first_line_and_the_offsets() -> None:
    [document] = extract(make_pdf(THREE_PAGES, title="Birds of the Marsh"), filename="guide.pdf")
    assert document.title == "Birds of the Marsh"
    assert document.text.startswith("Field Guide\n\nOwls hunt")
    assert document.text[document.pages[1] :].startswith("Herons wade")


def test_other_kinds_have_no_pages() -> None:
    [document] = extract(b"Just text here.\n", filename="a.txt")
    assert document.pages == ()
