"""Pure functions from an `Answer` (or article facts) to Discord message text and embeds, within Discord's limits.

Article text is untrusted: everything quoted is markdown-escaped and mention-neutralised, every line of
a quote starts with "> " so a newline cannot leave the block quote, and replies are sent with
`ALLOWED_MENTIONS` (nobody is ever pinged). Control characters, bidi overrides and zero-width spaces
never reach Discord raw either (`bot.safe_text.visible`: ESC shows as `\x1b`, U+202E as `\u202e`). Nothing here touches the network or the event loop.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence
from typing import TYPE_CHECKING

import discord
from discord.utils import escape_markdown

from bot.safe_text import visible
from index.types import Answer, ArticleRef, Quote

if TYPE_CHECKING:
    from index.insights import Insights

# Discord's hard limits.
CONTENT_MAX = 2000
EMBED_TITLE_MAX = 256
EMBED_DESCRIPTION_MAX = 4096
EMBED_FIELD_NAME_MAX = 256
EMBED_FIELD_VALUE_MAX = 1024
EMBED_FOOTER_MAX = 2048
EMBED_TOTAL_MAX = 6000
EMBED_FIELDS_MAX = 25
CHOICE_NAME_MAX = 100

ALLOWED_MENTIONS = discord.AllowedMentions.none()
DECLINE = "I couldn't find that in the articles."
ELLIPSIS = "…"

_ZWSP = "\u200b"
_LIST_MARKER = re.compile(r"^(\s*)([-*+]|\d+[.)])(\s)")
_FRAGMENT_WORDS = 5
_FRAGMENT_WHOLE_MAX = 120  # characters of sentence quoted whole in a text fragment


# -- escaping and trimming --------------------------------------------------------------------------


def neutralise(text: str) -> str:
    """Untrusted text made inert: controls and bidi overrides shown as escapes, markdown escaped, and
    mentions / custom emoji / slash-command mentions / timestamps broken by a zero-width space so
    Discord never parses them. Line breaks ("\\n", "\\r") are kept for the callers to lay out."""
    text = "\r".join(visible(part) for part in text.split("\r"))
    # escape_markdown escapes "[" but not "]": a "]" could end a masked link's text early.
    out = escape_markdown(text, ignore_links=False).replace("]", "\\]")
    # `<@id>`, `<@&id>`, `<#id>`, `</cmd:id>`, `<t:...>`, `<:emoji:id>`, `@everyone`, `@here`.
    out = out.replace("<", "<" + _ZWSP).replace("@", "@" + _ZWSP)
    lines = [_LIST_MARKER.sub(r"\1\\\2\3", line) for line in out.split("\n")]
    return "\n".join(lines)


def trim(text: str, max_chars: int) -> str:
    """`text` if it fits, else a prefix of it (cut at a word boundary when one is near) plus "…"."""
    if len(text) <= max_chars:
        return text
    if max_chars <= 1:
        return ELLIPSIS[:max_chars]
    cut = text[: max_chars - 1]
    space = cut.rfind(" ")
    if space >= max_chars * 0.6:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def _fits_escaped(text: str, max_chars: int) -> str:
    """The longest `trim(text, n)` whose block-quoted, escaped rendering fits in `max_chars`."""
    if len(block_quote_raw(text)) <= max_chars:
        return text
    lo, hi = 0, min(len(text), max_chars)
    best = ""
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = trim(text, mid)
        if len(block_quote_raw(candidate)) <= max_chars:
            best, lo = candidate, mid + 1
        else:
            hi = mid - 1
    return best


def block_quote_raw(text: str) -> str:
    """`text` neutralised with "> " before every line (blank lines too), so nothing escapes the quote."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join("> " + line if line else ">" for line in neutralise(text).split("\n"))


def block_quote(text: str, max_chars: int, mark: tuple[int, int] | None = None) -> str:
    """A block quote of `text` (trimmed to a prefix + "…" when needed) at most `max_chars` long.

    `mark`: offsets into `text` of a phrase to show in bold (the answer phrase); left plain when it
    would not survive the trim whole or spans a line break."""
    body = text.strip()
    if mark is not None:
        lead = len(text) - len(text.lstrip())
        a, b = max(0, mark[0] - lead), min(len(body), mark[1] - lead)
        while a < b and body[a].isspace():
            a += 1
        while b > a and body[b - 1].isspace():
            b -= 1
        fitted = _fits_escaped(body, max_chars - 4)
        kept = len(fitted) if fitted == body else len(fitted) - len(ELLIPSIS)
        if 0 <= a < b <= kept and "\n" not in body[a:b] and "\r" not in body[a:b]:
            marked = neutralise(fitted[:a]) + "**" + neutralise(fitted[a:b]) + "**" + neutralise(fitted[b:])
            out = _prefix_lines(marked)
            if len(out) <= max_chars:
                return out
    return block_quote_raw(_fits_escaped(body, max_chars))


def _prefix_lines(neutralised: str) -> str:
    text = neutralised.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join("> " + line if line else ">" for line in text.split("\n"))


def plain(text: str, max_chars: int) -> str:
    """A one-line neutralised rendering of untrusted text (titles, questions) at most `max_chars` long."""
    flat = " ".join(text.split())
    out = neutralise(flat)
    if len(out) <= max_chars:
        return out
    lo, hi, best = 0, len(flat), ""
    while lo <= hi:
        mid = (lo + hi) // 2
        cand = neutralise(trim(flat, mid))
        if len(cand) <= max_chars:
            best, lo = cand, mid + 1
        else:
            hi = mid - 1
    return best


# -- links ------------------------------------------------------------------------------------------


def _encode_fragment_part(text: str) -> str:
    # quote() keeps "-" (an unreserved character), but a text directive gives "-" "&" "," meaning.
    return urllib.parse.quote(text, safe="").replace("-", "%2D")


def text_fragment(sentence: str) -> str:
    """`:~:text=` directive that makes a browser scroll to and highlight `sentence`."""
    words = sentence.split()
    if not words:
        return ""
    flat = " ".join(words)
    if len(flat) <= _FRAGMENT_WHOLE_MAX or len(words) <= 2 * _FRAGMENT_WORDS:
        return ":~:text=" + _encode_fragment_part(flat)
    start = " ".join(words[:_FRAGMENT_WORDS])
    end = " ".join(words[-_FRAGMENT_WORDS:])
    return f":~:text={_encode_fragment_part(start)},{_encode_fragment_part(end)}"


def is_web_url(url: str | None) -> bool:
    if not url:
        return False
    parsed = urllib.parse.urlsplit(url)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _safe_url(url: str) -> str:
    # Characters that would end a markdown link or an <...> wrapper are percent-encoded.
    return urllib.parse.quote(url, safe=":/?#[]@!$&'*+,;=%~")


def source_url(ref: ArticleRef, sentence: str | None = None, page: int | None = None) -> str | None:
    """The article's web address, pointing at `sentence` with a text fragment (a PDF: at its page,
    `#page=N`); None for non-web sources."""
    if not is_web_url(ref.url):
        return None
    assert ref.url is not None
    url = _safe_url(ref.url)
    if page is not None:
        return url.split("#", 1)[0] + f"#page={page}"
    if sentence:
        frag = text_fragment(sentence)
        if frag:
            url += frag if "#" in url else "#" + frag
    return url


def source_line(
    ref: ArticleRef, sentence: str | None = None, *, title_max: int = 200, page: int | None = None
) -> str:
    """The article title, linked to its source (without a link preview) when it has a web address;
    otherwise named with its source (a file's path), and its page for a PDF."""
    title = plain(ref.title or "Untitled", title_max) or "Untitled"
    where = f", page {page}" if page is not None else ""
    url = source_url(ref, sentence, page)
    if url is None:
        origin = ref.source_id if ref.source_id and not ref.source_id.startswith("paste:") else None
        if origin and origin != ref.title:
            return f"*{title}* ({plain(origin, 120)}{where})"
        return f"*{title}*" + (f" (page {page})" if page is not None else "")
    return f"[{title}{where}](<{url}>)"


def confidence_label(confidence: float) -> str:
    """E.g. "High confidence (87%)"."""
    level = "High" if confidence >= 0.7 else "Medium" if confidence >= 0.45 else "Low"
    return f"{level} confidence ({confidence:.0%})"


# -- replies ----------------------------------------------------------------------------------------


def _quote_with_source(q: Quote, budget: int, tail: str = "", *, bold_answer: bool = False) -> str:
    src = "— " + source_line(q.article, q.text, page=q.page) + tail
    if len(src) > budget // 2:  # a monstrous URL: fall back to the title alone
        src = "— " + f"*{plain(q.article.title or 'Untitled', 200)}*" + tail
    mark = None
    if bold_answer and q.answer_start is not None and q.answer_end is not None:
        mark = (q.answer_start - q.start, q.answer_end - q.start)
    return block_quote(q.text, max(1, budget - len(src) - 1), mark) + "\n" + src


MAY_ANSWER = "This may answer it"
QUESTION_MAX = 300  # characters of the question echoed above the answer


def question_line(question: str) -> str:
    """The question asked, echoed in the reply (others cannot see a slash command's options)."""
    return "**Q:** " + plain(question, QUESTION_MAX)


def answer_content(answer: Answer, *, show_question: bool = True) -> str:
    """The message for an answer: the question, then the quote with the answer phrase in bold, its
    linked source and the confidence (a "this may answer it" quote is marked as such), or the
    decline: one short line (related passages are only behind "More sources", to the clicker)."""
    head = question_line(answer.question) + "\n" if show_question and answer.question else ""
    if answer.quote is None:
        return head + DECLINE
    if answer.kind == "may":
        head += f"{MAY_ANSWER} (not sure, {answer.confidence:.0%}):\n"
    tail = f" · {confidence_label(answer.confidence)}"
    body = _quote_with_source(answer.quote, CONTENT_MAX - len(head), tail, bold_answer=True)
    return (head + body)[:CONTENT_MAX]


def decline_content(answer: Answer, budget: int = CONTENT_MAX) -> str:
    """A decline in full: the closest sentence when it is near enough to show (`Answer.closest`),
    labelled with its (too low) confidence, then "possibly related" passages (three in all). Never
    posted by the bot (its public decline is `DECLINE` alone; "More sources" is `sources_embed`)."""
    parts = [DECLINE]
    shown: list[tuple[Quote, str]] = []
    if answer.closest is not None:
        heading = f"The closest sentence I found (confidence {answer.confidence:.0%}, too low to answer):"
        shown.append((answer.closest, heading))
    related = answer.related[: 3 - len(shown)]
    shown.extend((r, "Possibly related:" if i == 0 else "") for i, r in enumerate(related))
    if shown:
        fixed = sum(len(p) + 1 for p in parts) + sum(len(h) + 1 for _, h in shown)
        per = min((budget - fixed) // len(shown) - 2, 450)
        for q, heading in shown:
            if heading:
                parts.append(heading)
            parts.append(_quote_with_source(q, per))
    return "\n".join(parts)[:budget]


def sources_embed(answer: Answer, *, limit: int = 5) -> discord.Embed:
    """ "More sources" (sent to the clicker only): for a decline, the closest sentence with its (too
    low) confidence first; then the other candidate sentences, then possibly related passages."""
    fields: list[tuple[str, Quote]] = []
    seen: set[tuple[int, int, str]] = set()

    def add(label: str, q: Quote) -> None:
        key = (q.article.id, q.start, q.text)
        if key not in seen:
            seen.add(key)
            fields.append((label, q))

    if answer.quote is None and answer.best is not None:
        add(f"Closest sentence (confidence {answer.confidence:.0%}, too low to answer)", answer.best)
    for q in answer.alternatives:
        add(q.article.title or "Untitled", q)
    for q in answer.related:
        add("Possibly related: " + (q.article.title or "Untitled"), q)
    embed = discord.Embed(title=plain("More sources for: " + answer.question, EMBED_TITLE_MAX))
    if not fields:
        embed.description = "No other passages came close."
        return embed
    for label, q in fields[: min(limit, EMBED_FIELDS_MAX)]:
        name = plain(label, EMBED_FIELD_NAME_MAX) or "Untitled"
        value = _quote_with_source(q, EMBED_FIELD_VALUE_MAX)
        if len(embed) + len(name) + len(value) > EMBED_TOTAL_MAX:
            break
        embed.add_field(name=name, value=value, inline=False)
    return embed


def articles_embed(
    rows: Sequence[tuple[int, str, int, str | None]], *, page: int, pages: int, total: int
) -> discord.Embed:
    """A page of the article list: (id, title, sentences, url) rows."""
    embed = discord.Embed(title=f"Articles ({total})")
    lines = []
    for aid, title, n_sentences, url in rows:
        ref = ArticleRef(aid, title, url, None)
        lines.append(f"`{aid}` {source_line(ref, title_max=150)} · {n_sentences} sentences")
    desc = "\n".join(lines) if lines else "No articles yet. Add one with /articles add."
    embed.description = trim(desc, EMBED_DESCRIPTION_MAX)
    embed.set_footer(text=f"Page {page + 1} of {max(pages, 1)}")
    return embed


def article_embed(
    *,
    article_id: int,
    title: str,
    url: str | None,
    n_sentences: int,
    n_passages: int,
    added_by: str | None,
    created_at: str,
    excerpt: str,
) -> discord.Embed:
    """One article's facts and the start of its text."""
    embed = discord.Embed(title=plain(title or "Untitled", EMBED_TITLE_MAX) or "Untitled")
    if is_web_url(url):
        assert url is not None
        embed.url = _safe_url(url)[:2000]
    embed.description = block_quote(excerpt, 600)
    embed.add_field(name="Id", value=str(article_id))
    embed.add_field(name="Sentences", value=str(n_sentences))
    embed.add_field(name="Passages", value=str(n_passages))
    who = f"<@{added_by}>" if added_by and added_by.isdigit() else plain(added_by or "unknown", 100)
    embed.add_field(name="Added by", value=who)
    embed.add_field(name="Added", value=created_at)
    if url and not is_web_url(url):
        embed.add_field(name="Source", value=plain(url, EMBED_FIELD_VALUE_MAX), inline=False)
    return embed


def unanswered_content(rows: Sequence[tuple[str, bool, int, str]]) -> str:
    """Recent unanswered questions, numbered (each has its "Answer N" button): (text, answered,
    not-helpful votes, when) rows; as fit in one message."""
    if not rows:
        return "No unanswered questions. 🎉"
    lines = ["Recent questions that were declined or voted not helpful:"]
    for i, (text, answered, votes, when) in enumerate(rows, 1):
        why = "declined" if not answered else f"{votes} × not helpful"
        line = f"{i}. {plain(text, 300)} ({why}, {when})"
        if sum(len(x) + 1 for x in lines) + len(line) > CONTENT_MAX:
            break
        lines.append(line)
    return "\n".join(lines)


def unanswered_shown(content: str) -> int:
    """How many entries `unanswered_content` fitted in."""
    return 0 if content.startswith("No unanswered") else content.count("\n")


def _share(n: int, total: int) -> str:
    return f"{n} ({n / total:.0%})" if total else "0"


def insights_embed(report: Insights) -> discord.Embed:
    """/insights: the window's questions per day, outcome shares, votes, top articles and topics."""
    total = report.total
    embed = discord.Embed(title=f"Questions in the last {report.days} days")
    embed.description = (
        f"{total} question{'s' if total != 1 else ''}: {_share(report.quoted, total)} quoted, "
        f'{_share(report.may, total)} "may answer", {_share(report.declined, total)} declined.\n'
        f"Votes: {report.helpful} helpful, {report.not_helpful} not helpful."
    )
    peak = max((n for _, n in report.per_day), default=0)
    rows = [f"{day[5:]} {n:>4} {'▇' * (round(12 * n / peak) if peak else 0)}" for day, n in report.per_day]
    embed.add_field(
        name="Per day",
        value=trim("```\n" + "\n".join(rows), EMBED_FIELD_VALUE_MAX - 4) + "\n```",
        inline=False,
    )
    if report.top_articles:
        lines = [
            f"{i}. {plain(title or 'Untitled', 150)} — {n} time{'s' if n != 1 else ''}"
            for i, (_, title, n) in enumerate(report.top_articles, 1)
        ]
        embed.add_field(
            name="Most-quoted articles", value=trim("\n".join(lines), EMBED_FIELD_VALUE_MAX), inline=False
        )
    if report.topics:
        lines = []
        for i, t in enumerate(report.topics, 1):
            line = f"{i}. {plain(t.example, 200)} (×{t.count})"
            if t.others:
                line += " — also: " + "; ".join(plain(o, 80) for o in t.others[:2])
            lines.append(line)
        embed.add_field(
            name="Top unanswered topics", value=trim("\n".join(lines), EMBED_FIELD_VALUE_MAX), inline=False
        )
    return embed
