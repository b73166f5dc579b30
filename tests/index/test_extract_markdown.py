"""Markdown through a real parser (markdown-it-py, issue 13): code, link texts, headings, lists,
blockquotes and table cells survive as plain text, and quotes are slices of that text."""

from __future__ import annotations

import time

import pytest

import index.ingest.extract.markdown
from index.errors import InputError
from index.ingest.extract import extract
from index.ingest.sentences import split_sentences

README = """---
title: 'quotebot'
---
# quotebot

Install it with pip, then start the bot:

```sh
pip install quotebot
quotebot run --token "$DISCORD_TOKEN"
```

    quotebot doctor

## Configuration

See [the configuration guide](https://example.org/config "Guide") and <https://example.org/faq>.
Settings use `snake_case` keys &amp; values; \\*literal stars\\*.

> **Note:** the bot only quotes
> articles a moderator added.

1. Add an article.
2. Ask a question.
   - nested point

| Option | Default |
|:-------|--------:|
| `threshold` | 0.5 |
| [link cell](https://x.y) | *none* |

Setext heading
--------------

Line one with a hard break\\
line two.

<div align="center">Centred <b>HTML</b> text</div>
"""


def render(markdown: str) -> tuple[str, str]:
    [document] = extract(markdown.encode(), filename="README.md")
    return document.title, document.text


def test_fenced_and_indented_code_keep_their_text_exactly() -> None:
    _, text = render(README)
    assert 'pip install quotebot\nquotebot run --token "$DISCORD_TOKEN"' in text
    assert "\n\nquotebot doctor\n\n" in text
    assert "```" not in text and "sh\n" not in text


def test_link_texts_stay_and_urls_and_markup_go() -> None:
    _, text = render(README)
    assert "See the configuration guide and https://example.org/faq." in text  # an autolink is its text
    assert "example.org/config" not in text and "Guide" not in text
    assert "Settings use snake_case keys & values; *literal stars*." in text


def test_headings_lists_blockquotes_and_tables_are_lines() -> None:
    title, text = render(README)
    assert title == "quotebot"
    lines = text.split("\n")
    for line in ("Configuration", "Setext heading", "Add an article.", "Ask a question.", "nested point"):
        assert line in lines
    assert "Add an article.\nAsk a question.\nnested point" in text
    assert "Note: the bot only quotes\narticles a moderator added." in text
    assert "Option | Default\nthreshold | 0.5\nlink cell | none" in text
    assert "Line one with a hard break\nline two." in text
    assert "Centred HTML text" in text
    for markup in ("#", "> ", "|--", ":---", "**", "`", "\\\\"):
        assert markup not in text


def test_quotes_are_slices_of_the_rendered_text() -> None:
    _, text = render(README)
    spans = list(split_sentences(text))
    assert spans
    sentences = [text[start:end] for start, end in spans]
    assert any("pip install quotebot" in sentence for sentence in sentences)
    assert all(text[start:end].strip() == text[start:end] for start, end in spans)


def test_a_large_file_is_parsed_in_pieces_without_splitting_a_fence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index.ingest.extract.markdown, "_MARKDOWN_CHUNK_CHARS", 200)
    code = "```\nfirst line of code\n\n\nstill the same block\n```"
    section = "## Part\n\nA sentence of prose that fills the piece a little.\n\n" + code + "\n\n"
    _, text = render("# Big\n\n" + section * 30)
    assert text.count("first line of code\n\n\nstill the same block") == 30
    assert text.count("A sentence of prose that fills the piece a little.") == 30
    assert "```" not in text


def test_link_references_defined_in_a_later_piece_still_make_links(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index.ingest.extract.markdown, "_MARKDOWN_CHUNK_CHARS", 200)
    prose = "".join(f"Paragraph {i} points to [the guide][guide] for details.\n\n" for i in range(20))
    _, text = render("# Refs\n\n" + prose + "[guide]: https://example.org/guide\n")
    assert text.count("points to the guide for details.") == 20
    assert "[guide]" not in text and "example.org" not in text


def test_a_markdown_file_over_the_time_limit_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index.ingest.extract.markdown, "_MARKDOWN_CHUNK_CHARS", 4096)
    # ~100 KB of unclosed image brackets: markdown-it-py reads these at only ~20 KB/s.
    slow = "# Slow\n\n" + ("![" * 50 + "\n\n") * 1_000
    started = time.monotonic()
    with pytest.raises(InputError, match=r"Markdown took more than 0\.2 seconds"):
        extract(slow.encode(), filename="slow.md", time_limit_s=0.2)
    assert time.monotonic() - started < 3  # at most one piece past the limit


@pytest.mark.parametrize(
    "body",
    [
        "> " * 20_000 + "deep",
        "- " * 20_000 + "deep",
        "[" * 50_000 + "x",
        "*a **" * 20_000,
        "|a|\n|-|\n" * 5_000,
    ],
    ids=["deep-quotes", "deep-lists", "brackets", "emphasis", "tables"],
)
def test_hostile_markdown_reads_or_fails_cleanly_and_quickly(body: str) -> None:
    started = time.monotonic()
    try:
        [document] = extract(("# Hostile\n\n" + body).encode(), filename="h.md")
    except InputError as error:
        assert str(error)
    else:
        assert document.text.strip()
    assert time.monotonic() - started < 10
