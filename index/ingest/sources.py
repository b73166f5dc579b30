"""Where articles come from, in bulk, and what names them: source keys, folders, zip archives,
sitemaps and feeds. Pure functions over bytes and paths (no SQL, no model): `Library` feeds what
they yield to `add_documents`.

Source keys: every article has one, so adding it again with new text replaces it (and the same
text is a no-op):
    web page     its canonical URL (after redirects; scheme and host lowercased, default port,
                 fragment and tracking parameters such as utm_* dropped)
    file         its path relative to the ingest root (a folder ingest) or as given (one file)
    zip member   "<archive name>/<member path>"
    JSON Lines   the record's "id"
    paste        "paste:<title slug>"
Keys longer than the 512 characters SQL stores become "<kind>-sha256:<digest>".
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from index.errors import InputError

MAX_KEY = 512
# What sitemaps and feeds are served as.
XML_TYPES = frozenset(
    {"application/xml", "text/xml", "application/rss+xml", "application/atom+xml", "application/rdf+xml"}
)
SUPPORTED_EXTENSIONS = (
    ".txt",
    ".text",
    ".md",
    ".markdown",
    ".html",
    ".htm",
    ".xhtml",
    ".pdf",
    ".jsonl",
    ".ndjson",
)
_TRACKING = re.compile(
    r"^(utm_[a-z_]*|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|_hsenc|_hsmi|igshid|yclid|"
    r"ref_src|spm|_ga|_gl|oly_enc_id|oly_anon_id|vero_id|mkt_tok)$",
    re.IGNORECASE,
)


def bounded_key(key: str, kind: str) -> str:
    if len(key) <= MAX_KEY:
        return key
    return f"{kind}-sha256:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}"


def canonical_url(url: str) -> str:
    """The key of a web page: the same page reached by another spelling of its URL gets the same key."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = host if port is None or port == default else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        netloc = f"[{host}]" + ("" if port is None or port == default else f":{port}")
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)]
    )
    return bounded_key(urlunsplit((scheme, netloc, parts.path or "/", query, "")), "url")


def file_key(path: Path, root: Path | None = None) -> str:
    """A file's key: its path relative to `root` (a folder ingest), else relative to the working
    directory (or absolute outside it), in POSIX form."""
    p = path
    base = root if root is not None else Path.cwd()
    try:
        p = path.resolve().relative_to(base.resolve())
    except (ValueError, OSError):
        p = path.resolve() if root is None else path
    return bounded_key(PurePosixPath(*p.parts).as_posix(), "file")


def paste_key(title: str | None) -> str | None:
    """A pasted text's key from its title ("Server rules" -> "paste:server-rules"); None without one."""
    if not title or not title.strip():
        return None
    norm = unicodedata.normalize("NFKC", title).casefold()
    slug = re.sub(r"[^\w]+", "-", norm).strip("-")
    return bounded_key(f"paste:{slug or 'untitled'}", "paste") if slug else None


# -- folders ---------------------------------------------------------------------------------------


def folder_files(root: Path, glob: str | None = None, limit: int = 100_000) -> list[Path]:
    """The files a folder ingest reads: recursive, sorted, hidden files and folders skipped, by
    supported extension (or matching `glob`, e.g. "**/*.md")."""
    if not root.is_dir():
        raise InputError(f"{root} is not a folder.")
    candidates = root.glob(glob) if glob else root.rglob("*")
    out: list[Path] = []
    for p in sorted(candidates):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file() or p.is_symlink():
            continue
        if glob is None and p.suffix.lower() not in SUPPORTED_EXTENSIONS:
            continue
        out.append(p)
        if len(out) > limit:
            raise InputError(f"{root} holds more than {limit:,} files to ingest; ingest it in parts.")
    if not out:
        raise InputError(
            f"{root} holds no {'files matching ' + glob if glob else 'supported files (' + ' '.join(SUPPORTED_EXTENSIONS) + ')'}."
        )
    return out


# -- zip archives ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    name: str  # path inside the archive (POSIX)
    data: bytes


def zip_members(
    data: bytes,
    *,
    max_members: int = 1_000,
    max_member_bytes: int = 20_000_000,
    max_total_bytes: int = 100_000_000,
) -> list[Member]:
    """The supported files of a zip archive, checked before anything is read: no absolute or ".."
    paths, at most `max_members` files, each and all within the size limits (counted as they are
    decompressed: a member's stated size may lie)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
        raise InputError(f"That is not a readable zip archive ({e}).") from e
    files = [i for i in infos if not i.is_dir()]
    if len(files) > max_members:
        raise InputError(f"That archive holds {len(files):,} files; at most {max_members:,} are read.")
    for i in files:
        p = PurePosixPath(i.filename.replace("\\", "/"))
        if p.is_absolute() or ".." in p.parts or re.match(r"^[A-Za-z]:", i.filename):
            raise InputError(f"That archive holds an unsafe path ({i.filename!r}); nothing was added.")
        if i.flag_bits & 0x1:
            raise InputError(f"{i.filename} in that archive is encrypted; nothing was added.")
    stated = sum(i.file_size for i in files)
    if stated > max_total_bytes:
        raise InputError(
            f"That archive unpacks to {stated:,} bytes; the limit is {max_total_bytes:,}. Nothing was added."
        )
    out: list[Member] = []
    total = 0
    for i in files:
        name = PurePosixPath(i.filename.replace("\\", "/"))
        if any(part.startswith(".") or part == "__MACOSX" for part in name.parts):
            continue
        if name.suffix.lower() not in SUPPORTED_EXTENSIONS:
            continue
        chunks: list[bytes] = []
        size = 0
        try:
            with archive.open(i) as f:
                while chunk := f.read(1 << 16):
                    size += len(chunk)
                    total += len(chunk)
                    if size > max_member_bytes:
                        raise InputError(
                            f"{name} in that archive is over {max_member_bytes:,} bytes; nothing was added."
                        )
                    if total > max_total_bytes:
                        raise InputError(
                            f"That archive unpacks to more than {max_total_bytes:,} bytes; nothing was added."
                        )
                    chunks.append(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as e:
            raise InputError(f"{name} in that archive cannot be read ({e}); nothing was added.") from e
        out.append(Member(name.as_posix(), b"".join(chunks)))
    if not out:
        raise InputError(f"That archive holds no supported files ({' '.join(SUPPORTED_EXTENSIONS)}).")
    return out


# -- sitemaps and feeds ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sitemap:
    pages: list[str]  # page URLs (<urlset>)
    sitemaps: list[str]  # nested sitemaps (<sitemapindex>)


def parse_sitemap(data: bytes, *, limit: int) -> Sitemap:
    """The <loc> entries of a sitemap or sitemap index, streamed (entities never expanded, nothing
    fetched); more than `limit` entries is refused."""
    from lxml import etree

    pages: list[str] = []
    nested: list[str] = []
    kind = None
    try:
        for _event, el in etree.iterparse(
            io.BytesIO(data),
            events=("end",),
            resolve_entities=False,
            no_network=True,
            huge_tree=False,
            load_dtd=False,
        ):
            tag = el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""
            if tag in ("urlset", "sitemapindex"):
                kind = tag
            elif tag == "loc" and el.text and el.text.strip():
                parent = el.getparent()
                ptag = (
                    parent.tag.rsplit("}", 1)[-1]
                    if parent is not None and isinstance(parent.tag, str)
                    else ""
                )
                (nested if ptag == "sitemap" else pages).append(el.text.strip())
                if len(pages) + len(nested) > limit:
                    raise InputError(
                        f"That sitemap lists more than {limit:,} URLs (the limit, [ingest] max_bulk_urls); "
                        "nothing was added."
                    )
            el.clear(keep_tail=False)
    except etree.XMLSyntaxError as e:
        raise InputError(f"That is not a readable sitemap (XML: {e}).") from e
    if kind is None:
        raise InputError("That is not a sitemap (no <urlset> or <sitemapindex>).")
    return Sitemap(list(dict.fromkeys(pages)), list(dict.fromkeys(nested)))


def parse_feed(data: bytes, *, limit: int) -> list[str]:
    """The entry links of an RSS or Atom feed (parsed from bytes: feedparser fetches nothing)."""
    import feedparser

    if b"<!ENTITY" in data[:65536].upper():
        raise InputError("That feed declares XML entities; it is refused.")
    parsed = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)
    if not parsed.get("version") and not parsed.entries:
        raise InputError("That is not a readable RSS or Atom feed.")
    links: list[str] = []
    for entry in parsed.entries:
        link = entry.get("link")
        if isinstance(link, str) and link.strip():
            links.append(link.strip())
    links = list(dict.fromkeys(links))
    if len(links) > limit:
        raise InputError(
            f"That feed lists more than {limit:,} entries (the limit, [ingest] max_bulk_urls); nothing was added."
        )
    if not links:
        raise InputError("That feed has no entries with links.")
    return links


def chunked(items: Sequence[Path], max_files: int) -> Iterator[Sequence[Path]]:
    for i in range(0, len(items), max_files):
        yield items[i : i + max_files]
