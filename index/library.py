"""The Library: the one object the bot and the command line talk to (add, remove, list, ask, rebuild).

It owns the SQL store (source of truth), the embedding model (loaded once, lazily) and one
in-memory `Shelf` per collection (rebuildable from SQL). All methods are synchronous and
thread-safe: questions read an immutable shelf snapshot; writes to one collection are serialised
by that collection's lock and publish a new shelf when their SQL transaction has committed.

Several processes may share one data directory (the bot and a `quotebot ingest`): writers of a
collection also take an advisory file lock (`index/<collection>.lock`, fcntl.flock, released by
the kernel if the process dies), and re-check what is stored (content hash, source id) once they
hold it. Every write bumps the collection's generation in the same SQL transaction; the index
file records the generation it was saved at. A process whose shelf is older than SQL's generation
reloads it (without waiting on a writer), and an index file of another generation is never used:
it is rebuilt from SQL. The index file is a cache: when it cannot be written (disk full) the
library answers from memory, warns, and saves again on the next write.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import errno
import fcntl
import json
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import numpy as np
from sqlalchemy import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col, select

from index.answering.alignment import ALIGNMENT, alignment_features
from index.answering.evidence import judge_evidence
from index.answering.model import AnswerModel, StateCache, combine_inputs, judge_inputs
from index.answering.reader import (
    PAIR_FEATURES,
    QUESTION_TOKENS,
    READER_FILE,
    READER_MODEL_ID,
    SENTENCE_TOKENS,
    Reader,
    ReaderInput,
    Reading,
    bm25_rarity_top,
)
from index.answering.scorer import Ranked, Scorer, judge_features, with_alignment
from index.embedding import DEFAULT_MODEL, Embedder, TokenVectors
from index.errors import FetchError, InputError, NotFound, QuotebotError, StoreError
from index.ingest.extract import clean_title, extract
from index.ingest.fetch import Fetched, FetchPolicy, fetch
from index.ingest.passages import make_passages
from index.ingest.sentences import split_sentences
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
from index.search.candidates import candidate_rows
from index.search.features import FEATURES, featurize
from index.search.lexical import terms
from index.search.shelf import Shelf, ShelfRows
from index.storage.models import Article, Chunk, Meta, Question, Sentence
from index.storage.store import Store, content_hash, describe_db_error, vector_bytes, vectors_from_bytes
from index.storage.vectors import FLAT, VectorIndex
from index.types import AddResult, Answer, ArticleInfo, ArticleRef, BulkResult, Document, Quote, RefreshResult

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
_COLLECTION = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# One stored batch of an ingest: one SQL transaction (the write lock is held for about this much).
INSERT_SENTENCES = 2_048
INSERT_ARTICLES = 500
BULK_FILES = 200  # files read before their documents are added (one add_documents call)
BULK_CHARS = 32_000_000  # ... or this much text
SAVE_EVERY_S = 30.0  # during a long ingest, the index file is rewritten at most this often
MAX_SOURCE_ID = 512  # as the article table stores it (PostgreSQL refuses longer)


@dataclass
class LibrarySettings:
    """Everything the index needs to know; built once by the caller (bot.config) and passed in."""

    data_dir: Path = Path("quotebot-data")
    database_url: str | None = None  # default: SQLite file in data_dir
    model: str = DEFAULT_MODEL
    batch_size: int = 64
    passage_sentences: int = 4
    passage_overlap: int = 1
    dense_k: int = 40
    lexical_k: int = 40
    passage_k: int = 8
    exhaustive_limit: int = 300_000  # up to this many sentences, dense search over sentences is exact
    ivf_threshold: int = 50_000  # passages; past this the FAISS index is IVF
    nprobe: int = 64  # chosen on real MiniLM vectors: recall@10 0.965 (32: 0.936), 0.8 ms a query
    threshold: float | None = None  # quote confidently from this confidence; None = the fitted value
    may_threshold: float | None = None  # "this may answer it" from here, decline below; None = fitted
    reader: bool = True  # read candidates with the trained reader (when it fits the embedding model)
    reader_cache_sentences: int = 20_000  # sentences whose reader inputs are kept in memory (~8 KB each)
    max_article_bytes: int = 20_000_000
    max_question_chars: int = 2_000
    max_articles: int = 100_000  # per collection
    max_bulk_urls: int = 1_000  # pages one sitemap or feed ingest may fetch
    max_loaded_collections: int = 0  # shelves kept in memory (least recently used dropped); 0 = all
    fetch: FetchPolicy = field(default_factory=FetchPolicy)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.data_dir).resolve() / 'quotebot.db'}"

    @property
    def index_dir(self) -> Path:
        return Path(self.data_dir) / "index"


@dataclass
class _Prepared:
    doc: Document
    digest: str
    spans: list[tuple[int, int]]
    replaces: int | None


def check_collection(collection: str) -> str:
    if not _COLLECTION.match(collection or ""):
        raise InputError(f"Invalid collection name {collection!r} (letters, digits, . _ - only).")
    return collection


class Library:
    """Articles of many collections, and answers to questions about them."""

    def __init__(
        self,
        settings: LibrarySettings,
        embedder: Embedder | None = None,
        scorer: Scorer | None = None,
        *,
        reader: Reader | None = None,
        answer_model: AnswerModel | None = None,
    ) -> None:
        """`reader` / `answer_model`: instead of the shipped ones (tests; the fit script)."""
        self.settings = settings
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        self.store = Store(settings.db_url)
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self.scorer = scorer or Scorer.load()
        # Most recently used last; at most settings.max_loaded_collections are kept in memory.
        self._shelves: OrderedDict[str, Shelf] = OrderedDict()
        self._shelves_lock = threading.Lock()
        self._write_locks: dict[str, threading.Lock] = {}
        self._gens: dict[str, int] = {}  # the SQL generation each shelf in memory reflects
        self._unsaved: set[str] = set()  # collections whose index file is behind memory (save failed)
        self._model_checked = False
        self._background: set[str] = set()
        self.answer_model = answer_model or AnswerModel.load()
        self._reader: Reader | None = reader
        self._reader_checked = reader is not None
        self._reader_lock = threading.Lock()
        self._states = StateCache(settings.reader_cache_sentences)
        self._states_lock = threading.Lock()
        self._pages: OrderedDict[tuple[str, int, int], list[int]] = OrderedDict()  # PDF page starts
        self._clean_temporary_files()

    # -- plumbing --------------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._embedder_lock:
                if self._embedder is None:
                    from index.embedding import SentenceTransformerEmbedder

                    self._embedder = SentenceTransformerEmbedder(self.settings.model)
        return self._embedder

    def wrap_embedder(self, wrap: Callable[[Embedder], Embedder]) -> None:
        """Put a wrapper around the embedding model (loaded now), e.g. the bot's, which makes
        background encodes yield to questions. Same model id and vectors: nothing is re-encoded."""
        inner = self.embedder
        with self._embedder_lock:
            self._embedder = wrap(inner)

    @property
    def reader(self) -> Reader | None:
        """The trained reader, when enabled, shipped, and fitted on this library's embedding model
        (a test's fake embedder gets the retrieval ranker and judge alone)."""
        if not self._reader_checked:
            embedder = self.embedder  # loads the model first (it takes _embedder_lock itself)
            with self._reader_lock:
                if not self._reader_checked:
                    # The shipped reader is fitted on the bundled model's token states; other
                    # embedders never load it (nor torch, whose import holds the interpreter).
                    fits = getattr(embedder, "model_id", None) == READER_MODEL_ID
                    if self.settings.reader and fits and READER_FILE.exists():
                        reader = Reader(READER_FILE)
                        if getattr(embedder, "model_id", None) == reader.model_id:
                            self._reader = reader
                    self._reader_checked = True
        return self._reader

    def warm_up(self) -> None:
        """Load the model and the reader and run each once now (start-up), not on a first question:
        imports and first passes hold the interpreter for a few hundred milliseconds."""
        self.embedder.encode(["warm-up"])
        reader = self.reader
        if reader is not None:
            enc = self.embedder.encode_states(["warm up"], max_tokens=QUESTION_TOKENS)
            q = reader.prepare("warm up", enc.states[0], enc.offsets[0], QUESTION_TOKENS)
            reader.read(q, [q], np.zeros((1, len(PAIR_FEATURES)), np.float32), lambda t: 1.0)

    @property
    def threshold(self) -> float:
        if self.settings.threshold is not None:
            return self.settings.threshold
        return self.answer_model.threshold if self.reader else self.scorer.threshold

    @property
    def may_threshold(self) -> float:
        """Below `threshold`, quotes from here on are shown as "this may answer it"."""
        if self.settings.may_threshold is not None:
            return min(self.settings.may_threshold, self.threshold)
        return min(self.answer_model.may_threshold, self.threshold) if self.reader else self.threshold

    def close(self) -> None:
        self.store.close()

    def _lock(self, collection: str) -> threading.Lock:
        with self._shelves_lock:
            return self._write_locks.setdefault(collection, threading.Lock())

    def _index_path(self, collection: str) -> Path:
        return self.settings.index_dir / f"{collection}.faiss"

    def _lock_fd(self, collection: str) -> int:
        path = self.settings.index_dir / f"{collection}.lock"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreError(f"Cannot open the lock file {path}: {_os_reason(e)}") from e

    @contextmanager
    def _writing(self, collection: str) -> Iterator[None]:
        """Serialise writers of one collection: threads by a lock, processes by an advisory file lock."""
        with self._lock(collection):
            fd = self._lock_fd(collection)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                with self.store.collection_lock(collection):  # other hosts (PostgreSQL)
                    yield
            finally:
                os.close(fd)  # releases the flock

    def _save_index(self, collection: str, index: VectorIndex, generation: int) -> bool:
        """Write the index file at `generation`; on failure (disk full) warn and keep answering from
        memory: the file stays behind SQL's generation, so no process trusts it, and the next write
        saves again."""
        try:
            index.save(self._index_path(collection), generation)
        except OSError as e:
            self._unsaved.add(collection)
            log.warning(
                "could not save the index of collection %s (%s); answering from memory, "
                "it is saved again on the next change",
                collection,
                _os_reason(e),
            )
            return False
        self._unsaved.discard(collection)
        return True

    def _save_if_idle(self, collection: str, index: VectorIndex, generation: int) -> None:
        """Save an index a reader rebuilt, when no writer holds the collection and SQL is still at
        `generation` (never wait: a writer will save its own)."""
        lock = self._lock(collection)
        if not lock.acquire(blocking=False):
            return
        try:
            fd = self._lock_fd(collection)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return
            try:
                with self.store.collection_lock(collection, wait=False) as held:
                    if held and self.store.generation(collection) == generation:
                        self._save_index(collection, index, generation)
            finally:
                os.close(fd)
        finally:
            lock.release()

    def _install(self, collection: str, shelf: Shelf, generation: int) -> Shelf:
        """Publish `shelf` (at SQL `generation`) unless a newer one is already in place; returns the
        shelf in place."""
        with self._shelves_lock:
            if self._gens.get(collection, -1) > generation and collection in self._shelves:
                return self._shelves[collection]
            self._shelves[collection] = shelf
            self._shelves.move_to_end(collection)
            self._gens[collection] = generation
        self._evict(keep=collection)
        return shelf

    def _current_shelf(self, collection: str) -> Shelf:
        """The shelf as SQL holds the collection now; call inside `_writing` (no writer can move SQL)."""
        shelf = self._shelves.get(collection)
        gen = self.store.generation(collection)
        if shelf is not None and self._gens.get(collection) == gen:
            return shelf
        self._check_model()
        rows, chunk_rows = self._read_rows(collection)
        return self._shelf_at(collection, rows, chunk_rows, gen, locked=True)

    def _shelf_at(
        self,
        collection: str,
        rows: ShelfRows,
        chunk_rows: list[tuple[int, int, int, int]],
        gen: int,
        *,
        locked: bool,
    ) -> Shelf:
        """Publish the shelf of rows read at SQL generation `gen`, from the index file when it is that
        generation's, else built from the rows and saved (`locked`: this thread holds the write lock;
        otherwise only when no writer does)."""
        index = self._stored_index(collection, chunk_rows, gen)
        rebuilt = index is None
        if index is None:
            index = self._build_index(rows, chunk_rows)
            if locked:
                self._save_index(collection, index, gen)
        shelf = self._install(collection, Shelf.from_rows(collection, self.embedder.dim, rows, index), gen)
        if rebuilt and not locked and shelf.passages is index:
            self._save_if_idle(collection, index, gen)
        self._grown(collection, shelf)
        return shelf

    def _grown(self, collection: str, shelf: Shelf) -> None:
        if shelf.passages.kind == FLAT and shelf.passages.count >= self.settings.ivf_threshold:
            self._rebuild_in_background(collection)  # e.g. the threshold was lowered

    def _clean_temporary_files(self) -> None:
        """Remove index temporaries a crash left behind (older than any save in progress)."""
        cutoff = time.time() - 15 * 60
        d = self.settings.index_dir
        for f in d.glob(".*.tmp") if d.exists() else []:
            with contextlib.suppress(OSError):
                if f.stat().st_mtime < cutoff:
                    f.unlink()
                    log.info("removed %s, left by an interrupted save", f)

    def _evict(self, keep: str) -> None:
        """Drop the least recently used shelves past `max_loaded_collections` (0 = no limit); they are
        reloaded from their index file (or rebuilt from SQL) when next asked."""
        limit = self.settings.max_loaded_collections
        if limit <= 0:
            return
        with self._shelves_lock:
            for name in list(self._shelves):
                if len(self._shelves) <= limit:
                    break
                if name != keep:
                    del self._shelves[name]
                    self._gens.pop(name, None)
                    log.info("unloaded collection %s (least recently used)", name)

    @property
    def loaded_collections(self) -> list[str]:
        """Collections whose shelves are in memory, least recently used first."""
        return list(self._shelves)

    def _encode(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        emb = self.embedder
        bs = self.settings.batch_size
        if progress is None or len(texts) <= bs * 4:
            out = emb.encode(texts, batch_size=bs)
            if progress:
                progress(len(texts), len(texts))
            return out
        parts = []
        step = bs * 8
        for i in range(0, len(texts), step):
            parts.append(emb.encode(texts[i : i + step], batch_size=bs))
            progress(min(i + step, len(texts)), len(texts))
        return np.concatenate(parts) if parts else np.zeros((0, emb.dim), np.float32)

    def _check_model(self) -> None:
        """Re-encode stored sentences once if they were embedded by another model than the configured one."""
        if self._model_checked:
            return
        with self._shelves_lock:
            if self._model_checked:
                return
            with self.store.session() as s:
                row = s.get(Meta, "model")
                stored = row.value if row else None
            if stored is not None and stored != self.embedder.model_id:
                log.warning(
                    "stored vectors come from model %r, configured %r: re-encoding",
                    stored,
                    self.embedder.model_id,
                )
                self._model_checked = True
                for c in self.store.collections():
                    self._reencode(c)
            if stored != self.embedder.model_id:  # a write only when it changes (readers never write)
                self._set_meta("model", self.embedder.model_id)
            self._model_checked = True

    def _set_meta(self, key: str, value: str) -> None:
        with self.store.session() as s:
            row = s.get(Meta, key)
            if row is None:
                s.add(Meta(key=key, value=value))
            else:
                row.value = value
                s.add(row)
            s.commit()

    # -- shelves --------------------------------------------------------------------------------

    def shelf(self, collection: str) -> Shelf:
        """The collection's current shelf, loading (or rebuilding) it on first use, and reloading it
        when SQL has moved on since (another process wrote; one small query per question).

        Never waits on a writer: while this process writes the collection, questions use the shelf
        in place (the writer publishes the next); another process's write is read from SQL."""
        check_collection(collection)
        shelf = self._shelves.get(collection)
        if shelf is not None and (
            self._lock(collection).locked() or self._gens.get(collection) == self.store.generation(collection)
        ):
            with self._shelves_lock:
                if collection in self._shelves:
                    self._shelves.move_to_end(collection)
            return shelf
        return self._refresh(collection)

    def _refresh(self, collection: str) -> Shelf:
        """Load the collection as SQL holds it now, without the write lock: rows are read between two
        reads of the generation, again if a writer committed in between."""
        self._check_model()
        for _ in range(5):
            gen = self.store.generation(collection)
            rows, chunk_rows = self._read_rows(collection)
            if self.store.generation(collection) == gen:
                break
        else:  # a writer commits faster than we read: wait for a quiet moment
            with self._writing(collection):
                return self._current_shelf(collection)
        return self._shelf_at(collection, rows, chunk_rows, gen, locked=False)

    def _read_rows(self, collection: str) -> tuple[ShelfRows, list[tuple[int, int, int, int]]]:
        dim = self.embedder.dim
        srows = self.store.sentence_rows(collection)
        texts = self.store.article_texts(collection)
        chunk_rows = self.store.chunk_rows(collection)
        rows = ShelfRows(
            np.array([r[0] for r in srows], np.int64),
            np.array([r[1] for r in srows], np.int64),
            np.array([r[3] for r in srows], np.int64),
            np.array([r[4] for r in srows], np.int64),
            vectors_from_bytes([r[5] for r in srows], dim),
            {a: t[1] for a, t in texts.items()},
            {a: t[0] for a, t in texts.items()},
            {c[0]: (c[1], c[2], c[3]) for c in chunk_rows},
            self.store.article_refs(collection),
        )
        return rows, chunk_rows

    def _stored_index(
        self, collection: str, chunk_rows: Sequence[tuple[int, int, int, int]], generation: int
    ) -> VectorIndex | None:
        """The saved index when it is exactly SQL's at `generation`, else None (the caller rebuilds)."""
        path = self._index_path(collection)
        index = VectorIndex.load(path, nprobe=self.settings.nprobe)
        reason = None
        if index is None:
            reason = "missing or unreadable"
        elif index.model_id != self.embedder.model_id:
            reason = f"built by model {index.model_id!r}"
        elif index.generation != generation:
            # A crash (or a full disk) between the SQL commit and the index save.
            reason = f"at generation {index.generation}, the database at {generation}"
        elif index.count != len(chunk_rows):
            reason = f"holds {index.count} vectors for {len(chunk_rows)} passages"
        elif not _same_ids(index, chunk_rows):
            reason = "holding other passages than SQL"
        if reason is None:
            return index
        if path.exists() or chunk_rows:
            log.warning("index of collection %s is %s: rebuilding from SQL", collection, reason)
        return None

    def _build_index(self, rows: ShelfRows, chunk_rows: Sequence[tuple[int, int, int, int]]) -> VectorIndex:
        ids, vecs = _passage_vectors(rows, chunk_rows, self.embedder.dim)
        return VectorIndex.build(
            ids,
            vecs,
            model_id=self.embedder.model_id,
            dim=self.embedder.dim,
            ivf_threshold=self.settings.ivf_threshold,
            nprobe=self.settings.nprobe,
        )

    # -- adding -----------------------------------------------------------------------------------

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

            vecs = self._encode(texts, step if progress is not None else None)
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
        with self._writing(collection):
            shelf = self._current_shelf(collection)
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
                self._shelves[collection] = shelf.without_articles(replaced)
            try:
                stored, new_rows, removed, gen = self._insert(collection, live, vecs[keep], added_by)
            except BaseException:
                self._shelves[collection] = shelf
                raise
            # SQL has committed: now the index (a crash here leaves an index of an older generation,
            # rebuilt on load).
            shelf.passages.remove(np.asarray(removed["chunks"], np.int64))
            ids, pvecs = _passage_vectors(new_rows, list(_chunk_tuples(new_rows)), self.embedder.dim)
            shelf.passages.add(ids, pvecs)
            if save:
                self._save_index(collection, shelf.passages, gen)
            else:
                self._unsaved.add(collection)
            if removed["articles"]:
                shelf = shelf.without_articles(set(removed["articles"]))
            shelf = self._install(collection, shelf.with_rows(new_rows), gen)
        self._grown(collection, shelf)
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
        """One transaction: delete what is replaced, bulk-insert articles, sentences and passages,
        bump the generation. Returns the articles, their shelf rows, what was removed, the generation."""
        size, overlap = self.settings.passage_sentences, self.settings.passage_overlap
        removed: dict[str, list[int]] = {"articles": [], "chunks": []}
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
                created_at=now,
                published=_clip(getattr(p.doc, "published", None), 32),
                pages=json.dumps(list(pages)) if (pages := getattr(p.doc, "pages", ())) else None,
            )
            for _, p in prepared
        ]
        passages = [make_passages(p.spans, size=size, overlap=overlap) for _, p in prepared]
        for a, ps in zip(arts, passages, strict=True):
            a.n_chunks = len(ps)
        chunks: dict[int, tuple[int, int, int]] = {}
        try:
            with self.store.session() as s:
                for _, p in prepared:
                    if p.replaces is not None:
                        old_chunks = s.exec(select(Chunk.id).where(Chunk.article_id == p.replaces)).all()
                        removed["chunks"].extend(int(c) for c in old_chunks if c is not None)
                        removed["articles"].append(p.replaces)
                        self.store.delete_article(s, p.replaces)
                columns = ("collection", "source_id", "title", "url", "kind", "text", "content_hash")
                more = ("n_sentences", "n_chunks", "added_by", "created_at", "published", "pages")
                aids = (
                    s.execute(
                        insert(Article).returning(col(Article.id), sort_by_parameter_order=True),
                        [{k: getattr(a, k) for k in columns + more} for a in arts],
                    )
                    .scalars()
                    .all()
                )
                for a, aid in zip(arts, aids, strict=True):
                    a.id = int(aid)
                sent_params = []
                row = 0
                for art, (_, p) in zip(arts, prepared, strict=True):
                    for k, (x, y) in enumerate(p.spans):
                        sent_params.append(
                            {
                                "collection": collection,
                                "article_id": art.id,
                                "ordinal": k,
                                "start": x,
                                "end": y,
                                "vector": vector_bytes(vecs[row]),
                            }
                        )
                        row += 1
                sids = (
                    s.execute(
                        insert(Sentence).returning(col(Sentence.id), sort_by_parameter_order=True),
                        sent_params,
                    )
                    .scalars()
                    .all()
                )
                chunk_params = [
                    {
                        "collection": collection,
                        "article_id": a.id,
                        "first": c.first,
                        "last": c.last,
                        "start": c.start,
                        "end": c.end,
                    }
                    for a, ps in zip(arts, passages, strict=True)
                    for c in ps
                ]
                cids = (
                    s.execute(
                        insert(Chunk).returning(col(Chunk.id), sort_by_parameter_order=True), chunk_params
                    )
                    .scalars()
                    .all()
                )
                flat = [(a.id, c) for a, ps in zip(arts, passages, strict=True) for c in ps]
                for cid, (aid, c) in zip(cids, flat, strict=True):
                    assert aid is not None
                    chunks[int(cid)] = (aid, c.first, c.last)
                self.store.bump(s, collection)
                s.commit()
                gen = self.store.generation(collection)
        except (SQLAlchemyError, StoreError) as e:
            raise StoreError(f"Could not store the article: {_db_reason(e)}") from e
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
            chunks,
            {a.id: (a.url, a.source_id) for a in arts if a.id is not None},
        )
        return arts, rows, removed, gen

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
        return self.add_documents(collection, docs, added_by=added_by, progress=progress)

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
        return self.add_documents(collection, docs, added_by=added_by, progress=progress)

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
        results = self.add_documents(collection, docs, added_by=added_by, errors=errors)
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
            return self.add_documents(collection, [doc], added_by=added_by)[0]
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
                            self.remove(collection, f"#{info.id}")
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
        res = self.add_documents(collection, [doc], added_by=added_by)[0]
        self.store.set_source_meta(res.article.id, fetched.etag, fetched.last_modified)
        return res

    # -- removing and listing -----------------------------------------------------------------

    def find(self, collection: str, ref: str | int) -> Article:
        """An article by source id (what exports and `list` show), else by database id: a str ref is
        a source id first, so "1" is the article imported with id "1" when there is one; "#12" or an
        int is always database id 12."""
        check_collection(collection)
        art = None
        if isinstance(ref, str):
            if ref.startswith("#") and ref[1:].isdigit():
                ref = int(ref[1:])
            else:
                art = self.store.find_by_source(collection, ref)
                if art is None and ref.isdigit() and len(ref) < 19:
                    art = self.store.get_article(collection, int(ref))
        if isinstance(ref, int):
            art = self.store.get_article(collection, ref)
        if art is None:
            raise NotFound(f"There is no article {ref!s} in this collection.")
        return art

    def remove(self, collection: str, ref: str | int) -> ArticleInfo:
        """Remove an article; works while the index cannot be saved (disk full), to free space."""
        self.find(collection, ref)  # a clear NotFound before taking the lock
        with self._writing(collection):
            art = self.find(collection, ref)  # again: another writer may have removed or replaced it
            assert art.id is not None
            shelf = self._current_shelf(collection)
            # Hide it from questions first, then delete: no ghost hits in between.
            self._shelves[collection] = shelf.without_articles({art.id})
            try:
                with self.store.session() as s:
                    chunk_ids = [
                        int(c)
                        for c in s.exec(select(Chunk.id).where(Chunk.article_id == art.id)).all()
                        if c is not None
                    ]
                    self.store.delete_article(s, art.id)
                    self.store.bump(s, collection)
                    s.commit()
            except (SQLAlchemyError, StoreError) as e:
                self._shelves[collection] = shelf
                raise StoreError(f"Could not remove the article: {_db_reason(e)}") from e
            gen = self.store.generation(collection)
            shelf.passages.remove(np.asarray(chunk_ids, np.int64))
            self._save_index(collection, shelf.passages, gen)
            self._install(collection, self._shelves[collection], gen)
        return ArticleInfo.of(art)

    def articles(self, collection: str, *, offset: int = 0, limit: int | None = None) -> list[ArticleInfo]:
        check_collection(collection)
        return [ArticleInfo.of(a) for a in self.store.articles(collection, offset=offset, limit=limit)]

    def count(self, collection: str) -> int:
        return self.store.count_articles(check_collection(collection))

    def article_text(self, collection: str, ref: str | int) -> tuple[ArticleInfo, str]:
        art = self.find(collection, ref)
        return ArticleInfo.of(art), art.text

    def search_titles(self, collection: str, needle: str, limit: int = 25) -> list[ArticleInfo]:
        return [
            ArticleInfo.of(a) for a in self.store.search_titles(check_collection(collection), needle, limit)
        ]

    # -- asking -------------------------------------------------------------------------------------

    def _check_question(self, question: str) -> str:
        q = " ".join(question.split())
        if not q:
            raise InputError("Please ask a question.")
        try:
            q.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InputError("The question is not valid text (it holds a lone surrogate, not UTF-8).") from e
        if len(q) > self.settings.max_question_chars:
            raise InputError(
                f"That question is {len(q):,} characters long; please keep it under "
                f"{self.settings.max_question_chars:,}."
            )
        return q

    def ask(
        self,
        collection: str,
        question: str,
        *,
        alternatives: int = 3,
        user_id: str | None = None,
        log_question: bool = False,
        threshold: float | None = None,
        may_threshold: float | None = None,
    ) -> Answer:
        """Answer one question. `threshold` / `may_threshold`: this call's cut-offs instead of the
        library's (a server's own settings); the decline path (related passages) follows them."""
        q = self._check_question(question)
        shelf = self.shelf(collection)
        cut = self._cutoffs(threshold, may_threshold)
        if self.reader is not None:
            ans = self._answer_read(shelf, [q], alternatives, cut=cut)[0]
        else:
            ans = self._answer(shelf, q, self.embedder.encode([q])[0], alternatives, cut=cut)
        if log_question:
            qid = self.store.log_question(
                Question(
                    collection=collection,
                    user_id=user_id,
                    text=q[:2000],
                    answered=ans.answered,
                    article_id=ans.quote.article.id if ans.quote else None,
                    start=ans.quote.start if ans.quote else None,
                    end=ans.quote.end if ans.quote else None,
                    score=ans.confidence,
                )
            )
            ans = dataclasses.replace(ans, question_id=qid)
        return ans

    def ask_many(
        self,
        collection: str,
        questions: Sequence[str],
        *,
        alternatives: int = 0,
        progress: Progress | None = None,
        threshold: float | None = None,
        may_threshold: float | None = None,
    ) -> list[Answer]:
        """Answer many questions with batched encoding passes (used by `ask --batch` and eval)."""
        qs = [self._check_question(q) for q in questions]
        shelf = self.shelf(collection)
        cut = self._cutoffs(threshold, may_threshold)
        if self.reader is not None:
            return self._answer_read(shelf, qs, alternatives, progress, cut=cut)
        qvecs = self._encode(qs, None)
        ranked = [self._rank(shelf, q, v) for q, v in zip(qs, qvecs, strict=True)]
        judged = [self._judge_lite(shelf, rk) if rk else None for rk in ranked]
        # The questions the lite judge is unsure of get the token alignment: their token vectors,
        # and each distinct sentence of their best candidates' neighbourhoods, in batches.
        unsure = [i for i, j in enumerate(judged) if j is not None and j[1] is None]
        rows = sorted({r for i in unsure for r in shelf.neighbourhood(ranked[i].best_row)})  # type: ignore[union-attr]
        sentence_tokens: dict[int, TokenVectors] = {}
        question_tokens: dict[int, TokenVectors] = {}
        if unsure:
            texts = [shelf.sentence_text(r) for r in rows]
            sentence_tokens.update(zip(rows, self.embedder.encode_tokens(texts), strict=True))
            question_tokens.update(
                zip(unsure, self.embedder.encode_tokens([qs[i] for i in unsure]), strict=True)
            )
        out = []
        for i, (q, rk, j) in enumerate(zip(qs, ranked, judged, strict=True)):
            if rk is None or j is None:
                out.append(Answer(q, None, 0.0))
            else:
                inputs, confidence = j
                if confidence is None:
                    ctx = [sentence_tokens[r] for r in shelf.neighbourhood(rk.best_row)]
                    confidence = self._judge_full(shelf, rk, inputs, question_tokens[i], ctx)
                out.append(self._decide(shelf, rk, confidence, alternatives, cut[0]))
            if progress and (i % 200 == 0 or i == len(qs) - 1):
                progress(i + 1, len(qs))
        return out

    def read(self, collection: str, questions: Sequence[str]) -> list[Read | None]:
        """Each question's candidates as the reader sees them (the fit script's view of `ask_many`)."""
        return self._read(self.shelf(collection), [self._check_question(q) for q in questions])

    def _read(self, shelf: Shelf, qs: list[str], progress: Progress | None = None) -> list[Read | None]:
        reader = self.reader
        assert reader is not None
        shortlist = self.answer_model.shortlist
        emb = self.embedder
        out: list[Read | None] = []
        step = 512  # questions per pass: bounds the sentence inputs held at once
        for k in range(0, len(qs), step):
            part = qs[k : k + step]
            enc = emb.encode_states(part, max_tokens=QUESTION_TOKENS, batch_size=self.settings.batch_size)
            ranked = [self._rank(shelf, q, v) for q, v in zip(part, enc.vectors, strict=True)]
            inputs = self._sentence_inputs(
                shelf, {int(rk.rows[i]) for rk in ranked if rk for i in rk.order[:shortlist]}
            )
            rarity = _rarity(shelf)
            for i, (q, rk) in enumerate(zip(part, ranked, strict=True)):
                if rk is None:
                    out.append(None)
                    continue
                qin = reader.prepare(q, enc.states[i], enc.offsets[i], QUESTION_TOKENS)
                short = rk.order[:shortlist]
                rows = [int(rk.rows[j]) for j in short]
                pair = rk.features[short][:, _PAIR] if reader.uses_pair else None
                readings = reader.read(qin, [inputs[r] for r in rows], pair, rarity)
                out.append(Read(q, rk, short, rows, readings, [inputs[r] for r in rows], qin))
            if progress:
                progress(min(k + step, len(qs)), len(qs))
        return out

    def _sentence_inputs(self, shelf: Shelf, rows: set[int]) -> dict[int, ReaderInput]:
        """Reader inputs of these shelf rows: from the cache, the rest encoded in one batch."""
        reader = self.reader
        assert reader is not None
        got: dict[int, ReaderInput] = {}
        need: list[int] = []
        with self._states_lock:
            for r in sorted(rows):
                hit = self._states.get(int(shelf.sentence_ids[r]))
                if hit is None:
                    need.append(r)
                else:
                    got[r] = hit
        if need:
            texts = [shelf.sentence_text(r) for r in need]
            enc = self.embedder.encode_states(
                texts, max_tokens=SENTENCE_TOKENS, batch_size=self.settings.batch_size
            )
            fresh = {
                r: reader.prepare(t, st, off, SENTENCE_TOKENS)
                for r, t, st, off in zip(need, texts, enc.states, enc.offsets, strict=True)
            }
            got.update(fresh)
            with self._states_lock:
                for r, v in fresh.items():
                    self._states.put(int(shelf.sentence_ids[r]), v)
        return got

    def _cutoffs(self, threshold: float | None, may_threshold: float | None) -> tuple[float, float]:
        """(quote confidently from, "this may answer it" from) for one call."""
        t = self.threshold if threshold is None else float(threshold)
        m = self.may_threshold if may_threshold is None else float(may_threshold)
        return t, min(m, t)

    def _answer_read(
        self,
        shelf: Shelf,
        qs: list[str],
        alternatives: int,
        progress: Progress | None = None,
        *,
        cut: tuple[float, float] | None = None,
    ) -> list[Answer]:
        cut = cut or self._cutoffs(None, None)
        out = []
        for q, rd in zip(qs, self._read(shelf, qs, progress), strict=True):
            if rd is None:
                out.append(Answer(q, None, 0.0))
                continue
            combined = self.answer_model.rescore(combine_inputs(rd.readings, rd.ranked.scores[rd.short]))
            out.append(self._decide_read(shelf, rd, combined, alternatives, cut))
        return out

    def _decide_read(
        self, shelf: Shelf, rd: Read, combined: np.ndarray, alternatives: int, cut: tuple[float, float]
    ) -> Answer:
        """The three replies: a confident quote, a "this may answer it" quote, or a decline."""
        model = self.answer_model
        best = int(np.argmax(combined))
        confidence = (
            0.0 if rd.unanswerable(shelf) else model.confidence(rd.judge_inputs(shelf, combined, best))
        )
        order = [int(rd.short[i]) for i in np.argsort(-combined, kind="stable")]
        order += [int(i) for i in rd.ranked.order[len(rd.short) :]]
        rk = rd.ranked
        refs = self._refs(shelf, rk.rows[order[: max(1, alternatives + 1) + 4]])
        quotes = [
            self._quote(shelf, int(rk.rows[i]), float(rk.scores[i]), refs) for i in order[: alternatives + 1]
        ]
        reading, sentence = rd.readings[best], rd.sentences[best]
        top = quotes[0]
        guess = None
        if reading.span is not None:
            a, b = reading.span
            lo, hi = int(sentence.offsets[a][0]), int(sentence.offsets[b][1])
            if 0 <= lo < hi <= len(top.text):
                guess = (top.start + lo, top.start + hi, reading.span_probability)
                if reading.span_probability >= model.span_from:
                    top = dataclasses.replace(top, answer_start=guess[0], answer_end=guess[1])
        answered = confidence >= cut[1]
        related = [] if answered else self._related(shelf, rk.qvec, refs)
        return Answer(
            rd.question,
            top if answered else None,
            confidence,
            top,
            quotes[1:],
            related,
            confident=confidence >= cut[0],
            answer_guess=guess,
        )

    def _answer(
        self,
        shelf: Shelf,
        question: str,
        qvec: np.ndarray,
        alternatives: int,
        *,
        cut: tuple[float, float] | None = None,
    ) -> Answer:
        rk = self._rank(shelf, question, qvec)
        if rk is None:
            return Answer(question, None, 0.0)
        inputs, confidence = self._judge_lite(shelf, rk)
        if confidence is None:
            ctx_rows = shelf.neighbourhood(rk.best_row)
            tokens = self.embedder.encode_tokens([question, *(shelf.sentence_text(r) for r in ctx_rows)])
            confidence = self._judge_full(shelf, rk, inputs, tokens[0], tokens[1:])
        return self._decide(shelf, rk, confidence, alternatives, (cut or self._cutoffs(None, None))[0])

    def _rank(self, shelf: Shelf, question: str, qvec: np.ndarray) -> Ranked | None:
        """The question's candidate sentences, ranked (None when the collection has none)."""
        st = self.settings
        qterm_ids = shelf.vocab.lookup(terms(question))
        rows = candidate_rows(
            shelf,
            qvec,
            qterm_ids,
            dense_k=st.dense_k,
            lexical_k=st.lexical_k,
            passage_k=st.passage_k,
            exhaustive_limit=st.exhaustive_limit,
        )
        if len(rows) == 0:
            return None
        cands = featurize(shelf, rows, question, qvec)
        weights = self.answer_model.ranker if self.reader is not None else None
        if weights is None:
            scores = self.scorer.rank(cands.features)
        else:
            with np.errstate(invalid="ignore", over="ignore"):  # spurious BLAS flags, see featurize
                scores = np.nan_to_num(cands.features @ weights, nan=-1e9)
        return Ranked(question, qvec, rows, cands.features, scores, np.argsort(-scores))

    def _judge_lite(self, shelf: Shelf, rk: Ranked) -> tuple[np.ndarray, float | None]:
        """The judge's inputs without the alignment, and the lite judge's confidence, or None when
        the full judge must decide (the lite one is unsure, or there is none)."""
        evidence = judge_evidence(shelf, rk.question, rk.best_row, rk.runner_up)
        inputs = judge_features(rk.features, rk.scores, evidence, np.zeros(len(ALIGNMENT), np.float32))
        lite = self.scorer.lite_confidence(inputs)
        return inputs, (None if lite is None or self.scorer.needs_alignment(lite, self.threshold) else lite)

    def _judge_full(
        self,
        shelf: Shelf,
        rk: Ranked,
        inputs: np.ndarray,
        question_tokens: TokenVectors,
        context_tokens: list[TokenVectors],
    ) -> float:
        sentence_tokens = context_tokens[shelf.neighbourhood(rk.best_row).index(rk.best_row)]
        alignment = alignment_features(question_tokens, sentence_tokens, context_tokens, rk.qvec)
        return self.scorer.full.probability(with_alignment(inputs, alignment))

    def _decide(
        self, shelf: Shelf, rk: Ranked, confidence: float, alternatives: int, threshold: float | None = None
    ) -> Answer:
        """Quote the best candidate if the confidence reaches the threshold, else decline."""
        rows, order, scores = rk.rows, rk.order, rk.scores
        refs = self._refs(shelf, rows[order[: max(1, alternatives + 1) + 4]])
        quotes = [self._quote(shelf, int(rows[i]), float(scores[i]), refs) for i in order[: alternatives + 1]]
        best = quotes[0]
        related: list[Quote] = []
        answered = confidence >= (self.threshold if threshold is None else threshold)
        if not answered:
            related = self._related(shelf, rk.qvec, refs)
        return Answer(rk.question, best if answered else None, confidence, best, quotes[1:], related)

    def _refs(self, shelf: Shelf, rows: Iterable[int]) -> dict[int, ArticleRef]:
        ids = {int(shelf.article_ids[r]) for r in rows}
        return {i: ArticleRef(i, shelf.titles[i], *shelf.refs.get(i, (None, None))) for i in ids}

    def _quote(self, shelf: Shelf, row: int, score: float, refs: dict[int, ArticleRef]) -> Quote:
        aid = int(shelf.article_ids[row])
        ref = refs.get(aid) or self._refs(shelf, [row])[aid]
        refs[aid] = ref
        start, end = int(shelf.starts[row]), int(shelf.ends[row])
        return Quote(shelf.texts[aid][start:end], ref, start, end, score, page=self._page(shelf, aid, start))

    def _page(self, shelf: Shelf, article_id: int, start: int) -> int | None:
        """The 1-based PDF page holding offset `start` (None for other kinds); page starts are read
        from SQL once per article and generation."""
        key = (shelf.collection, self._gens.get(shelf.collection, -1), article_id)
        with self._states_lock:
            pages = self._pages.get(key)
        if pages is None:
            pages = self.store.article_pages(article_id)
            with self._states_lock:
                self._pages[key] = pages
                while len(self._pages) > 4_096:
                    self._pages.popitem(last=False)
        return bisect.bisect_right(pages, start) if pages else None

    def _related(self, shelf: Shelf, qvec: np.ndarray, refs: dict[int, ArticleRef]) -> list[Quote]:
        scores, ids = shelf.passages.search(qvec, 3)
        out = []
        for sc, cid in zip(scores[0].tolist(), ids[0].tolist(), strict=True):
            rows = shelf.chunk_rows(cid)
            if not rows:
                continue
            aid = int(shelf.article_ids[rows[0]])
            if aid not in refs:
                refs.update(self._refs(shelf, [rows[0]]))
            start, end = int(shelf.starts[rows[0]]), int(shelf.ends[rows[-1]])
            out.append(
                Quote(
                    shelf.texts[aid][start:end],
                    refs[aid],
                    start,
                    end,
                    float(sc),
                    page=self._page(shelf, aid, start),
                )
            )
        return out

    # -- maintenance ------------------------------------------------------------------------------

    def _rebuild_in_background(self, collection: str) -> None:
        """Switch an exact index that has grown past `ivf_threshold` to IVF without blocking anyone:
        questions keep using the current shelf until the rebuilt one is swapped in."""
        with self._shelves_lock:
            if collection in self._background:
                return
            self._background.add(collection)

        def work() -> None:
            try:
                self.rebuild(collection)
            except Exception:
                log.exception("background rebuild of collection %s failed", collection)
            finally:
                with self._shelves_lock:
                    self._background.discard(collection)

        threading.Thread(target=work, name=f"quotebot-rebuild-{collection}", daemon=True).start()

    def rebuild(self, collection: str, *, reencode: bool = False, progress: Progress | None = None) -> Shelf:
        """Rebuild a collection's index from SQL (re-embedding the sentences if `reencode`) and swap it in;
        questions keep being answered from the old shelf until the swap."""
        check_collection(collection)
        self._check_model()
        if reencode:
            self._reencode(collection, progress)
        gen = self.store.generation(collection)
        rows, chunk_rows = self._read_rows(collection)
        index = self._build_index(rows, chunk_rows)
        shelf = Shelf.from_rows(collection, self.embedder.dim, rows, index)
        with self._writing(collection):
            # Writes that landed while we were building are in SQL: if any did, read again.
            if self.store.generation(collection) != gen:
                gen = self.store.generation(collection)
                rows, chunk_rows = self._read_rows(collection)
                index = self._build_index(rows, chunk_rows)
                shelf = Shelf.from_rows(collection, self.embedder.dim, rows, index)
            self._save_index(collection, index, gen)
            shelf = self._install(collection, shelf, gen)
        return shelf

    def _reencode(self, collection: str, progress: Progress | None = None) -> None:
        texts = self.store.article_texts(collection)
        srows = self.store.sentence_rows(collection)
        sentences = [texts[r[1]][1][r[3] : r[4]] for r in srows]
        vecs = self._encode(sentences, progress)
        with self.store.session() as s:
            for r, v in zip(srows, vecs, strict=True):
                row = s.get(Sentence, r[0])
                if row is not None:
                    row.vector = vector_bytes(v)
                    s.add(row)
            self.store.bump(s, collection)
            s.commit()

    def collections(self) -> list[str]:
        return self.store.collections()

    def stats(self, collection: str) -> dict[str, object]:
        shelf = self.shelf(collection)
        counts = self.store.counts(collection)
        path = self._index_path(collection)
        db_path = self.settings.db_url.removeprefix("sqlite:///")
        return {
            "collection": collection,
            "articles": counts["articles"],
            "sentences": counts["sentences"],
            "chunks": counts["chunks"],
            "vectors": shelf.passages.count,
            "model": self.embedder.model_id,
            "dim": self.embedder.dim,
            "index_type": shelf.passages.kind,
            "index_bytes": path.stat().st_size if path.exists() else 0,
            "database": self.store.engine.url.render_as_string(hide_password=True),
            "database_bytes": Path(db_path).stat().st_size if Path(db_path).exists() else None,
            "threshold": self.threshold,
        }

    def doctor(self) -> list[str]:
        """Problems found when comparing SQL with the index files (empty when all agree)."""
        problems: list[str] = []
        damage = self.store.damage()
        if damage:
            return [damage if "damaged" in damage else f"the database file is damaged: {damage}"]
        for c in self.store.collections():
            path = self._index_path(c)
            chunk_ids = {r[0] for r in self.store.chunk_rows(c)}
            meta = VectorIndex.read_meta(path)
            index = VectorIndex.load(path)
            if index is None or meta is None:
                problems.append(f"collection {c}: index file {path} is missing or unreadable")
                continue
            gen = self.store.generation(c)
            if meta.generation != gen:
                problems.append(
                    f"collection {c}: index saved at generation {meta.generation}, the database is at "
                    f"{gen} (stale: written before the last change was saved)"
                )
            if meta.model_id != self.settings_model_id():
                problems.append(
                    f"collection {c}: index built by {meta.model_id!r}, configured "
                    f"{self.settings_model_id()!r}"
                )
            if index.count != len(chunk_ids):
                problems.append(
                    f"collection {c}: index holds {index.count} vectors, SQL has {len(chunk_ids)} passages"
                )
            else:
                ids = _index_ids(index)
                if ids is not None and set(ids) != chunk_ids:
                    problems.append(
                        f"collection {c}: index ids differ from SQL passage ids "
                        f"({len(set(ids) - chunk_ids)} extra, {len(chunk_ids - set(ids))} missing)"
                    )
            with self.store.session() as s:
                bad = s.exec(
                    select(Sentence.id)
                    .join(Article, col(Article.id) == Sentence.article_id)
                    .where(Sentence.collection == c)
                    .where((col(Sentence.start) < 0) | (col(Sentence.end) <= col(Sentence.start)))
                    .limit(1)
                ).first()
            if bad is not None:
                problems.append(f"collection {c}: sentence {bad} has invalid offsets")
        for f in sorted(self.settings.index_dir.glob("*.faiss")) if self.settings.index_dir.exists() else []:
            if f.stem not in self.store.collections():
                ix = VectorIndex.load(f)
                if ix is not None and ix.count > 0:
                    problems.append(
                        f"index file {f} holds {ix.count} vectors of a collection with no articles"
                    )
        return problems

    def settings_model_id(self) -> str:
        from index.embedding import _BUNDLED_ALIASES

        if self._embedder is not None:  # an embedder handed in (or already loaded) is the one in use
            return self._embedder.model_id
        m = self.settings.model
        return DEFAULT_MODEL if m in _BUNDLED_ALIASES else m

    # -- questions and feedback -----------------------------------------------------------------

    def record_feedback(self, collection: str, question_id: int, user_id: str, helpful: bool) -> None:
        if self.store.get_question(collection, question_id) is None:
            raise NotFound("That question is no longer on record.")
        self.store.record_feedback(collection, question_id, user_id, helpful)

    def unanswered(self, collection: str, limit: int = 20) -> list[tuple[Question, int]]:
        return self.store.unanswered(check_collection(collection), limit)

    def question(self, collection: str, question_id: int) -> Question:
        q = self.store.get_question(collection, question_id)
        if q is None:
            raise NotFound("That question is no longer on record.")
        return q


@dataclass(frozen=True)
class Read:
    """One question's shortlist as the reader saw it: ranker order, rows, readings, inputs."""

    question: str
    ranked: Ranked
    short: np.ndarray  # indices into ranked.rows, in ranker order
    rows: list[int]
    readings: list[Reading]
    sentences: list[ReaderInput]
    question_input: ReaderInput

    def judge_inputs(self, shelf: Shelf, combined: np.ndarray, best: int) -> np.ndarray:
        f = self.ranked.features[int(self.short[best])]
        second = [self.rows[i] for i in np.argsort(-combined, kind="stable")[1:2]]
        evidence = judge_evidence(shelf, self.question, self.rows[best], second[0] if second else None)
        return judge_inputs(
            self.readings,
            combined,
            best,
            dense=float(f[_DENSE]),
            lex=float(f[_LEX]),
            missing_key=float(f[_MISSING]),
            question_terms=len(set(terms(self.question))),
            question_tokens=len(self.question_input.states),
            evidence=evidence,
        )

    def unanswerable(self, shelf: Shelf) -> bool:
        """No word of the question occurs in the collection (".", "yo", "k"): nothing to quote."""
        return not shelf.vocab.lookup(terms(self.question))


_DENSE, _LEX, _MISSING = (FEATURES.index(k) for k in ("dense", "lex", "missing_key"))
_PAIR = [FEATURES.index(k) for k in PAIR_FEATURES]


def _rarity(shelf: Shelf) -> Callable[[str], float]:
    """A term's rarity in the shelf's sentences: its BM25 idf over that of a term found once (as
    index.answering.reader.bm25_rarity computes it for training); unseen terms are rarest."""
    idf, ids = shelf.bm25.idf, shelf.vocab.ids
    top = max(bm25_rarity_top(float(shelf.size)), 1e-9)

    def rarity(term: str) -> float:
        j = ids.get(term)
        return 1.0 if j is None or j >= len(idf) else float(min(1.0, max(0.0, idf[j] / top)))

    return rarity


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


def _name(doc: Document) -> str:
    return repr(doc.source_id) if doc.source_id else (doc.title or "The article")


def _check_document(doc: Document) -> None:
    """The rules every engine can store, checked before anything is written (SQLite would take a NUL
    or a 600-character source id that PostgreSQL refuses)."""
    if not doc.text.strip():
        raise InputError(f"{_name(doc)} has no text.")
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


def _db_reason(e: BaseException) -> str:
    cause = e.__cause__ if isinstance(e, StoreError) and e.__cause__ is not None else e
    return describe_db_error(cause) if isinstance(cause, SQLAlchemyError) else str(e)


def _os_reason(e: OSError) -> str:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    return e.strerror or str(e)


def _clip(s: str | None, n: int) -> str | None:
    if s is None:
        return None
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


def _chunk_tuples(rows: ShelfRows) -> Iterable[tuple[int, int, int, int]]:
    for cid, (article, first, last) in rows.chunks.items():
        yield cid, article, first, last


def _passage_vectors(
    rows: ShelfRows, chunk_rows: Sequence[tuple[int, int, int, int]], dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Passage vectors as the normalised mean of their sentences' vectors (no second encoding pass)."""
    if not chunk_rows:
        return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
    arts, first_rows = np.unique(rows.article_ids, return_index=True)
    base = dict(zip(arts.tolist(), first_rows.tolist(), strict=True))
    ids = np.empty(len(chunk_rows), np.int64)
    out = np.empty((len(chunk_rows), dim), np.float32)
    cums = np.vstack([np.zeros((1, dim), np.float64), np.cumsum(rows.vectors, axis=0, dtype=np.float64)])
    for i, (cid, aid, first, last) in enumerate(chunk_rows):
        b = base[aid]
        ids[i] = cid
        out[i] = cums[b + last + 1] - cums[b + first]
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
    return ids, out


def _same_ids(index: VectorIndex, chunk_rows: Sequence[tuple[int, int, int, int]]) -> bool:
    """Whether the index holds exactly the SQL passages' ids (True when the ids cannot be read)."""
    if index.count != len(chunk_rows):
        return False
    ids = _index_ids(index)
    if ids is None:
        return True
    want = np.fromiter((c[0] for c in chunk_rows), np.int64, len(chunk_rows))
    return bool(np.array_equal(np.sort(np.asarray(ids, np.int64)), np.sort(want)))


def _index_ids(index: VectorIndex) -> list[int] | None:
    import faiss

    raw = index._index
    try:
        if isinstance(raw, faiss.IndexIDMap2 | faiss.IndexIDMap):
            return faiss.vector_to_array(raw.id_map).tolist()
        ivf = faiss.extract_index_ivf(raw)
        lists = ivf.invlists
        assert lists is not None
        out: list[int] = []
        for lst in range(ivf.nlist):
            n = lists.list_size(lst)
            if n:
                ptr = lists.get_ids(lst)
                out.extend(faiss.rev_swig_ptr(ptr, n).tolist())
        return out
    except (RuntimeError, AttributeError):
        return None
