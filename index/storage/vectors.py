"""FAISS index of passage vectors keyed by database ids, saved atomically, checked against SQL.

Small collections use exact inner-product search (`IndexIDMap2` over `IndexFlatIP`); past
`ivf_threshold` vectors the index is an `IndexIVFFlat` (inner product) whose ids are the same
database ids. Both support `add_with_ids` and `remove_ids`, so adding or removing passages
never rebuilds the index. Searches may run concurrently with each other; writes take the lock.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.errors import StoreError

# Single-query searches are microseconds of work; FAISS's OpenMP pool (a second one beside torch's)
# only adds wake-up latency and contention on 2 cores. Builds raise it temporarily (see `build`).
faiss.omp_set_num_threads(1)

FLAT = "flat"
IVF = "ivf"


@dataclass(frozen=True)
class IndexMeta:
    """What the index file was built from; compared with SQL and the settings on load."""

    model_id: str
    dim: int
    count: int
    kind: str
    generation: int | None = None  # the collection's SQL write generation it was saved at


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def index_file(index_dir: Path, collection: str) -> Path:
    """Where a collection's index is saved."""
    return Path(index_dir) / f"{collection}.faiss"


def ivf_lists(n: int) -> int:
    """A list count for `n` vectors: about 4 sqrt(n), a power of two, at least 64."""
    return max(64, 2 ** round(math.log2(max(1.0, 4 * math.sqrt(n)))))


class VectorIndex:
    """A passage-vector index for one collection."""

    def __init__(
        self,
        dim: int,
        model_id: str,
        index: Any | None = None,
        kind: str = FLAT,
        nprobe: int = 64,
        generation: int | None = None,
    ) -> None:
        self.dim = dim
        self.generation = generation  # as read from the meta file (None: unknown, an older file)
        self.model_id = model_id
        self.kind = kind
        self.nprobe = nprobe
        self._lock = threading.Lock()
        if index is None:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._index = index
        self._apply_params()

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        *,
        model_id: str,
        dim: int,
        ivf_threshold: int = 50_000,
        nprobe: int = 64,
        train_sample: int = 100_000,
    ) -> VectorIndex:
        """A new index over `vectors` (rows L2-normalised) keyed by `ids`, of the kind their count calls for."""
        n = len(ids)
        if n >= ivf_threshold:
            nlist = ivf_lists(n)
            quantizer = faiss.IndexFlatIP(dim)
            ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(0)
            sample = vectors[rng.choice(n, size=min(n, max(train_sample, 40 * nlist)), replace=False)]
            faiss.omp_set_num_threads(os.cpu_count() or 1)
            try:
                ivf.train(np.ascontiguousarray(sample, dtype=np.float32))
            finally:
                faiss.omp_set_num_threads(1)
            ivf.make_direct_map(False)
            out = cls(dim, model_id, ivf, IVF, nprobe)
        else:
            out = cls(dim, model_id, None, FLAT, nprobe)
        out.add(ids, vectors)
        return out

    def _apply_params(self) -> None:
        if self.kind == IVF:
            faiss.extract_index_ivf(self._index).nprobe = self.nprobe

    # -- reads and writes -----------------------------------------------------------------

    @property
    def count(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        if vecs.shape[1] != self.dim:
            raise StoreError(f"Vector dimension {vecs.shape[1]} does not match the index ({self.dim}).")
        with self._lock:
            self._index.add_with_ids(vecs, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        with self._lock:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))
            return int(self._index.remove_ids(selector))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` (scores, ids) per query row; missing hits have id -1."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if self.count == 0 or k <= 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        with self._lock:
            scores, ids = self._index.search(q, min(k, self.count))
        return scores, ids

    @property
    def faiss(self) -> Any:
        """The FAISS index itself, for read-only use (the benchmark's recall, tests)."""
        return self._index

    def ids(self) -> list[int] | None:
        """The database ids the index holds (None when this index kind cannot list them)."""
        import faiss

        raw = self._index
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

    def holds_exactly(self, ids: Sequence[int]) -> bool:
        """Whether the index holds exactly these database ids (True when its ids cannot be read)."""
        if self.count != len(ids):
            return False
        mine = self.ids()
        if mine is None:
            return True
        return bool(np.array_equal(np.sort(np.asarray(mine, np.int64)), np.sort(np.asarray(ids, np.int64))))

    def memory_bytes(self) -> int:
        """Bytes the serialised index takes (close to its resident size)."""
        with self._lock:
            return int(faiss.serialize_index(self._index).size)

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: Path, generation: int | None = None) -> None:
        """Write the index, then its meta file (with the SQL `generation` it matches), each atomically:
        a crash between them leaves a pair whose meta or generation disagrees, rebuilt from SQL."""
        with self._lock:
            blob = faiss.serialize_index(self._index).tobytes()
            meta = IndexMeta(self.model_id, self.dim, int(self._index.ntotal), self.kind, generation)
        _atomic_write(path, blob)
        _atomic_write(path.with_suffix(".json"), json.dumps(meta.__dict__).encode())

    @staticmethod
    def read_meta(path: Path) -> IndexMeta | None:
        try:
            raw = json.loads(path.with_suffix(".json").read_text())
            gen = raw.get("generation")
            return IndexMeta(
                str(raw["model_id"]),
                int(raw["dim"]),
                int(raw["count"]),
                str(raw["kind"]),
                None if gen is None else int(gen),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    @classmethod
    def load(cls, path: Path, *, nprobe: int = 64) -> VectorIndex | None:
        """The saved index, or None when it is missing or unreadable (the caller rebuilds)."""
        meta = cls.read_meta(path)
        if meta is None or not path.exists():
            return None
        try:
            data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
            index = faiss.deserialize_index(data)
        except (OSError, RuntimeError):
            return None
        if int(index.ntotal) != meta.count or int(index.d) != meta.dim:
            return None
        return cls(meta.dim, meta.model_id, index, meta.kind, nprobe, meta.generation)
