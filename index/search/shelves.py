"""The shelves in memory: one `Shelf` per collection, loaded from its index file or built from SQL,
kept current, saved, and rebuilt; and the locks that serialise a collection's writers.

Several processes may share one data directory (the bot and a `quotebot ingest`): writers of a
collection take its thread lock, an advisory file lock (`index/<collection>.lock`, fcntl.flock,
released by the kernel if the process dies) and, on PostgreSQL, an advisory lock for other hosts
(`writing`). Every write bumps the collection's generation in its SQL transaction; the index file
records the generation it was saved at. A process whose shelf is older than SQL's generation reloads
it (`get`, without waiting on a writer), and an index file of another generation is never used: it
is rebuilt from SQL. The index file is a cache: when it cannot be written (disk full) the shelf in
memory is used, a warning logged, and the next write saves again.

At most `max_loaded_collections` shelves stay in memory (least recently used dropped). An exact
index that grows past `ivf_threshold` is rebuilt as IVF in the background, questions answered from
the current shelf meanwhile.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from index.embedding import Embedder, encode_in_steps
from index.errors import StoreError, os_reason
from index.search.shelf import Shelf, ShelfRows, passage_vectors
from index.settings import LibrarySettings
from index.storage.database import check_collection
from index.storage.store import PassageRow, Store, vectors_from_bytes
from index.storage.vectors import FLAT, VectorIndex, index_file
from index.types import Progress

log = logging.getLogger(__name__)


class Shelves:
    """The loaded shelves of every collection (thread-safe)."""

    def __init__(self, settings: LibrarySettings, store: Store, embedder: Callable[[], Embedder]) -> None:
        self.settings = settings
        self.store = store
        self._get_embedder = embedder
        # Most recently used last; at most settings.max_loaded_collections are kept in memory.
        self._shelves: OrderedDict[str, Shelf] = OrderedDict()
        self._shelves_lock = threading.Lock()
        self._write_locks: dict[str, threading.Lock] = {}
        self._gens: dict[str, int] = {}  # the SQL generation each shelf in memory reflects
        self._unsaved: set[str] = set()  # collections whose index file is behind memory (save failed)
        self._model_checked = False
        self._background: set[str] = set()
        self._pages: OrderedDict[tuple[str, int, int], list[int]] = OrderedDict()  # PDF page starts
        self._pages_lock = threading.Lock()
        self.clean_temporary_files()

    @property
    def embedder(self) -> Embedder:
        return self._get_embedder()

    def hide(self, collection: str, shelf: Shelf) -> None:
        """Put `shelf` in place for questions now, before SQL commits (e.g. without the articles a
        write is about to delete: no ghost quotes); `install` publishes the committed state."""
        self._shelves[collection] = shelf

    def mark_unsaved(self, collection: str) -> None:
        """The index file is behind memory (a save skipped between the batches of a long ingest)."""
        self._unsaved.add(collection)

    def page_starts(self, collection: str, article_id: int) -> list[int]:
        """A PDF article's page start offsets (empty for other kinds), read from SQL once per
        article and generation."""
        key = (collection, self._gens.get(collection, -1), article_id)
        with self._pages_lock:
            pages = self._pages.get(key)
        if pages is None:
            pages = self.store.article_pages(article_id)
            with self._pages_lock:
                self._pages[key] = pages
                while len(self._pages) > 4_096:
                    self._pages.popitem(last=False)
        return pages

    def lock(self, collection: str) -> threading.Lock:
        with self._shelves_lock:
            return self._write_locks.setdefault(collection, threading.Lock())

    def index_path(self, collection: str) -> Path:
        return index_file(self.settings.index_dir, collection)

    def _lock_fd(self, collection: str) -> int:
        path = self.settings.index_dir / f"{collection}.lock"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreError(f"Cannot open the lock file {path}: {os_reason(e)}") from e

    @contextmanager
    def writing(self, collection: str) -> Iterator[None]:
        """Serialise writers of one collection: threads by a lock, processes by an advisory file lock."""
        with self.lock(collection):
            fd = self._lock_fd(collection)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                with self.store.collection_lock(collection):  # other hosts (PostgreSQL)
                    yield
            finally:
                os.close(fd)  # releases the flock

    def save_index(self, collection: str, index: VectorIndex, generation: int) -> bool:
        """Write the index file at `generation`; on failure (disk full) warn and keep answering from
        memory: the file stays behind SQL's generation, so no process trusts it, and the next write
        saves again."""
        try:
            index.save(self.index_path(collection), generation)
        except OSError as e:
            self._unsaved.add(collection)
            log.warning(
                "could not save the index of collection %s (%s); answering from memory, "
                "it is saved again on the next change",
                collection,
                os_reason(e),
            )
            return False
        self._unsaved.discard(collection)
        return True

    def _save_if_idle(self, collection: str, index: VectorIndex, generation: int) -> None:
        """Save an index a reader rebuilt, when no writer holds the collection and SQL is still at
        `generation` (never wait: a writer will save its own)."""
        lock = self.lock(collection)
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
                        self.save_index(collection, index, generation)
            finally:
                os.close(fd)
        finally:
            lock.release()

    def install(self, collection: str, shelf: Shelf, generation: int) -> Shelf:
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

    def current(self, collection: str) -> Shelf:
        """The shelf as SQL holds the collection now; call inside `_writing` (no writer can move SQL)."""
        shelf = self._shelves.get(collection)
        gen = self.store.generation(collection)
        if shelf is not None and self._gens.get(collection) == gen:
            return shelf
        self.check_model()
        rows, passage_rows = self.read_rows(collection)
        return self._shelf_at(collection, rows, passage_rows, gen, locked=True)

    def _shelf_at(
        self,
        collection: str,
        rows: ShelfRows,
        passage_rows: list[PassageRow],
        gen: int,
        *,
        locked: bool,
    ) -> Shelf:
        """Publish the shelf of rows read at SQL generation `gen`, from the index file when it is that
        generation's, else built from the rows and saved (`locked`: this thread holds the write lock;
        otherwise only when no writer does)."""
        index = self._stored_index(collection, passage_rows, gen)
        rebuilt = index is None
        if index is None:
            index = self._build_index(rows, passage_rows)
            if locked:
                self.save_index(collection, index, gen)
        shelf = self.install(collection, Shelf.from_rows(collection, self.embedder.dim, rows, index), gen)
        if rebuilt and not locked and shelf.passages is index:
            self._save_if_idle(collection, index, gen)
        self.grown(collection, shelf)
        return shelf

    def grown(self, collection: str, shelf: Shelf) -> None:
        if shelf.passages.kind == FLAT and shelf.passages.count >= self.settings.ivf_threshold:
            self.rebuild_in_background(collection)  # e.g. the threshold was lowered

    def clean_temporary_files(self) -> None:
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
    def loaded(self) -> list[str]:
        """Collections whose shelves are in memory, least recently used first."""
        return list(self._shelves)

    def get(self, collection: str) -> Shelf:
        """The collection's current shelf, loading (or rebuilding) it on first use, and reloading it
        when SQL has moved on since (another process wrote; one small query per question).

        Never waits on a writer: while this process writes the collection, questions use the shelf
        in place (the writer publishes the next); another process's write is read from SQL."""
        check_collection(collection)
        shelf = self._shelves.get(collection)
        if shelf is not None and (
            self.lock(collection).locked() or self._gens.get(collection) == self.store.generation(collection)
        ):
            with self._shelves_lock:
                if collection in self._shelves:
                    self._shelves.move_to_end(collection)
            return shelf
        return self._refresh(collection)

    def _refresh(self, collection: str) -> Shelf:
        """Load the collection as SQL holds it now, without the write lock: rows are read between two
        reads of the generation, again if a writer committed in between."""
        self.check_model()
        for _ in range(5):
            gen = self.store.generation(collection)
            rows, passage_rows = self.read_rows(collection)
            if self.store.generation(collection) == gen:
                break
        else:  # a writer commits faster than we read: wait for a quiet moment
            with self.writing(collection):
                return self.current(collection)
        return self._shelf_at(collection, rows, passage_rows, gen, locked=False)

    def read_rows(self, collection: str) -> tuple[ShelfRows, list[PassageRow]]:
        dim = self.embedder.dim
        srows = self.store.sentence_rows(collection)
        texts = self.store.article_texts(collection)
        passage_rows = self.store.passage_rows(collection)
        rows = ShelfRows(
            np.array([r.id for r in srows], np.int64),
            np.array([r.article_id for r in srows], np.int64),
            np.array([r.start for r in srows], np.int64),
            np.array([r.end for r in srows], np.int64),
            vectors_from_bytes([r.vector for r in srows], dim),
            {a: t[1] for a, t in texts.items()},
            {a: t[0] for a, t in texts.items()},
            {c.id: (c.article_id, c.first, c.last) for c in passage_rows},
            self.store.article_refs(collection),
        )
        return rows, passage_rows

    def _stored_index(
        self, collection: str, passage_rows: Sequence[PassageRow], generation: int
    ) -> VectorIndex | None:
        """The saved index when it is exactly SQL's at `generation`, else None (the caller rebuilds)."""
        path = self.index_path(collection)
        index = VectorIndex.load(path, nprobe=self.settings.nprobe)
        reason = None
        if index is None:
            reason = "missing or unreadable"
        elif index.model_id != self.embedder.model_id:
            reason = f"built by model {index.model_id!r}"
        elif index.generation != generation:
            # A crash (or a full disk) between the SQL commit and the index save.
            reason = f"at generation {index.generation}, the database at {generation}"
        elif index.count != len(passage_rows):
            reason = f"holds {index.count} vectors for {len(passage_rows)} passages"
        elif not index.holds_exactly([c.id for c in passage_rows]):
            reason = "holding other passages than SQL"
        if reason is None:
            return index
        if path.exists() or passage_rows:
            log.warning("index of collection %s is %s: rebuilding from SQL", collection, reason)
        return None

    def _build_index(self, rows: ShelfRows, passage_rows: Sequence[PassageRow]) -> VectorIndex:
        ids, vecs = passage_vectors(rows, passage_rows, self.embedder.dim)
        return VectorIndex.build(
            ids,
            vecs,
            model_id=self.embedder.model_id,
            dim=self.embedder.dim,
            ivf_threshold=self.settings.ivf_threshold,
            nprobe=self.settings.nprobe,
        )

    def rebuild_in_background(self, collection: str) -> None:
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
        self.check_model()
        if reencode:
            self.reencode(collection, progress)
        gen = self.store.generation(collection)
        rows, passage_rows = self.read_rows(collection)
        index = self._build_index(rows, passage_rows)
        shelf = Shelf.from_rows(collection, self.embedder.dim, rows, index)
        with self.writing(collection):
            # Writes that landed while we were building are in SQL: if any did, read again.
            if self.store.generation(collection) != gen:
                gen = self.store.generation(collection)
                rows, passage_rows = self.read_rows(collection)
                index = self._build_index(rows, passage_rows)
                shelf = Shelf.from_rows(collection, self.embedder.dim, rows, index)
            self.save_index(collection, index, gen)
            shelf = self.install(collection, shelf, gen)
        return shelf

    def check_model(self) -> None:
        """Re-encode stored sentences once if they were embedded by another model than the configured one."""
        if self._model_checked:
            return
        with self._shelves_lock:
            if self._model_checked:
                return
            stored = self.store.get_meta("model")
            if stored is not None and stored != self.embedder.model_id:
                log.warning(
                    "stored vectors come from model %r, configured %r: re-encoding",
                    stored,
                    self.embedder.model_id,
                )
                self._model_checked = True
                for c in self.store.collections():
                    self.reencode(c)
            if stored != self.embedder.model_id:  # a write only when it changes (readers never write)
                self.store.set_meta("model", self.embedder.model_id)
            self._model_checked = True

    def reencode(self, collection: str, progress: Progress | None = None) -> None:
        texts = self.store.article_texts(collection)
        srows = self.store.sentence_rows(collection)
        sentences = [texts[r.article_id][1][r.start : r.end] for r in srows]
        vecs = encode_in_steps(self.embedder, sentences, self.settings.batch_size, progress)
        self.store.set_vectors(collection, [r.id for r in srows], vecs)
