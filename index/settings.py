"""What the library is configured with: one `LibrarySettings`, built once by the caller (the bot's
config loader, a test, a script) and passed in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from index.embedding import DEFAULT_MODEL
from index.ingest.fetch import FetchPolicy


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
