"""Untrusted text made harmless to show, on a terminal or in Discord, while the stored text stays exact.

Article text, titles, urls, source ids and questions come from users and web pages. Shown raw, an ESC
starts a terminal escape sequence (colours, cursor moves, window titles, hyperlinks), a NUL or a C1
control confuses terminals and logs, a carriage return overwrites the line, a bidi override (U+202E)
or isolate reverses what follows so that text reads other than it is, and zero-width characters hide
inside words so that two titles look alike.

`visible` rewrites those on output: controls and bidi overrides/isolates become visible escapes
(`\\x1b`, `\\u202e`), lone surrogates too (they cannot even be encoded), and zero-width spaces are
dropped. `json_line` writes JSON whose strings hold the same characters as `\\uXXXX` escapes, so a
JSON reader gets the exact text back and a terminal never sees them raw.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls (tab and newline are decided by the caller), DEL, C1 controls.
_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f"
# Bidi embeddings/overrides (LRE RLE PDF LRO RLO) and isolates (LRI RLI FSI PDI); line and paragraph
# separators (they end a line for many readers); lone surrogates.
_FORMAT = "\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff"
# Invisible characters without a legitimate use inside quoted prose: zero-width space, word joiner,
# zero-width no-break space (BOM). ZWJ / ZWNJ are kept: emoji sequences and several scripts need them.
_INVISIBLE = "\u200b\u2060\ufeff"

_ESCAPE = re.compile(f"[{_CONTROLS}{_FORMAT}]")
_ESCAPE_ALL = re.compile(f"[{_CONTROLS}{_FORMAT}\t\n]")
_DROP = re.compile(f"[{_INVISIBLE}]")
_JSON_ESCAPE = re.compile(f"[\x7f-\x9f{_FORMAT}{_INVISIBLE}]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c <= 0xFF else f"\\u{c:04x}"


def visible(text: str, *, multiline: bool = True) -> str:
    """`text` with every control, bidi override/isolate, line separator and lone surrogate written as
    a visible escape (ESC -> `\\x1b`, U+202E -> `\\u202e`) and zero-width spaces removed.

    `multiline`: keep "\\n" and "\\t" as they are; otherwise they are escaped too (one-line output)."""
    pattern = _ESCAPE if multiline else _ESCAPE_ALL
    return pattern.sub(_escape, _DROP.sub("", text))


def is_safe(text: str, *, multiline: bool = True) -> bool:
    """True when `visible(text)` would change nothing."""
    return visible(text, multiline=multiline) == text


def json_line(obj: Any, **kw: Any) -> str:
    """`json.dumps(obj, ensure_ascii=False)` (no newline), except that the characters `visible` rewrites
    (and which json.dumps leaves raw: DEL, C1, bidi, separators, zero-width, lone surrogates) are
    `\\uXXXX` escapes; `json.loads` of the result gives back exactly `obj`'s strings."""
    text = json.dumps(obj, ensure_ascii=False, **kw)
    # With ensure_ascii=False these characters can only occur inside JSON strings, where \\uXXXX
    # means the same character.
    return _JSON_ESCAPE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
