"""The pieces every format shares: decoding bytes to text, the character classes removed or
normalised, titles, plain text (kept exact, or cleaned when it is a web page saved as text), line
cleaning and the page-furniture filter."""

from __future__ import annotations

import codecs
import re
import unicodedata
from pathlib import PurePosixPath

from index.errors import InputError, UnsupportedFormat
from index.ingest.extract.detect import _SUPPORTED

MAX_TITLE_CHARS = 200
# Wall-clock limit for reading one file; PDF extraction checks it page by page and stream by stream,
# Markdown between chunks of markdown._MARKDOWN_CHUNK_CHARS (the parser reads ~0.3-1 MB/s).
MAX_EXTRACT_SECONDS = 30.0
# Below this share of undecodable bytes we assume a few stray bytes in a UTF-8 file, not another encoding.
MAX_BAD_BYTE_RATIO = 0.01


# Page furniture: lines a site wraps around an article that must never be quoted as if the author
# wrote them. A line is dropped only when it is short (see _FURNITURE_MAX_CHARS) and one of these
# matches it from its first character; patterns ending in $ must match the whole line.
_FURNITURE_MAX_CHARS = 160
_FURNITURE_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        # teasers for other stories, usually a label glued to another headline
        r"just in\s*:",
        r"breaking(?: news)?\s*:",
        r"read more(?:\s*[:»>…]|\s*$|\s+(?:about|on|here|at)\b)",
        r"(?:also )?read(?: also)?\s*:",
        r"(?:see|watch|listen)(?: also| more)?\s*:",
        r"related\s*:",
        r"related (?:articles?|stories|story|posts?|news|content|reading|topics)\b",
        r"more (?:on this story|stories)\b",
        r"more from (?:the )?[\w .&'-]{1,40}$",
        r"recommended(?: for you| articles?| stories)?\s*:?$",
        r"trending(?: now)?\s*:?$",
        # links to the neighbouring articles
        r"(?:«\s*|<\s*)?previous (?:article|post|story)",
        r"next (?:article|post|story)",
        r"(?:older|newer) (?:posts?|articles?)\s*[»>]?$",
        # comment forms
        r"please enter your (?:comment|name|e-?mail|website)",
        r"you have entered an incorrect email",
        r"leave a (?:comment|reply)\b",
        r"(?:post|add|write|view|show|load) (?:a |your |all |more )?comments?\b[^.!?]{0,40}$",
        r"\d+ comments?$",
        r"comments?\s*(?:\(\d+\))?$",
        r"cancel reply$",
        r"you must be logged in to post a comment",
        r"save my name, e-?mail,? and website",
        r"log ?in to (?:comment|reply)",
        # newsletters and sharing buttons
        r"sign up\b.{0,80}\bnewsletters?\b",
        r"sign up(?: now| here| today)?[.!]?$",
        r"subscribe\b.{0,60}\b(?:newsletters?|updates|today|now)\b",
        r"subscribe[.!]?$",
        r"get (?:our|the)\b.{0,40}\bnewsletter\b",
        r"share (?:this|on)\b[^.!?]{0,40}$",
        r"share(?: this)?(?: article| story| post| page)?\s*:?$",
        r"(?:tweet|email|print|whatsapp|facebook|twitter|linkedin|reddit|pinterest)\s*$",
        r"click here\b",
        r"follow us(?: on)?\b",
        r"like us on facebook",
        # advertising
        r"advertisements?\s*$",
        r"advert\s*$",
        r"ad(?:vertising)? feature\s*$",
        r"sponsored(?: content| post| story| links?)?\s*$",
        r"(?:promoted|paid)(?: content| stories| post)?\s*$",
        r"(?:story|article) continues below\b",
        r"continue reading(?: below| the main story)?\s*$",
        r"scroll (?:down )?to continue",
        # cookie, privacy and legal notices
        r".{0,120}\ball rights reserved\b",
        r"copyright\s*(?:©|\(c\)|\d{4})",
        r"©",
        r"\(c\) \d{4}",
        r"(?:this (?:web)?site|we) uses? cookies",
        r"by (?:continuing|using) (?:to use )?(?:this|our) (?:web)?site",
        r"(?:accept|reject|manage) (?:all )?cookies",
        r"cookie (?:policy|settings|preferences|consent|notice)",
        r"privacy (?:policy|notice|settings)\b[^.!?]{0,80}$",
        r"terms (?:of (?:use|service)|(?:and|&) conditions)\b[^.!?]{0,80}$",
        # picture credits
        r"\(?(?:photo|image|picture|pictures|credit|photograph)s?(?: credit)?\s*:",
        r"\(?[^.!?]{0,80}\bgetty images\)?\s*$",
        r"\(?(?:pa|ap|afp|reuters|epa|shutterstock|alamy)(?: (?:images|photo|wire))?\)?\s*$",
        # page numbers left in PDF text
        r"page \d{1,4}(?: of \d{1,4})?\s*$",
        r"\d{1,4}\s*$",
    )
)

# Characters removed from every text: invisible format characters that break quoting or can
# disguise text (soft hyphen, zero-width space, bidirectional overrides, BOM, word joiners).
_INVISIBLE = dict.fromkeys(
    [
        0x00AD,
        0x200B,
        0x200E,
        0x200F,
        0x2060,
        0x2061,
        0x2062,
        0x2063,
        0x2064,
        0xFEFF,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ]
)
_LINE_BREAKS = re.compile(r"\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")
_SPACES = re.compile(r"[ \t\xa0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_RUNS = re.compile(r"\n{3,}")
_SENTENCE_END = re.compile(r"[.!?…:;][\"'”’»)\]]*$")


# Any tag, for taking markup out of a title (html.py) or an HTML block in Markdown (markdown.py).
_ANY_TAG = re.compile(r"<[^>]{0,2000}>")


# ---------------------------------------------------------------------------------------------- titles


def _title_from_filename(filename: str | None) -> str:
    if not filename:
        return "Untitled"
    stem = PurePosixPath(filename.replace("\\", "/")).stem
    words = re.sub(r"[-_]+", " ", stem).strip()
    return _tidy_title(words) or "Untitled"


def clean_title(title: str) -> str:
    """A title fit to store and show: NFC, one line, no control or invisible characters, capped."""
    return _tidy_title(title)


def _tidy_title(title: str) -> str:
    title = unicodedata.normalize("NFC", title).translate(_INVISIBLE)
    title = _CONTROL.sub("", _LINE_BREAKS.sub(" ", title))
    title = _SPACES.sub(" ", title).strip()
    if len(title) > MAX_TITLE_CHARS:
        title = title[: MAX_TITLE_CHARS - 1].rstrip() + "…"
    return title


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size:,} bytes"


# ----------------------------------------------------------------------------------------- decoding


def _decode(data: bytes, fallback_encoding: str | None = None) -> str:
    return _decode_noting(data, fallback_encoding)[0]


def _decode_noting(data: bytes, fallback_encoding: str | None = None) -> tuple[str, list[str]]:
    """The text, and what decoding changed (a byte order mark dropped, bad bytes replaced)."""
    notes = []
    if data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        notes.append("the leading byte order mark removed")
    if data.startswith(codecs.BOM_UTF8):
        candidates = ["utf-8-sig"]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    else:
        candidates = ["utf-8"]
    if fallback_encoding:
        candidates.append(fallback_encoding)
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        if encoding == fallback_encoding:
            notes.append(f"decoded from {encoding}")
        return _refuse_control_heavy(text), notes
    if candidates[0] == "utf-16":
        raise InputError(
            "That file says it is UTF-16 but isn't valid UTF-16; save it as UTF-8 and try again."
        )
    text = data.decode("utf-8", errors="replace")
    # Each replacement character stands for at least one bad byte; genuine U+FFFD in the file don't count.
    bad = text.count("\ufffd") - data.count("\ufffd".encode())
    if bad > MAX_BAD_BYTE_RATIO * len(data):
        raise InputError("That file isn't UTF-8 text; save it as UTF-8 and try again.")
    notes.append(f"{bad:,} undecodable byte sequence{'s' if bad != 1 else ''} replaced with U+FFFD")
    return _refuse_control_heavy(text), notes


def _refuse_control_heavy(text: str) -> str:
    sample = text[:8192]
    controls = len(_CONTROL.findall(sample))
    if controls > 0.05 * len(sample):
        raise UnsupportedFormat(f"That file looks binary, not text; send {_SUPPORTED}.")
    return text


# --------------------------------------------------------------------------------------- plain text


def _exact_text(raw: str) -> tuple[str, list[str]]:
    """Plain text as given: only CRLF line endings become LF (a lone CR, tabs, spacing, invisible and
    control characters are all kept; outputs neutralise what a terminal or Discord would act on)."""
    if "\r\n" not in raw:
        return raw, []
    return raw.replace("\r\n", "\n"), ["CRLF line endings changed to LF"]


def _plain_title(text: str) -> str | None:
    """The first line, when it reads as a title (short, no closing punctuation, more text after it).
    It stays in the text too: the text is what was given."""
    lines = text.split("\n", 64)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None or first == len(lines) - 1:
        return None
    candidate = _tidy_title(lines[first])
    if not candidate or len(lines[first].strip()) > MAX_TITLE_CHARS or _SENTENCE_END.search(candidate):
        return None
    if not any(line.strip() for line in lines[first + 1 :]):
        return None
    return candidate


def _clean_lines(raw: str, dropped: list[str] | None = None, *, furniture: bool = True) -> list[str]:
    """Normalise characters and whitespace, strip each line and (if furniture) drop furniture lines,
    appending them to dropped when given."""
    text = unicodedata.normalize("NFC", raw).translate(_INVISIBLE)
    text = _CONTROL.sub("", _LINE_BREAKS.sub("\n", text))
    lines = []
    for line in text.split("\n"):
        line = _SPACES.sub(" ", line).strip()
        if furniture and line and _is_furniture(line):
            if dropped is not None:
                dropped.append(line)
            continue
        lines.append(line)
    return lines


# Lines only a web page's template writes (a comment form, links to the neighbouring stories, a
# "JUST IN:" teaser): a text file holding two different ones is a web page saved as text.
_SCRAPE_MARKERS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"just in\s*:",
        r"(?:«\s*|<\s*)?previous (?:article|post|story)\s*$",
        r"next (?:article|post|story)\s*[»>]?\s*$",
        r"please enter your (?:comment|name|e-?mail)",
        r"you have entered an incorrect email",
        r"leave a reply\s*$",
        r"cancel reply\s*$",
        r"you must be logged in to post a comment",
        r"save my name, e-?mail,? and website",
    )
)


def looks_scraped(raw: str) -> bool:
    """Whether a plain text is a web page saved as text (two different template lines of
    `_SCRAPE_MARKERS`): then its page furniture is dropped, and reported, as for HTML. A text
    anyone wrote (a paste, server rules with "Click here to verify..." lines) is kept exact."""
    seen: set[int] = set()
    for line in raw.splitlines():
        line = line.strip()
        if not line or len(line) > _FURNITURE_MAX_CHARS:
            continue
        for k, pattern in enumerate(_SCRAPE_MARKERS):
            if pattern.match(line):
                seen.add(k)
                if len(seen) >= 2:
                    return True
    return False


def _is_furniture(line: str) -> bool:
    if len(line) > _FURNITURE_MAX_CHARS:
        return False
    return any(pattern.match(line) for pattern in _FURNITURE_PATTERNS)


def _join_lines(lines: list[str]) -> str:
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")


def clean_plain_text(raw: str) -> tuple[str | None, str]:
    """Return (title or None, cleaned text) for text scraped from a web page: characters and
    whitespace normalised, the title line taken out, page furniture dropped."""
    return _clean_plain_text(raw, None)


def _clean_plain_text(
    raw: str, dropped: list[str] | None, *, furniture: bool = True
) -> tuple[str | None, str]:
    lines = _clean_lines(raw, dropped, furniture=furniture)
    title: str | None = None
    first = next((i for i, line in enumerate(lines) if line), None)
    if first is not None:
        candidate = lines[first]
        rest_has_text = any(lines[first + 1 :])
        if len(candidate) <= MAX_TITLE_CHARS and not _SENTENCE_END.search(candidate) and rest_has_text:
            title = candidate
            lines = lines[first + 1 :]
    return title, _join_lines(lines)
