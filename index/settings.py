"""What the library is configured with, and the one place each default and limit is declared.

The index-side sections of config.toml are pydantic models here: `IndexSettings` ([index]),
`LimitsSettings` ([limits]), `IngestSettings` ([ingest]) and `FetchPolicy` ([fetch], in
index.ingest.fetch.policy). `LibrarySettings` is all of them in one flat object (the library reads
`settings.dense_k`, `settings.max_article_bytes`, `settings.fetch`), plus the few knobs that only
code sets. The bot's config loader (bot.config) reads the TOML file and the environment into the
sections and builds one `LibrarySettings` from them; a test or a script builds one directly.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from index.embedding import DEFAULT_MODEL
from index.ingest.fetch.policy import FetchPolicy

__all__ = ["FetchPolicy", "IndexSettings", "IngestSettings", "LibrarySettings", "LimitsSettings"]


class _Section(BaseModel):
    """One TOML section: unknown keys are refused (a typo must not silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid")


class IndexSettings(_Section):
    """[index]: storage, model and retrieval."""

    data_dir: Path = Path("quotebot-data")
    database_url: str | None = None  # any SQLAlchemy URL; unset or "" = SQLite file in data_dir
    model: str = DEFAULT_MODEL
    batch_size: int = Field(default=64, ge=1, le=1024)
    passage_sentences: int = Field(default=4, ge=1, le=32)
    passage_overlap: int = Field(default=1, ge=0, le=31)  # below passage_sentences (see _overlap)
    dense_k: int = Field(default=40, ge=1, le=1000)
    lexical_k: int = Field(default=40, ge=0, le=1000)
    passage_k: int = Field(default=8, ge=1, le=200)
    ivf_threshold: int = Field(default=50_000, ge=16)  # passages; past this the FAISS index is IVF
    nprobe: int = Field(default=64, ge=1, le=4096)  # recall@10 0.965 on real MiniLM vectors (32: 0.936)
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)  # quote from here; None = fitted
    may_threshold: float | None = Field(default=None, ge=0.0, le=1.0)  # "may answer it"; None = fitted
    reader: bool = True  # read candidates with the trained reader (when it fits the embedding model)
    reader_cache_sentences: int = Field(default=20_000, ge=0)  # reader inputs kept (~8 KB each)
    max_loaded_collections: int = Field(default=0, ge=0)  # shelves in memory (LRU dropped); 0 = all

    @field_validator("data_dir")
    @classmethod
    def _a_folder(cls, value: Path) -> Path:
        # The data directory is created on first use: whatever part of it exists must be a folder.
        for part in (value, *value.parents):
            if part.exists():
                if not part.is_dir():
                    raise ValueError(f"{part} is a file, not a directory")
                break
        return value

    @field_validator("database_url")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @model_validator(mode="after")
    def _overlap(self) -> IndexSettings:
        # Consecutive passages must advance. An overlap left at its default follows a smaller
        # passage_sentences down (passage_sentences = 1 alone means no overlap); one set explicitly
        # must fit.
        if self.passage_overlap >= self.passage_sentences:
            if "passage_overlap" in self.model_fields_set:
                raise ValueError(
                    f"passage_overlap ({self.passage_overlap}) must be below passage_sentences "
                    f"({self.passage_sentences})"
                )
            self.passage_overlap = self.passage_sentences - 1
        return self


class LimitsSettings(_Section):
    """[limits]: what users may send."""

    max_article_bytes: int = Field(default=20_000_000, ge=1000)  # largest article file or download
    max_question_chars: int = Field(default=2000, ge=10)
    max_articles: int = Field(default=100_000, ge=1)  # per collection


class IngestSettings(_Section):
    """[ingest]: bulk ingest and keeping web articles current."""

    max_bulk_urls: int = Field(default=1000, ge=1, le=100_000)  # pages one sitemap or feed may add
    refresh_hours: float = Field(default=0.0, ge=0, le=24 * 365)  # the bot re-fetches web articles; 0 = off


class LibrarySettings(IndexSettings, LimitsSettings, IngestSettings):
    """Everything the index needs to know, flat; built once by the caller (bot.config, a test, a
    script) and passed in. Mutable (tests move thresholds on a live library); not re-validated on
    assignment."""

    fetch: FetchPolicy = Field(default_factory=FetchPolicy)
    # Set by code only (no TOML key):
    exhaustive_limit: int = Field(default=300_000, ge=0)  # up to this many sentences, dense search is exact

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.data_dir).resolve() / 'quotebot.db'}"

    @property
    def index_dir(self) -> Path:
        return Path(self.data_dir) / "index"
