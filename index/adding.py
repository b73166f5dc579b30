"""Every way an article arrives: uploaded bytes, files, folders, zip archives, pasted text, web
pages, sitemaps and feeds, and the refresh of web articles. Each is read and extracted here (the
pure parts live in index.ingest) and handed to `Writer.add_documents` under its source key, so
adding the same source again replaces it (and the same text is a no-op)."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path, PurePosixPath

from index.errors import FetchError, InputError, NotFound, QuotebotError
from index.ingest.extract import extract
from index.ingest.fetch import Fetched, fetch
from index.ingest.sources import (
    XML_TYPES,
    bounded_key,
    canonical_url,
    file_key,
    folder_files,
    parse_feed,
    parse_sitemap,
    paste_key,
    zip_members,
)
from index.settings import LibrarySettings
from index.storage.database import check_collection
from index.storage.store import Store
from index.types import AddResult, ArticleInfo, BulkResult, Document, Progress, RefreshResult
from index.writing import Writer

BULK_FILES = 200  # files read before their documents are added (one add_documents call)
BULK_CHARS = 32_000_000  # ... or this much text


class Adder:
    """Reads articles from where they come from and adds them through the writer."""

    def __init__(self, settings: LibrarySettings, store: Store, writer: Writer) -> None:
        self.settings = settings
        self.store = store
        self.writer = writer

    def add_bytes(
        self,
        collection: str,
        data: bytes,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        url: str | None = None,
        title: str | None = None,
        added_by: str | None = None,
        progress: Progress | None = None,
        key: str | None = None,
        keyed_by_filename: bool = True,
        exact: bool = False,
    ) -> list[AddResult]:
        """Add an uploaded file (a .zip archive adds its files). Its source key is `key`, else its
        file name (so uploading an edited file again replaces it); JSON Lines records keep their ids."""
        if (filename or "").lower().endswith(".zip"):
            return [
                r
                for _, r in self.add_zip(
                    collection, data, filename or "upload.zip", added_by=added_by, progress=progress
                ).added
            ]
        docs = extract(
            data,
            filename=filename,
            content_type=content_type,
            url=url,
            max_bytes=self.settings.max_article_bytes,
            detect_scraped=not exact,
        )
        if key is None and keyed_by_filename and filename:
            key = file_key(Path(filename))
        docs = _named(docs, title=title, default_title=Path(filename).stem if filename else None, key=key)
        return self.writer.add_documents(collection, docs, added_by=added_by, progress=progress)

    @staticmethod
    def read_path(path: Path, limit: int | None) -> bytes:
        """A file's bytes, refused in words when missing, a folder, unreadable or over `limit`."""
        try:
            size = path.stat().st_size
            if limit is not None and size > limit:
                raise InputError(f"{path.name} is {size:,} bytes; the limit is {limit:,}.")
            return path.read_bytes()
        except FileNotFoundError as e:
            raise InputError(f"No such file: {path}") from e
        except IsADirectoryError as e:
            raise InputError(f"{path} is a folder, not a file.") from e
        except OSError as e:
            raise InputError(f"Cannot read {path}: {e.strerror}") from e

    def _file_documents(self, path: Path, root: Path | None = None) -> list[Document]:
        jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
        data = self.read_path(path, None if jsonl else self.settings.max_article_bytes)
        max_bytes = (
            max(self.settings.max_article_bytes, len(data)) if jsonl else self.settings.max_article_bytes
        )
        docs = extract(
            data, filename=path.name, max_bytes=max_bytes, max_record_bytes=self.settings.max_article_bytes
        )
        return _named(docs, default_title=path.stem, key=file_key(path, root))

    def add_file(
        self,
        collection: str,
        path: Path,
        *,
        root: Path | None = None,
        added_by: str | None = None,
        progress: Progress | None = None,
    ) -> list[AddResult]:
        """Add one file (a folder: see `add_folder`; a .zip: its files). Its source key is its path
        (relative to `root` when given), so ingesting an edited file again replaces it."""
        if path.is_dir():
            return [
                r for _, r in self.add_folder(collection, path, added_by=added_by, progress=progress).added
            ]
        if path.suffix.lower() == ".zip":
            data = self.read_path(path, None)
            return [
                r
                for _, r in self.add_zip(
                    collection, data, path.name, added_by=added_by, progress=progress
                ).added
            ]
        docs = self._file_documents(path, root)
        return self.writer.add_documents(collection, docs, added_by=added_by, progress=progress)

    def add_folder(
        self,
        collection: str,
        root: Path,
        *,
        glob: str | None = None,
        added_by: str | None = None,
        progress: Progress | None = None,
    ) -> BulkResult:
        """Add every supported file under `root` (recursive; or those matching `glob`), keyed by their
        paths relative to `root`. A file that cannot be read is listed in `failed`, the others are
        added; `progress` counts files."""
        files = folder_files(root, glob, limit=self.settings.max_articles)
        out = BulkResult([], [])
        done = 0
        group: list[tuple[str, list[Document]]] = []
        size = 0

        def flush() -> None:
            nonlocal group, size, done
            self._add_group(collection, group, out, added_by)
            done += len(group)
            group, size = [], 0
            if progress is not None:
                progress(done, len(files))

        for f in files:
            name = file_key(f, root)
            try:
                docs = self._file_documents(f, root)
            except QuotebotError as e:
                out.failed.append((name, str(e)))
                done += 1
                continue
            group.append((name, docs))
            size += sum(len(d.text) for d in docs)
            if len(group) >= BULK_FILES or size >= BULK_CHARS:
                flush()
        if group:
            flush()
        if progress is not None:
            progress(len(files), len(files))
        return out

    def add_zip(
        self,
        collection: str,
        data: bytes,
        name: str,
        *,
        added_by: str | None = None,
        progress: Progress | None = None,
    ) -> BulkResult:
        """Add the supported files of a zip archive, keyed "<archive>/<member path>". The archive is
        checked whole first (unsafe paths, counts, sizes: nothing is added when it fails); a member
        that cannot be read is listed in `failed`."""
        members = zip_members(
            data,
            max_members=min(self.settings.max_articles, 1_000),
            max_member_bytes=self.settings.max_article_bytes,
            max_total_bytes=5 * self.settings.max_article_bytes,
        )
        stem = Path(name).name
        out = BulkResult([], [])
        group: list[tuple[str, list[Document]]] = []
        for k, m in enumerate(members, 1):
            label = f"{stem}/{m.name}"
            try:
                docs = extract(
                    m.data,
                    filename=PurePosixPath(m.name).name,
                    max_bytes=max(self.settings.max_article_bytes, len(m.data)),
                    max_record_bytes=self.settings.max_article_bytes,
                )
            except QuotebotError as e:
                out.failed.append((label, str(e)))
                continue
            group.append(
                (
                    label,
                    _named(docs, default_title=PurePosixPath(m.name).stem, key=bounded_key(label, "file")),
                )
            )
            if len(group) >= BULK_FILES or k == len(members):
                self._add_group(collection, group, out, added_by)
                group = []
                if progress is not None:
                    progress(k, len(members))
        if group:
            self._add_group(collection, group, out, added_by)
        return out

    def _add_group(
        self, collection: str, group: list[tuple[str, list[Document]]], out: BulkResult, added_by: str | None
    ) -> None:
        docs = [d for _, ds in group for d in ds]
        names = [n for n, ds in group for _ in ds]
        if not docs:
            return
        errors: list[tuple[int, str]] = []
        results = self.writer.add_documents(collection, docs, added_by=added_by, errors=errors)
        bad = {i for i, _ in errors}
        out.failed.extend((names[i], why) for i, why in errors)
        out.added.extend(zip([n for i, n in enumerate(names) if i not in bad], results, strict=True))

    def add_text(
        self,
        collection: str,
        text: str,
        *,
        title: str | None = None,
        url: str | None = None,
        added_by: str | None = None,
    ) -> AddResult:
        """Add pasted text, stored as given; keyed by its title ("paste:<slug>"), so pasting an edited
        text under the same title replaces it."""
        if url:
            doc = Document(text, title or "Untitled", url, source_id=paste_key(title))
            return self.writer.add_documents(collection, [doc], added_by=added_by)[0]
        data = text.encode("utf-8", "surrogatepass")
        return self.add_bytes(
            collection,
            data,
            filename="pasted.txt",
            title=title,
            added_by=added_by,
            key=paste_key(title),
            keyed_by_filename=False,
            exact=True,  # what someone typed: never filtered as a web page's furniture
        )[0]

    def add_url(self, collection: str, url: str, *, added_by: str | None = None) -> AddResult:
        """Fetch and add a web page (or a PDF, text...), keyed by its canonical URL after redirects:
        adding it again replaces it when its text changed."""
        fetched = fetch(url, self.settings.fetch)
        return self._add_fetched(collection, fetched, added_by=added_by)

    def add_sitemap(
        self, collection: str, url: str, *, added_by: str | None = None, progress: Progress | None = None
    ) -> BulkResult:
        """Fetch every page a sitemap lists (a sitemap index: its sitemaps, one level down), at most
        `[ingest] max_bulk_urls` of them in all (more is refused before anything is added)."""
        limit = self.settings.max_bulk_urls
        sm = parse_sitemap(fetch(url, self.settings.fetch, accept=XML_TYPES).data, limit=limit)
        pages = list(sm.pages)
        for nested in sm.sitemaps[:limit]:
            inner = parse_sitemap(fetch(nested, self.settings.fetch, accept=XML_TYPES).data, limit=limit)
            pages.extend(inner.pages)
            if len(pages) > limit:
                raise InputError(
                    f"That sitemap lists more than {limit:,} pages (the limit, [ingest] max_bulk_urls); "
                    "nothing was added."
                )
        return self._add_urls(collection, list(dict.fromkeys(pages)), added_by=added_by, progress=progress)

    def add_feed(
        self, collection: str, url: str, *, added_by: str | None = None, progress: Progress | None = None
    ) -> BulkResult:
        """Fetch the page of every entry of an RSS or Atom feed (at most `[ingest] max_bulk_urls`)."""
        data = fetch(url, self.settings.fetch, accept=XML_TYPES).data
        links = parse_feed(data, limit=self.settings.max_bulk_urls)
        return self._add_urls(collection, links, added_by=added_by, progress=progress)

    def _add_urls(
        self, collection: str, urls: list[str], *, added_by: str | None, progress: Progress | None
    ) -> BulkResult:
        out = BulkResult([], [])
        for k, u in enumerate(urls, 1):
            try:
                out.added.append((u, self.add_url(collection, u, added_by=added_by)))
            except QuotebotError as e:
                out.failed.append((u, str(e)))
            if progress is not None:
                progress(k, len(urls))
        return out

    def refresh(
        self, collection: str, *, remove_gone: bool = False, progress: Progress | None = None
    ) -> RefreshResult:
        """Fetch every web article of the collection again (conditional GET with its ETag /
        Last-Modified; then its content hash), replacing the changed ones. A page that answers 404
        or 410 is "gone" (removed with `remove_gone`); other failures are listed and change nothing."""
        check_collection(collection)
        arts = [a for a in self.store.articles(collection) if a.url and a.source_id == canonical_url(a.url)]
        out = RefreshResult([], [], [], [])
        for k, a in enumerate(arts, 1):
            info = ArticleInfo.of(a)
            assert a.url is not None
            try:
                fetched = fetch(a.url, self.settings.fetch, etag=a.etag, last_modified=a.last_modified)
                if fetched.not_modified:
                    self.store.set_source_meta(
                        info.id, fetched.etag or a.etag, fetched.last_modified or a.last_modified
                    )
                    out.unchanged.append(info)
                else:
                    res = self._add_fetched(collection, fetched, key=a.source_id)
                    (out.unchanged if res.status == "unchanged" else out.changed).append(res.article)
            except FetchError as e:
                if getattr(e, "status", None) in (404, 410):
                    out.gone.append((info, str(e)))
                    if remove_gone:
                        with contextlib.suppress(NotFound):
                            self.writer.remove(collection, f"#{info.id}")
                else:
                    out.failed.append((info, str(e)))
            except QuotebotError as e:
                out.failed.append((info, str(e)))
            if progress is not None:
                progress(k, len(arts))
        return out

    def _add_fetched(
        self, collection: str, fetched: Fetched, *, added_by: str | None = None, key: str | None = None
    ) -> AddResult:
        docs = extract(
            fetched.data,
            content_type=fetched.content_type,
            url=fetched.url,
            filename=fetched.url.rsplit("/", 1)[-1] or None,
            max_bytes=self.settings.max_article_bytes,
        )
        # The page's address is the one fetched (after redirects): a url field inside what was
        # fetched (a JSON Lines record) never stands in for it.
        doc = dataclasses.replace(
            docs[0],
            url=fetched.url,
            title=docs[0].title or fetched.url,
            source_id=key or canonical_url(fetched.url),
        )
        res = self.writer.add_documents(collection, [doc], added_by=added_by)[0]
        self.store.set_source_meta(res.article.id, fetched.etag, fetched.last_modified)
        return res


def _named(
    docs: list[Document],
    *,
    title: str | None = None,
    default_title: str | None = None,
    key: str | None = None,
) -> list[Document]:
    """Title and source key for extracted documents: an explicit `title` wins, else the document's
    own, else `default_title`; JSON Lines records keep their ids, one other document gets `key`."""
    out = []
    for d in docs:
        t = title or d.title or default_title or "Untitled"
        sid = d.source_id if d.source_id or d.kind == "jsonl" else key
        out.append(dataclasses.replace(d, title=t, source_id=sid))
    return out
