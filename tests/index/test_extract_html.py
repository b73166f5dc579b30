"""HTML extraction (issue 13): tables kept as text rows, headings kept, the published date reported."""

from __future__ import annotations

from index.ingest.extract import extract
from tests.index.test_extract import HTML

PATCH_NOTES = """<!DOCTYPE html><html><head><title>Patch 1.2 notes | Example Games</title>
<meta property="article:published_time" content="2024-03-05T10:00:00Z">
</head><body><nav><a href="/">Home</a> <a href="/news">News</a></nav><article>
<h1>Patch 1.2 notes</h1>
<p>The patch arrives on Tuesday with a long list of balance changes for every class in the game.</p>
<h2>Balance changes</h2>
<p>Warriors deal slightly less damage with two-handed weapons after the update is installed.</p>
<table>
<tr><th>Class</th><th>Change</th></tr>
<tr><td>Warrior</td><td>-5% damage</td></tr>
<tr><td>Mage</td><td>+10% mana</td></tr>
</table>
<p>Share this article</p>
<h2>Known issues</h2>
<p>Some players may see a black screen on start; restarting the launcher fixes it for most people.</p>
</article><footer><p>Copyright © 2024 Example Games. All rights reserved.</p></footer></body></html>"""


def test_tables_are_kept_as_rows_of_cells() -> None:
    [document] = extract(PATCH_NOTES.encode(), filename="patch.html")
    assert "Class | Change\nWarrior | -5% damage\nMage | +10% mana" in document.text
    assert "|---" not in document.text and "| \n" not in document.text


def test_headings_are_their_own_blocks() -> None:
    [document] = extract(PATCH_NOTES.encode(), filename="patch.html")
    assert document.title == "Patch 1.2 notes"
    blocks = document.text.split("\n\n")
    assert "Balance changes" in blocks and "Known issues" in blocks
    assert blocks.index("Balance changes") < blocks.index("Known issues")
    assert not document.text.startswith("Patch 1.2 notes")  # the title is not repeated as text


def test_the_published_date_is_reported() -> None:
    [document] = extract(PATCH_NOTES.encode(), filename="patch.html")
    assert document.published == "2024-03-05"
    [undated] = extract(HTML.encode(), filename="bridge.html")
    assert undated.published is None


def test_furniture_next_to_a_table_is_dropped_and_reported() -> None:
    [document] = extract(PATCH_NOTES.encode(), filename="patch.html")
    assert "Share this article" in document.dropped
    assert "Share this article" not in document.text
    assert document.text.endswith("restarting the launcher fixes it for most people.")


def test_a_table_row_is_never_mistaken_for_furniture() -> None:
    html = PATCH_NOTES.replace("<td>Mage</td><td>+10% mana</td>", "<td>2024</td><td>Share this article</td>")
    [document] = extract(html.encode(), filename="patch.html")
    assert "2024 | Share this article" in document.text


def test_a_date_in_a_time_element_is_found_but_a_copyright_year_is_not_a_date() -> None:
    html = PATCH_NOTES.replace(
        '<meta property="article:published_time" content="2024-03-05T10:00:00Z">', ""
    ).replace("<h1>", '<time datetime="2023-11-02">2 November 2023</time><h1>')
    [document] = extract(html.encode(), filename="patch.html")
    assert document.published == "2023-11-02"
