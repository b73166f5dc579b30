"""The Library: the one object the bot, the command line and the fit scripts talk to.

A facade: each public method is a few lines handing the work to the room that does it.

    storage.Store            SQL, the source of truth (articles, sentences, passages, questions)
    search.Shelves           the in-memory shelf of each collection (loaded, kept current, saved,
                             rebuilt) and the per-collection write locks
    writing.Writer           documents -> sentences -> vectors -> SQL -> index, in bounded batches;
                             removal
    adding.Adder             files, folders, archives, pastes, URLs, sitemaps, feeds, refresh
    answering.Pipeline       questions -> the three replies (one pipeline for ask, ask_many, the
                             fit scripts and a thread's follow-ups)
    maintenance              doctor

All methods are synchronous and thread-safe: questions read an immutable shelf snapshot; writes to
one collection are serialised by that collection's lock (and across processes by a file lock and,
on PostgreSQL, an advisory lock) and publish a new shelf when their SQL transaction has committed.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from index import maintenance
from index.adding import Adder
from index.answering import followup
from index.answering.model import AnswerModel, Read
from index.answering.pipeline import Pipeline
from index.answering.reader import Reader
from index.answering.scorer import Scorer
from index.embedding import DEFAULT_MODEL, Embedder
from index.errors import NotFound
from index.search.shelf import Shelf
from index.search.shelves import Shelves
from index.settings import LibrarySettings
from index.storage.database import check_collection
from index.storage.models import Article, Question
from index.storage.store import Store
from index.types import (
    AddResult,
    Answer,
    ArticleInfo,
    BulkResult,
    CollectionStats,
    Document,
    Progress,
    RefreshResult,
)
from index.writing import Writer


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
        """`embedder`: instead of the configured model (tests); `scorer` / `reader` / `answer_model`:
        instead of the shipped ones (tests; the fit scripts)."""
        self.settings = settings
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        self.store = Store(settings.db_url)
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self.shelves = Shelves(settings, self.store, lambda: self.embedder)
        self.writer = Writer(settings, self.store, self.shelves, lambda: self.embedder)
        self.adder = Adder(settings, self.store, self.writer)
        self.pipeline = Pipeline(
            settings,
            lambda: self.embedder,
            self.shelves.page_starts,
            scorer=scorer,
            reader=reader,
            answer_model=answer_model,
        )

    # -- the model -------------------------------------------------------------------------------

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
        """The trained reader, when enabled, shipped and fitted on this library's embedding model."""
        return self.pipeline.reader

    @property
    def scorer(self) -> Scorer:
        return self.pipeline.scorer

    @property
    def answer_model(self) -> AnswerModel:
        return self.pipeline.answer_model

    @answer_model.setter
    def answer_model(self, model: AnswerModel) -> None:
        self.pipeline.answer_model = model  # the fit script tries candidate models on one library

    def warm_up(self) -> None:
        """Load the model and the reader and run each once now (start-up), not on a first question."""
        self.pipeline.warm_up()

    @property
    def threshold(self) -> float:
        """Quote confidently from this confidence."""
        return self.pipeline.threshold

    @property
    def may_threshold(self) -> float:
        """Below `threshold`, quotes from here on are shown as "this may answer it"."""
        return self.pipeline.may_threshold

    def settings_model_id(self) -> str:
        """The id of the embedding model in use (without loading it)."""
        from index.embedding import _BUNDLED_ALIASES

        if self._embedder is not None:  # an embedder handed in (or already loaded) is the one in use
            return self._embedder.model_id
        m = self.settings.model
        return DEFAULT_MODEL if m in _BUNDLED_ALIASES else m

    def close(self) -> None:
        self.store.close()

    # -- shelves -----------------------------------------------------------------------------------

    def shelf(self, collection: str) -> Shelf:
        """The collection's current shelf (loaded, or reloaded when another process wrote)."""
        return self.shelves.get(collection)

    @property
    def loaded_collections(self) -> list[str]:
        """Collections whose shelves are in memory, least recently used first."""
        return self.shelves.loaded

    def rebuild(self, collection: str, *, reencode: bool = False, progress: Progress | None = None) -> Shelf:
        """Rebuild a collection's index from SQL (re-embedding its sentences if `reencode`) and swap
        it in; questions keep being answered from the old shelf until the swap."""
        return self.shelves.rebuild(collection, reencode=reencode, progress=progress)

    # -- adding and removing -------------------------------------------------------------------

    def add_documents(
        self,
        collection: str,
        docs: Sequence[Document],
        *,
        added_by: str | None = None,
        progress: Progress | None = None,
        errors: list[tuple[int, str]] | None = None,
    ) -> list[AddResult]:
        """Add articles (see `Writer.add_documents`): "added", "unchanged" (the same text is stored)
        or "replaced" (the same source id is); a bad one raises InputError, or with `errors` is
        listed there as (index in `docs`, message) and skipped."""
        return self.writer.add_documents(
            collection, docs, added_by=added_by, progress=progress, errors=errors
        )

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
        """Add an uploaded file (a .zip archive adds its files), keyed by `key` or its file name."""
        return self.adder.add_bytes(
            collection,
            data,
            filename=filename,
            content_type=content_type,
            url=url,
            title=title,
            added_by=added_by,
            progress=progress,
            key=key,
            keyed_by_filename=keyed_by_filename,
            exact=exact,
        )

    @staticmethod
    def read_path(path: Path, limit: int | None) -> bytes:
        """A file's bytes, refused in words when missing, a folder, unreadable or over `limit`."""
        return Adder.read_path(path, limit)

    def add_file(
        self,
        collection: str,
        path: Path,
        *,
        root: Path | None = None,
        added_by: str | None = None,
        progress: Progress | None = None,
    ) -> list[AddResult]:
        """Add one file (a folder or a .zip: their files), keyed by its path (relative to `root`)."""
        return self.adder.add_file(collection, path, root=root, added_by=added_by, progress=progress)

    def add_folder(
        self,
        collection: str,
        root: Path,
        *,
        glob: str | None = None,
        added_by: str | None = None,
        progress: Progress | None = None,
    ) -> BulkResult:
        """Add every supported file under `root` (or those matching `glob`)."""
        return self.adder.add_folder(collection, root, glob=glob, added_by=added_by, progress=progress)

    def add_zip(
        self,
        collection: str,
        data: bytes,
        name: str,
        *,
        added_by: str | None = None,
        progress: Progress | None = None,
    ) -> BulkResult:
        """Add the supported files of a zip archive, keyed "<archive>/<member path>"."""
        return self.adder.add_zip(collection, data, name, added_by=added_by, progress=progress)

    def add_text(
        self,
        collection: str,
        text: str,
        *,
        title: str | None = None,
        url: str | None = None,
        added_by: str | None = None,
    ) -> AddResult:
        """Add pasted text, stored as given, keyed by its title."""
        return self.adder.add_text(collection, text, title=title, url=url, added_by=added_by)

    def add_url(self, collection: str, url: str, *, added_by: str | None = None) -> AddResult:
        """Fetch and add a web page (or a PDF, text...), keyed by its canonical URL."""
        return self.adder.add_url(collection, url, added_by=added_by)

    def add_sitemap(
        self, collection: str, url: str, *, added_by: str | None = None, progress: Progress | None = None
    ) -> BulkResult:
        """Fetch and add every page a sitemap lists (at most `max_bulk_urls`)."""
        return self.adder.add_sitemap(collection, url, added_by=added_by, progress=progress)

    def add_feed(
        self, collection: str, url: str, *, added_by: str | None = None, progress: Progress | None = None
    ) -> BulkResult:
        """Fetch and add the page of every entry of an RSS or Atom feed."""
        return self.adder.add_feed(collection, url, added_by=added_by, progress=progress)

    def refresh(
        self, collection: str, *, remove_gone: bool = False, progress: Progress | None = None
    ) -> RefreshResult:
        """Fetch every web article again (conditional GET), replacing the changed ones."""
        return self.adder.refresh(collection, remove_gone=remove_gone, progress=progress)

    def remove(self, collection: str, ref: str | int) -> ArticleInfo:
        """Remove an article (by source id, or "#N" / N database id)."""
        return self.writer.remove(collection, ref)

    # -- listing ---------------------------------------------------------------------------------

    def find(self, collection: str, ref: str | int) -> Article:
        """An article by source id, else by database id ("#12" or an int: always database id 12)."""
        return self.store.find(collection, ref)

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

    def collections(self) -> list[str]:
        return self.store.collections()

    # -- asking ----------------------------------------------------------------------------------

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
        context: followup.Context | None = None,
    ) -> Answer:
        """Answer one question (a batch of one). `threshold` / `may_threshold`: this call's cut-offs
        instead of the library's (a server's own settings); `context`: what the thread it is asked
        in was last answered with (a follow-up favours that article)."""
        q = self.pipeline.check_question(question)
        shelf = self.shelf(collection)
        cut = self.pipeline.cutoffs(threshold, may_threshold)
        if context is None:
            answer = self.pipeline.answer(shelf, [q], alternatives=alternatives, cut=cut)[0]
        else:
            answer = followup.ask_follow_up(
                self.pipeline, shelf, q, context, alternatives=alternatives, cut=cut
            )
        return self.log_answer(collection, answer, user_id) if log_question else answer

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
        """Answer many questions with batched encoding passes (`ask --batch`, eval)."""
        qs = [self.pipeline.check_question(q) for q in questions]
        cut = self.pipeline.cutoffs(threshold, may_threshold)
        return self.pipeline.answer(
            self.shelf(collection), qs, alternatives=alternatives, cut=cut, progress=progress
        )

    def read(self, collection: str, questions: Sequence[str]) -> list[Read | None]:
        """Each question's shortlist as the reader sees it (the fit script's view of `ask_many`)."""
        qs = [self.pipeline.check_question(q) for q in questions]
        return self.pipeline.read(self.shelf(collection), qs)

    def log_answer(self, collection: str, answer: Answer, user_id: str | None) -> Answer:
        """Log a question with what it got (quoted or declined); the answer with its `question_id`."""
        q = answer.quote
        qid = self.store.log_question(
            Question(
                collection=collection,
                user_id=user_id,
                text=answer.question[:2000],
                answered=q is not None,
                article_id=q.article.id if q else None,
                start=q.start if q else None,
                end=q.end if q else None,
                score=answer.confidence,
            )
        )
        return dataclasses.replace(answer, question_id=qid)

    # -- questions and feedback ----------------------------------------------------------------

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

    # -- maintenance -----------------------------------------------------------------------------

    def stats(self, collection: str) -> CollectionStats:
        shelf = self.shelf(collection)
        counts = self.store.counts(collection)
        path = self.shelves.index_path(collection)
        db_path = Path(self.settings.db_url.removeprefix("sqlite:///"))
        return CollectionStats(
            collection=collection,
            articles=counts["articles"],
            sentences=counts["sentences"],
            passages=counts["passages"],
            vectors=shelf.passages.count,
            model=self.embedder.model_id,
            dim=self.embedder.dim,
            index_type=shelf.passages.kind,
            index_bytes=path.stat().st_size if path.exists() else 0,
            database=self.store.engine.url.render_as_string(hide_password=True),
            database_bytes=db_path.stat().st_size if db_path.exists() else None,
            threshold=self.threshold,
        )

    def doctor(self) -> list[str]:
        """Problems found when comparing SQL with the index files (empty when all agree)."""
        return maintenance.doctor(self.settings, self.store, self.settings_model_id())
