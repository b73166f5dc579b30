"""Tests for index.ingest.extract: every input format, page furniture, and every way input can be bad."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pypdf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.errors import InputError, QuotebotError, UnsupportedFormat
from index.ingest.extract import clean_plain_text, extract
from index.types import Document

SAMPLE = Path("/work/shared/articles/north-korea-artillery-shells.txt")
SAMPLE_TITLE = "North Korea supplying Putin with deadly weapons for use in Ukraine, warns White House"


def make_pdf(pages: list[list[str]], *, title: str | None = None) -> bytes:
    """A minimal, valid PDF with one text line per string (Helvetica, 14 pt leading)."""

    def escape(line: str) -> str:
        return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    page_count = len(pages)
    page_ids = [4 + 2 * i for i in range(page_count)]
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % i for i in page_ids)
        + b"] /Count %d >>" % page_count,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for page_id, lines in zip(page_ids, pages, strict=True):
        shown = " T* ".join(f"({escape(line)}) Tj" for line in lines)
        stream = f"BT /F1 11 Tf 14 TL 72 760 Td {shown} ET".encode("latin-1") if lines else b""
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (page_id + 1)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info_id = None
    if title is not None:
        objects.append(b"<< /Title (" + escape(title).encode("latin-1") + b") >>")
        info_id = len(objects)

    return pdf_from_objects(objects, info_id)


def pdf_from_objects(objects: list[bytes], info_id: int | None = None) -> bytes:
    """A PDF file of numbered objects (1 = the catalog), with its cross-reference table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    trailer = b"<< /Size %d /Root 1 0 R" % (len(objects) + 1)
    if info_id is not None:
        trailer += b" /Info %d 0 R" % info_id
    out.write(b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def encrypt_pdf(pdf: bytes, user_password: str) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def only(documents: list[Document]) -> Document:
    assert len(documents) == 1
    return documents[0]


# ------------------------------------------------------------------------------------------ plain text


def test_sample_article_scraped_keeps_the_story_and_drops_the_furniture() -> None:
    # A web page saved as text: plain text is stored as given unless the caller says it was scraped.
    document = only(extract(SAMPLE.read_bytes(), filename=SAMPLE.name, scraped=True))

    assert document.title == SAMPLE_TITLE
    assert document.kind == "text"
    text = document.text
    assert not text.startswith(SAMPLE_TITLE)
    assert text.startswith("North Korea is shipping “significant” quantities of artillery shells")
    assert "Speaking the explosives, National Security Council spokesman John Kirby said" in text
    assert "Mr Kirby said the US has “an idea” of which country" in text
    assert "Mr Kirby explained: “We don’t believe that they are in such a quantity" in text
    assert text.endswith("largest disaster in years.")
    for furniture in (
        "JUST IN",
        "Hancock",
        "Previous article",
        "Next article",
        "UK snow",
        "Raducanu",
        "Please enter",
    ):
        assert furniture not in text
    # Whitespace: no indentation, no NBSP, paragraphs separated by exactly one blank line.
    assert "\xa0" not in text
    assert "\n\n\n" not in text
    assert all(line == line.strip() for line in text.split("\n"))
    assert "\n\nHe refused to offer a specific estimate" in text


def test_clean_plain_text_title_rules() -> None:
    assert clean_plain_text("A Short Headline\n\nThe body sentence.") == (
        "A Short Headline",
        "The body sentence.",
    )
    # A first line that is a sentence is body text, not a title.
    assert clean_plain_text("This is a sentence.\nAnother one.") == (
        None,
        "This is a sentence.\nAnother one.",
    )
    assert clean_plain_text("x" * 201 + "\nbody") == (None, "x" * 201 + "\nbody")
    # A lone line is kept as text rather than becoming a title over an empty body.
    assert clean_plain_text("Just one line") == (None, "Just one line")


def test_clean_plain_text_whitespace_and_control_characters() -> None:
    raw = "Title\r\n\r\n\r\n\r\n   First\tparagraph\x07 here.  \r\n\r\n\r\nSecond\u200b one.\u202e\n"
    title, text = clean_plain_text(raw)
    assert title == "Title"
    assert text == "First paragraph here.\n\nSecond one."
    # NFC: a decomposed é becomes one code point.
    assert clean_plain_text("Cafe\u0301 life is good.")[1] == "Café life is good."


@pytest.mark.parametrize(
    "line",
    [
        "READ MORE: Boris Johnson news",
        "Read more",
        "Related articles",
        "BREAKING: Something else happened",
        "Previous articleSomething",
        "Next article Another thing",
        "Please enter your email address here",
        "Leave a Reply",
        "Sign up to our free newsletter",
        "Subscribe to our newsletter",
        "Share this article",
        "Click here to find out more",
        "Follow us on Twitter",
        "Advertisement",
        "Sponsored",
        "We use cookies to improve your experience",
        "© 2024 Daily Example. All rights reserved.",
        "Copyright © Example Media",
        "Photo: Reuters",
        "Image: Getty",
        "(Image: Getty Images)",
        "AFP via Getty Images",
    ],
)
def test_furniture_lines_are_dropped(line: str) -> None:
    raw = f"Headline\n\nThe first real sentence.\n\n{line}\n\nThe last real sentence."
    assert clean_plain_text(raw)[1] == "The first real sentence.\n\nThe last real sentence."


@pytest.mark.parametrize(
    "line",
    [
        "Read more books, the minister urged parents on Tuesday.",
        "Advertisement revenue fell by a fifth last year.",
        "Sponsored by the council, the fair drew 10,000 visitors.",
        "Copyright law was changed in 2019 to cover memes.",
        "He sold the picture to Getty Images for a small fee.",
        "The next article of the treaty deals with fishing rights.",
        "Share prices fell sharply on the news.",
        "Continue reading the instructions carefully before you start.",
        # A long line that mentions furniture words is still prose.
        "JUST IN: " + "the committee published a long report on the matter " * 4,
    ],
)
def test_genuine_sentences_are_kept(line: str) -> None:
    assert line.strip() in clean_plain_text(f"Headline\n\n{line}")[1]


def test_utf8_bom_utf16_and_a_few_bad_bytes() -> None:
    text = "Title\n\nNaïve café owners rejoice."
    assert only(extract(text.encode("utf-8-sig"), filename="a.txt")).text == text
    utf16 = only(extract(text.encode("utf-16"), filename="a.txt"))
    assert (utf16.text, utf16.title) == (text, "Title")
    body = ("A perfectly ordinary sentence about the weather. " * 50).encode() + b"\xff"
    assert "\ufffd" in only(extract(body, filename="a.txt")).text


def test_title_falls_back_to_the_file_name() -> None:
    document = only(extract(b"Only a sentence here.", filename="my-great_article.txt"))
    assert document.title == "my great article"
    assert only(extract(b"Only a sentence here.")).title == "Untitled"


# ------------------------------------------------------------------------------------------- Markdown

MARKDOWN = """---
title: "Front Matter Title"
date: 2024-01-01
---
# Front Matter Title

Intro with **bold**, __strong__, *italic*, _emphasis_, `code` and a [link](https://example.com).

![a diagram](diagram.png)

<!-- an editor's note
spanning lines -->

> A quoted line.

- first item
* second item
1. numbered item

```python
print("code is not prose")
```

| Name | Age |
|------|-----|
| Ann  | 42  |

## Section two ##

Final sentence keeps snake_case_names and 2 * 3 = 6.

Read more: another post on this blog
"""


def test_markdown_is_rendered_to_plain_text() -> None:
    document = only(extract(MARKDOWN.encode(), filename="post.md"))
    assert document.kind == "markdown"
    assert document.title == "Front Matter Title"
    text = document.text
    assert text.startswith("Intro with bold, strong, italic, emphasis, code and a link.")
    assert "A quoted line." in text
    assert "first item\nsecond item\nnumbered item" in text
    assert "Section two" in text
    assert "Final sentence keeps snake_case_names and 2 * 3 = 6." in text
    # Code is kept as written (an install command must be quotable); tables as rows of cells.
    assert '\n\nprint("code is not prose")\n\n' in text
    assert "Name | Age\nAnn | 42" in text
    for gone in ("---", "date:", "diagram", "editor's note", "```", "https://", "**", "#", ">", "|--"):
        assert gone not in text
    assert "Front Matter Title" not in text
    # Furniture filtering is for scraped web pages only: a Markdown file's own lines are kept.
    assert text.endswith("Read more: another post on this blog")


def test_markdown_title_from_first_heading() -> None:
    document = only(extract(b"# The Heading\n\nSome *body* text.\n", filename="x.markdown"))
    assert (document.title, document.text) == ("The Heading", "Some body text.")
    underlined = only(extract(b"Setext Title\n============\n\nBody text.\n", filename="x.md"))
    assert (underlined.title, underlined.text) == ("Setext Title", "Body text.")


# ----------------------------------------------------------------------------------------------- HTML

HTML = """<!DOCTYPE html>
<html lang="en"><head>
<title>Bridge approved | Example News</title>
<link rel="canonical" href="https://news.example.com/bridge">
<meta property="og:title" content="Council approves the new river bridge">
</head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li><li><a href="/sport">Sport</a></li></ul></nav>
<article>
<h1>Council approves the new river bridge</h1>
<p>The council voted on Tuesday to build a new bridge across the river, ending a decade of debate.</p>
<p>READ MORE: Mayor unveils plan for cycle lanes</p>
<p>Engineers expect construction to begin next spring and to finish within three years.</p>
<p>The mayor said the bridge would cut commuting times for thousands of residents.</p>
</article>
<section id="comments" class="comments"><h2>Comments</h2>
<div class="comment"><p>Great article, I loved every word of it!</p></div></section>
<footer><p>Copyright © 2024 Example News. All rights reserved.</p><p>Privacy policy | Cookie settings</p></footer>
</body></html>
"""


def test_html_keeps_the_article_and_drops_furniture() -> None:
    document = only(extract(HTML.encode(), filename="bridge.html"))
    assert document.kind == "html"
    assert document.title == "Council approves the new river bridge"
    assert document.url == "https://news.example.com/bridge"
    assert document.text == (
        "The council voted on Tuesday to build a new bridge across the river, ending a decade of debate.\n\n"
        "Engineers expect construction to begin next spring and to finish within three years.\n\n"
        "The mayor said the bridge would cut commuting times for thousands of residents."
    )
    for gone in ("Home", "Sport", "READ MORE", "Great article", "Copyright", "Cookie"):
        assert gone not in document.text


def test_html_detected_from_content_type_and_sniffing_and_caller_url_wins() -> None:
    by_type = only(extract(HTML.encode(), content_type="text/html; charset=utf-8", url="https://a.example/x"))
    assert by_type.url == "https://a.example/x"
    assert only(extract(HTML.encode())).kind == "html"


def test_html_in_a_declared_legacy_charset() -> None:
    html = HTML.replace("<head>", '<head><meta charset="windows-1252">').replace(
        "Tuesday", "Tuesday’s meeting"
    )
    document = only(extract(html.encode("cp1252"), filename="a.htm"))
    assert "Tuesday’s meeting" in document.text


@pytest.mark.parametrize(
    "html",
    [
        "<html><body>" + "<div>" * 100_000 + "deep text" + "</div>" * 100_000 + "</body></html>",
        "<html><body>" + "<b><i>" * 50_000 + "deep text" + "</i></b>" * 50_000 + "</body></html>",
        "<html><body><p " + " ".join(f"a{i}='x'" for i in range(100_000)) + ">attributes</p></body></html>",
        "<html><body><p " + " ".join(f'a{i}=">"' for i in range(100_000)) + ">attributes</p></body></html>",
    ],
    ids=["deep-divs", "deep-inline", "many-attributes", "many-attributes-quoted-gt"],
)
def test_html_bombs_extract_or_fail_cleanly_and_quickly(html: str) -> None:
    started = time.monotonic()
    try:
        documents = extract(html.encode(), filename="bomb.html")
    except InputError:
        pass
    else:
        assert documents[0].text.strip()
    assert time.monotonic() - started < 10


def test_html_without_article_text() -> None:
    with pytest.raises(InputError, match="article text"):
        extract(b"<html><head><title>Empty</title></head><body><nav></nav></body></html>", filename="e.html")


# ------------------------------------------------------------------------------------------------ PDF

PDF_PAGES = [
    [
        "A Study of Things",
        "The quick brown fox jumps over the lazy dog and then it",
        "keeps running through the fields of the informa-",
        "tion age until it finally stops for a rest.",
        "Another paragraph starts here and goes on for a",
        "while before ending with a full stop at the end.",
    ],
    ["2", "The second page begins a new paragraph about dogs."],
]


def test_pdf_text_is_joined_into_paragraphs() -> None:
    document = only(extract(make_pdf(PDF_PAGES), filename="study.pdf"))
    assert document.kind == "pdf"
    assert document.title == "A Study of Things"
    assert document.text == (
        "The quick brown fox jumps over the lazy dog and then it keeps running through the fields of the "
        "information age until it finally stops for a rest.\n\n"
        "Another paragraph starts here and goes on for a while before ending with a full stop at the end.\n\n"
        "The second page begins a new paragraph about dogs."
    )


def test_pdf_title_from_metadata_and_content_type() -> None:
    pdf = make_pdf([["Just a sentence in a document."]], title="Metadata Title")
    document = only(extract(pdf, content_type="application/pdf"))
    assert (document.title, document.text) == ("Metadata Title", "Just a sentence in a document.")


def test_pdf_mislabelled_as_text_is_still_read() -> None:
    assert only(extract(make_pdf(PDF_PAGES), filename="study.txt")).kind == "pdf"


def test_pdf_encrypted_with_a_password_is_refused() -> None:
    with pytest.raises(InputError, match="encrypted"):
        extract(encrypt_pdf(make_pdf(PDF_PAGES), "hunter2"), filename="secret.pdf")


def test_pdf_encrypted_with_an_empty_password_is_read() -> None:
    document = only(extract(encrypt_pdf(make_pdf(PDF_PAGES), ""), filename="open.pdf"))
    assert "information age" in document.text


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\nthis is not really a pdf at all\n%%EOF\n",
        b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n",
        make_pdf(PDF_PAGES)[:300],
    ],
    ids=["garbage", "no-pages", "truncated"],
)
def test_malformed_pdf(data: bytes) -> None:
    with pytest.raises(InputError):
        extract(data, filename="broken.pdf")


def test_pdf_without_text() -> None:
    with pytest.raises(InputError, match="no text"):
        extract(make_pdf([[]]), filename="scan.pdf")


# ----------------------------------------------------------------------------------------- JSON Lines


def test_jsonl_keeps_text_exactly() -> None:
    records: list[dict[str, Any]] = [
        {
            "id": "a1",
            "title": "First",
            "text": "  Indented\ttext, JUST IN: kept\n\n\n exactly.  ",
            "url": "https://x.y/1",
        },
        {"id": 7, "text": "Second text.", "extra": [1, 2]},
        {"text": "No id at all."},
    ]
    data = (
        "\n".join(json.dumps(r) for r in records[:2]) + "\n\n   \n" + json.dumps(records[2]) + "\n"
    ).encode()
    documents = extract(data, filename="eval.jsonl")
    assert [d.text for d in documents] == [r["text"] for r in records]
    assert [d.source_id for d in documents] == ["a1", "7", None]
    assert [d.title for d in documents] == ["First", "7", "Untitled"]
    assert [d.url for d in documents] == ["https://x.y/1", None, None]
    assert {d.kind for d in documents} == {"jsonl"}


def test_jsonl_by_content_type_and_sniffing() -> None:
    data = b'{"id": "x", "text": "Sniffed."}\n'
    assert only(extract(data, content_type="application/x-ndjson")).source_id == "x"
    assert only(extract(data)).kind == "jsonl"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"id": 1, "text": "ok"}\n\n{"id": 2, "text": broken}\n', "Line 3 is not valid JSON"),
        (b'{"id": 1, "text": "ok"}\n{"id": 2, "title": "no text"}\n', 'Line 2 has no "text"'),
        (b'{"id": 1, "text": "   "}\n', 'Line 1: "text" is empty'),
        (b'{"id": 1, "text": 5}\n', 'Line 1: "text" must be a string'),
        (b'["not", "an", "object"]\n', "Line 1 is not a JSON object"),
        (b'{"id": 1, "text": "a"}\n{"id": "1", "text": "b"}\n', 'Line 2 repeats the id "1" from line 1'),
        (b"[" * 100_000 + b"\n", "Line 1 is not valid JSON"),
    ],
)
def test_jsonl_errors_name_the_line(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        extract(data, filename="bad.jsonl")


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("filename", ["a.txt", "a.md", "a.html", "a.pdf", "a.jsonl", None])
@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n  "])
def test_empty_input(data: bytes, filename: str | None) -> None:
    with pytest.raises(InputError, match="empty"):
        extract(data, filename=filename)


def test_too_large() -> None:
    with pytest.raises(InputError, match="limit"):
        extract(b"word " * 1000, filename="a.txt", max_bytes=100)


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01",
        b"some text\x00with a NUL byte",
        b"PK\x03\x04\x14\x00\x06\x00",
        bytes(range(1, 32)) * 20,
    ],
    ids=["png", "nul", "zip", "control-characters"],
)
def test_binary_renamed_as_text(data: bytes) -> None:
    with pytest.raises(UnsupportedFormat):
        extract(data, filename="notes.txt")


def test_undecodable_text() -> None:
    with pytest.raises(InputError, match="UTF-8"):
        extract("Crème brûlée à la française".encode("latin-1"), filename="a.txt")
    with pytest.raises(InputError, match="UTF-16"):
        extract(b"\xff\xfe" + b"a\x00\x00\xd8", filename="a.txt")


@pytest.mark.parametrize("content_type", ["image/png", "application/zip", "video/mp4"])
def test_unsupported_content_type(content_type: str) -> None:
    with pytest.raises(UnsupportedFormat, match=content_type):
        extract(b"whatever", content_type=content_type)


# -------------------------------------------------------------------------------------------- fuzzing

PREFIXES = [
    b"",
    b"%PDF-1.4\n",
    b"<html><body><p>",
    b'{"id": 1, "text": "',
    b"---\ntitle: x\n---\n# ",
    b"\xef\xbb\xbf",
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from(PREFIXES),
    body=st.one_of(st.binary(max_size=2_000), st.text(max_size=2_000).map(str.encode)),
    filename=st.sampled_from(
        ["a.txt", "a.md", "a.markdown", "a.html", "a.htm", "a.pdf", "a.jsonl", "a", None]
    ),
)
def test_fuzz_extract_returns_documents_or_a_quotebot_error(
    prefix: bytes, body: bytes, filename: str | None
) -> None:
    try:
        documents = extract(prefix + body, filename=filename)
    except QuotebotError as error:
        assert str(error)
        return
    assert documents
    for document in documents:
        assert isinstance(document, Document)
        assert document.text.strip()
        assert document.title
