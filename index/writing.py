"""Writes to a collection: documents added in bounded batches (checked, split into sentences,
embedded, stored, indexed), and articles removed.

Each batch is one SQL transaction and one index update under the collection's write lock
(`Shelves.writing`), published to questions as it commits, so a long ingest never holds the
database's write lock for long and questions see its articles as they land. What another writer
stored since a batch was prepared (the same text, the same source id) is re-checked under the lock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from index.embedding import Embedder, encode_in_steps
from index.errors import InputError, StoreError
from index.ingest.extract import clean_title
from index.ingest.passages import make_passages
from index.ingest.sentences import split_sentences
from index.search.shelf import ShelfRows, passage_vectors, stored_passages
from index.search.shelves import Shelves
from index.settings import LibrarySettings
from index.storage.database import check_collection
from index.storage.models import Article
from index.storage.store import Store, content_hash
from index.types import AddResult, ArticleInfo, Document, Progress

# One stored batch of an ingest: one SQL transaction (the write lock is held for about this much).
INSERT_SENTENCES = 2_048
INSERT_ARTICLES = 500
SAVE_EVERY_S = 30.0  # during a long ingest, the index file is rewritten at most this often
MAX_SOURCE_ID = 512  # as the article table stores it (PostgreSQL refuses longer)


@dataclass
class _Prepared:
    doc: Document
    digest: str
    spans: list[tuple[int, int]]
    replaces: int | None


class Writer:
    """Adds and removes the articles of any collection (thread-safe; one writer per collection at a
    time, across processes)."""

    def __init__(
        self, settings: LibrarySettings, store: Store, shelves: Shelves, embedder: Callable[[], Embedder]
    ) -> None:
        self.settings = settings
        self.store = store
        self.shelves = shelves
        self._get_embedder = embedder

    @property
    def embedder(self) -> Embedder:
        return self._get_embedder()

    def add_documents(
        self,
        collection: str,
        docs: Sequence[Document],
        *,
        added_by: str | None = None,
        progress: Progress | None = None,
        errors: list[tuple[int, str]] | None = None,
    ) -> list[AddResult]:
        """Add articles: encoded and stored in bounded batches (each one SQL transaction and one
        index update, published to questions as it commits), so a long ingest never holds the
        database's write lock for long and questions see its articles as they land.

        A document whose text is already stored is "unchanged"; one whose source id is stored
        "replaced" (its old sentences are never quoted again); both are re-checked under the
        collection's lock, so concurrent writers of one source id leave one article. A bad
        document raises InputError, or with `errors` is skipped and listed there as
        (index in `docs`, message). Returns one result per document not skipped, in order."""
        check_collection(collection)
        if added_by is not None and len(added_by) > 64:
            raise InputError(f"added_by is {len(added_by)} characters long; at most 64 are stored.")
        results: list[AddResult | None] = [None] * len(docs)
        skipped: set[int] = set()
        prepared: list[tuple[int, _Prepared]] = []
        by_digest: dict[str, int] = {}  # first copy of each text in this batch
        by_source: dict[str, int] = {}  # last document of each source id in this batch
        digests: list[str | None] = []
        for doc in docs:
            try:
                digests.append(content_hash(doc.text))
            except UnicodeEncodeError:
                digests.append(None)  # refused by _check_document below
        stored = self.store.find_by_hashes(collection, [d for d in digests if d is not None])
        for i, doc in enumerate(docs):
            try:
                _check_document(doc)
                digest = digests[i]
                assert digest is not None
                if digest in by_digest:
                    continue  # same text twice in one batch: reported as its first copy
                existing = stored.get(digest)
                if existing is not None:
                    results[i] = AddResult(ArticleInfo.of(existing), "unchanged")
                    by_digest[digest] = i
                    continue
                spans = split_sentences(doc.text)
                if not spans:
                    raise InputError(f"{_name(doc)} has no sentences to quote.")
            except InputError as e:
                if errors is None:
                    raise
                errors.append((i, str(e)))
                skipped.add(i)
                continue
            by_digest[digest] = i
            if doc.source_id:
                by_source[doc.source_id] = i
            prepared.append((i, _Prepared(doc, digest, spans, None)))
        # Of several documents with one source id, the last is stored (the others are older copies).
        prepared = [(i, p) for i, p in prepared if not p.doc.source_id or by_source[p.doc.source_id] == i]
        if prepared and self.store.count_articles(collection) + len(prepared) > self.settings.max_articles:
            raise InputError(f"This collection is limited to {self.settings.max_articles} articles.")

        total = sum(len(p.spans) for _, p in prepared)
        done = 0
        if progress is not None and total:
            progress(0, total)  # the total, before the first (long) encoding pass
        batches = list(_batches(prepared, INSERT_SENTENCES, INSERT_ARTICLES))
        saved_at = time.monotonic()
        for b, batch in enumerate(batches):
            texts = [p.doc.text[s:e] for _, p in batch for s, e in p.spans]
            base = done

            def step(k: int, _n: int, base: int = base) -> None:
                if progress is not None:
                    progress(base + k, total)

            vecs = encode_in_steps(
                self.embedder, texts, self.settings.batch_size, step if progress is not None else None
            )
            # The index file is written after the last batch, and every SAVE_EVERY_S seconds between
            # (each save writes the whole index); a crash in between leaves a file of an older
            # generation, rebuilt from SQL on load.
            save = b == len(batches) - 1 or time.monotonic() - saved_at > SAVE_EVERY_S
            for i, res in self._store_batch(collection, batch, vecs, added_by, save=save):
                results[i] = res
            if save:
                saved_at = time.monotonic()
            done += len(texts)
            if progress is not None:
                progress(done, total)

        # Copies inside the batch report what their first copy (or the last of their source id) got.
        for i, doc in enumerate(docs):
            if results[i] is None and i not in skipped:
                j = by_source.get(doc.source_id or "", -1)
                first = results[j] if j >= 0 and results[j] is not None else None
                first = first or results[by_digest[content_hash(doc.text)]]
                assert first is not None
                results[i] = AddResult(first.article, "unchanged" if j < 0 else first.status)
        return [r for r in results if r is not None]

    def _store_batch(
        self,
        collection: str,
        batch: list[tuple[int, _Prepared]],
        vecs: np.ndarray,
        added_by: str | None,
        *,
        save: bool = True,
    ) -> list[tuple[int, AddResult]]:
        """Store one encoded batch under the collection's lock: what another writer stored since the
        batch was prepared is re-checked first; then one transaction, then the index."""
        out: list[tuple[int, AddResult]] = []
        with self.shelves.writing(collection):
            shelf = self.shelves.current(collection)
            live: list[tuple[int, _Prepared]] = []
            keep: list[int] = []
            offset = 0
            by_hash = self.store.find_by_hashes(collection, [p.digest for _, p in batch])
            by_source = self.store.find_by_sources(
                collection, [p.doc.source_id for _, p in batch if p.doc.source_id]
            )
            for i, p in batch:
                n = len(p.spans)
                existing = by_hash.get(p.digest)
                if existing is not None:
                    out.append((i, AddResult(ArticleInfo.of(existing), "unchanged")))
                else:
                    old = by_source.get(p.doc.source_id) if p.doc.source_id else None
                    p.replaces = old.id if old is not None else None
                    live.append((i, p))
                    keep.extend(range(offset, offset + n))
                offset += n
            if not live:
                return out
            replaced = {p.replaces for _, p in live if p.replaces is not None}
            if replaced:
                # Hide the old versions from questions before SQL drops them: no ghost quotes.
                self.shelves.hide(collection, shelf.without_articles(replaced))
            try:
                stored, new_rows, removed, gen = self._insert(collection, live, vecs[keep], added_by)
            except BaseException:
                self.shelves.hide(collection, shelf)
                raise
            # SQL has committed: now the index (a crash here leaves an index of an older generation,
            # rebuilt on load).
            shelf.passages.remove(np.asarray(removed["passages"], np.int64))
            ids, pvecs = passage_vectors(new_rows, list(stored_passages(new_rows)), self.embedder.dim)
            shelf.passages.add(ids, pvecs)
            if save:
                self.shelves.save_index(collection, shelf.passages, gen)
            else:
                self.shelves.mark_unsaved(collection)
            if removed["articles"]:
                shelf = shelf.without_articles(set(removed["articles"]))
            shelf = self.shelves.install(collection, shelf.with_rows(new_rows), gen)
        self.shelves.grown(collection, shelf)
        for (i, p), art in zip(live, stored, strict=True):
            out.append(
                (
                    i,
                    AddResult(
                        ArticleInfo.of(art),
                        "replaced" if p.replaces else "added",
                        tuple(getattr(p.doc, "dropped", ()) or ()),
                    ),
                )
            )
        return out

    def _insert(
        self, collection: str, prepared: list[tuple[int, _Prepared]], vecs: np.ndarray, added_by: str | None
    ) -> tuple[list[Article], ShelfRows, dict[str, list[int]], int]:
        """Store a prepared batch in one transaction (`Store.insert_batch`). Returns the articles,
        their shelf rows, what was removed, the generation."""
        size, overlap = self.settings.passage_sentences, self.settings.passage_overlap
        removed: dict[str, list[int]] = {"articles": [], "passages": []}
        now = datetime.now(UTC)
        arts = [
            Article(
                collection=collection,
                source_id=p.doc.source_id,
                title=_clip(clean_title(p.doc.title), 512) or "Untitled",  # callers may skip extract
                url=_clip(p.doc.url, 2048),
                kind=p.doc.kind,
                text=p.doc.text,
                content_hash=p.digest,
                n_sentences=len(p.spans),
                n_chunks=0,
                added_by=added_by,
                created_at=p.doc.created_at or now,
                published=_clip(getattr(p.doc, "published", None), 32),
                pages=json.dumps(list(pages)) if (pages := getattr(p.doc, "pages", ())) else None,
            )
            for _, p in prepared
        ]
        passages = [make_passages(p.spans, size=size, overlap=overlap) for _, p in prepared]
        for a, ps in zip(arts, passages, strict=True):
            a.n_chunks = len(ps)
        batch = self.store.insert_batch(
            collection,
            arts,
            [p.spans for _, p in prepared],
            vecs,
            passages,
            [p.replaces for _, p in prepared if p.replaces is not None],
        )
        removed["articles"], removed["passages"] = batch.removed_articles, batch.removed_passages
        sids, gen = batch.sentence_ids, batch.generation
        spans = {c.id: (c.article_id, c.first, c.last) for c in batch.passages}
        ids = [int(a.id) for a in arts if a.id is not None]
        rows = ShelfRows(
            np.asarray(sids, np.int64),
            np.concatenate(
                [np.full(len(p.spans), aid, np.int64) for aid, (_, p) in zip(ids, prepared, strict=True)]
            ),
            np.asarray([x for _, p in prepared for x, _ in p.spans], np.int64),
            np.asarray([y for _, p in prepared for _, y in p.spans], np.int64),
            np.ascontiguousarray(vecs, np.float32),
            {a.id: a.text for a in arts if a.id is not None},
            {a.id: a.title for a in arts if a.id is not None},
            spans,
            {a.id: (a.url, a.source_id) for a in arts if a.id is not None},
        )
        return arts, rows, removed, gen

    def remove(self, collection: str, ref: str | int) -> ArticleInfo:
        """Remove an article; works while the index cannot be saved (disk full), to free space."""
        self.store.find(collection, ref)  # a clear NotFound before taking the lock
        with self.shelves.writing(collection):
            art = self.store.find(collection, ref)  # again: another writer may have removed or replaced it
            assert art.id is not None
            shelf = self.shelves.current(collection)
            # Hide it from questions first, then delete: no ghost hits in between.
            hidden = shelf.without_articles({art.id})
            self.shelves.hide(collection, hidden)
            try:
                passage_ids, gen = self.store.remove_article(collection, art.id)
            except StoreError:
                self.shelves.hide(collection, shelf)
                raise
            shelf.passages.remove(np.asarray(passage_ids, np.int64))
            self.shelves.save_index(collection, shelf.passages, gen)
            self.shelves.install(collection, hidden, gen)
        return ArticleInfo.of(art)


def _name(doc: Document) -> str:
    return repr(doc.source_id) if doc.source_id else (doc.title or "The article")


def _check_document(doc: Document) -> None:
    """The rules every engine can store, checked before anything is written (SQLite would take a NUL
    or a 600-character source id that PostgreSQL refuses)."""
    if not doc.text.strip():
        raise InputError(f"{_name(doc)} has no text.")
    if doc.created_at is not None and doc.created_at.tzinfo is None:
        raise InputError(f"The created_at of {_name(doc)} has no time zone.")
    # (Titles are cleaned of control characters when stored, so a NUL there is dropped, not refused.)
    fields = (("text", doc.text), ("source id", doc.source_id), ("url", doc.url))
    for label, value in fields:
        if not value:
            continue
        if "\x00" in value:
            raise InputError(f"The {label} of {_name(doc)} contains a NUL character, which cannot be stored.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InputError(
                f"The {label} of {_name(doc)} is not valid Unicode (a lone surrogate at character {e.start})."
            ) from e
    if doc.source_id is not None and len(doc.source_id) > MAX_SOURCE_ID:
        raise InputError(
            f"The source id {doc.source_id[:40]!r}... is {len(doc.source_id)} characters long; "
            f"at most {MAX_SOURCE_ID}."
        )


def _batches(
    items: list[tuple[int, _Prepared]], max_sentences: int, max_articles: int
) -> Iterator[list[tuple[int, _Prepared]]]:
    batch: list[tuple[int, _Prepared]] = []
    n = 0
    for item in items:
        k = len(item[1].spans)
        if batch and (n + k > max_sentences or len(batch) >= max_articles):
            yield batch
            batch, n = [], 0
        batch.append(item)
        n += k
    if batch:
        yield batch


def _clip(s: str | None, n: int) -> str | None:
    if s is None:
        return None
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"
