"""The reader: a small trained interaction model over MiniLM's contextual token states that scores
how well a candidate sentence answers a question and finds the answer phrase inside it.

Input: the question's and one sentence's token states (from the same MiniLM pass that makes their
sentence vectors), each token marked when its word (stemmed, no stopwords) occurs in the other
text; a reader fitted with context also marks the question's words that only the sentence's
context holds (its article's title and the sentence before it, `question_flags`), so a sentence
that names its subject through the title or a pronoun does not look as if it missed that word.
A two-layer transformer over `[CLS] question [SEP] sentence` (d=128) reads them jointly, so
every question word can look at every sentence word; it answers with
- `relevance`: a logit that this sentence holds the answer to this question;
- start/end logits over the sentence's tokens: the answer phrase.
The MiniLM weights stay frozen (their states are computed once per text); only this head is
trained (`scripts/fit_reader.py`, on ../shared/train), and it is shipped as `reader.pt` (fp16).
Input sizes are capped (QUESTION_TOKENS, SENTENCE_TOKENS), so nothing grows with input length.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.search.lexical import terms
from index.search.shelf import Shelf

QUESTION_TOKENS = 32  # word pieces of a question the reader sees (a long chat message is cut)
SENTENCE_TOKENS = 64  # word pieces of a sentence the reader sees
STATE_DIM = 384  # MiniLM-L6's hidden size
READER_FILE = Path(__file__).with_name("reader.pt")
READER_MODEL_ID = "all-MiniLM-L6-v2"  # the embedding model whose token states the shipped reader reads
MAX_SPAN_TOKENS = 12  # the longest answer phrase considered (word pieces)
# The answer phrase's length prior: a phrase's probability P(start) P(end) is weighed by
# exp(-SPAN_LENGTH_PRIOR * (tokens - 1)) when choosing it. start and end are scored apart, so
# without it a long phrase that merely begins at a likely start and ends at a likely end wins too
# often. Both values were chosen on a training slice (SQuAD 1.1 train articles the reader was not
# fitted on): F1 0.611 -> 0.621 there (squad2-dev, not used to choose: 0.637 -> 0.655).
SPAN_LENGTH_PRIOR = 0.05
# Pair features a reader built with `extra` takes: cosine(question, sentence) and the idf-weighted
# share of the question's terms found in the sentence (index.search.candidates's "dense" and "lex").
PAIR_FEATURES = ("dense", "lex")

_WORD = re.compile(r"\w+")


def word_terms(text: str, offsets: np.ndarray) -> tuple[str, ...]:
    """For each token (by its character offsets), the terms of the whole word it is part of, joined
    by spaces ("" for stopwords and punctuation). Strings, not sets: a cache of many sentences then
    holds no objects the garbage collector has to walk (its pauses would stall the event loop)."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    out: list[str] = []
    j = 0
    for s, _e in offsets.tolist():
        while j < len(words) and words[j][1] <= s:
            j += 1
        if j < len(words) and words[j][0] <= s:
            out.append(" ".join(terms(text[words[j][0] : words[j][1]])))
        else:
            out.append("")
    return tuple(out)


def _terms_of(token: str) -> list[str]:
    return token.split() if " " in token else ([token] if token else [])


def match_flags(own: Sequence[str], other_terms: frozenset[str]) -> np.ndarray:
    """1 for tokens whose word's terms occur in the other text (content words only)."""
    return np.array([1 if any(t in other_terms for t in _terms_of(w)) else 0 for w in own], np.int64)


def question_flags(
    own: Sequence[str], sentence_terms: frozenset[str], context_terms: frozenset[str]
) -> np.ndarray:
    """A question's match flags for a reader fitted with context (`build_network(context=True)`):
    1 where the token's word occurs in the sentence, 2 where it occurs only in the sentence's
    context (its article's title and the sentence before it: `shelf_context`), 0 elsewhere. A question
    word the sentence names only through the title or a pronoun is then not a missing word."""
    out = []
    for w in own:
        ts = _terms_of(w)
        out.append(
            1 if any(t in sentence_terms for t in ts) else 2 if any(t in context_terms for t in ts) else 0
        )
    return np.array(out, np.int64)


def token_idf(own: Sequence[str], rarity: Callable[[str], float]) -> np.ndarray:
    """Each token's word rarity in [0, 1] (`rarity` of its rarest term; 0 for stopwords)."""
    return np.array([max((rarity(t) for t in _terms_of(w)), default=0.0) for w in own], np.float32)


def bm25_rarity_top(n: float) -> float:
    """BM25's idf of a term found in one of `n` sentences (the rarest a known term can be)."""
    return math.log1p(max(n - 0.5, 0.5) / 1.5)


def bm25_rarity(df: float, n: float) -> float:
    """BM25's idf of a term in `df` of `n` sentences, over that of a term in one: in [0, 1]."""
    idf = math.log1p((n - df + 0.5) / (df + 0.5))
    return float(min(1.0, max(0.0, idf / max(bm25_rarity_top(n), 1e-9))))


@dataclass(frozen=True)
class ReaderInput:
    """One text's side of a reader pair: its token states as the reader projects them
    (`Reader.project`), the terms of each token's word, and the tokens' character offsets."""

    states: np.ndarray  # float16 (tokens, d)
    word_terms: tuple[str, ...]
    offsets: np.ndarray  # int (tokens, 2), into the text

    @property
    def all_terms(self) -> frozenset[str]:
        return frozenset(t for w in self.word_terms for t in _terms_of(w))


def _torch():  # type: ignore[no-untyped-def]
    import torch

    return torch


def build_network(  # type: ignore[no-untyped-def]
    d: int = 128,
    heads: int = 4,
    layers: int = 2,
    ff: int = 256,
    dropout: float = 0.1,
    extra: int = 0,
    idf: bool = False,
    context: bool = False,
):
    """The reader's torch module (imported lazily: only the real model's users need torch)."""
    torch = _torch()
    nn = torch.nn

    class ReaderNet(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.config = {"d": d, "heads": heads, "layers": layers, "ff": ff, "extra": extra, "idf": idf}
            if context:  # only then, so a reader fitted before context loads as it was saved
                self.config["context"] = True
            self.proj = nn.Linear(STATE_DIM, d)
            self.segment = nn.Embedding(3, d)  # 0 CLS, 1 question, 2 sentence
            self.position = nn.Embedding(1 + QUESTION_TOKENS + SENTENCE_TOKENS, d)
            # 0 no match, 1 the word occurs in the other text; with `context`, 2 (question tokens):
            # it occurs only in the sentence's context (question_flags).
            self.match = nn.Embedding(3 if context else 2, d)
            # How rare each token's word is in the collection (token_idf), so that a shared rare
            # name outweighs a shared topic word.
            self.rarity = nn.Linear(1, d) if idf else None
            self.cls = nn.Parameter(torch.zeros(d))
            layer = nn.TransformerEncoderLayer(
                d, heads, ff, dropout=dropout, batch_first=True, norm_first=True, activation="gelu"
            )
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d)
            self.relevance = nn.Linear(d, 1)
            # Pair features the retrieval already has (PAIR_FEATURES), added to the relevance so
            # the network learns what they miss.
            self.extra = nn.Linear(extra, 1, bias=False) if extra else None
            self.span = nn.Linear(d, 2)

        def forward(self, q, q_match, q_mask, s, s_match, s_mask, pair=None, q_idf=None, s_idf=None):  # type: ignore[no-untyped-def]
            """q (B, Tq, 384), s (B, Ts, 384); masks True where a token is real; pair (B, extra);
            q_idf, s_idf (B, T) token rarity in [0, 1].
            Returns relevance (B,), start and end logits (B, Ts) (-inf at padding)."""
            return self.read(self.proj(q), q_match, q_mask, self.proj(s), s_match, s_mask, pair, q_idf, s_idf)

        def read(self, q, q_match, q_mask, s, s_match, s_mask, pair=None, q_idf=None, s_idf=None):  # type: ignore[no-untyped-def]
            """`forward` on states already projected (`proj`): a sentence is projected once."""
            b, tq = q.shape[:2]
            ts = s.shape[1]
            dev = q.device
            qh = q + self.match(q_match) + self.segment.weight[1]
            sh = s + self.match(s_match) + self.segment.weight[2]
            if self.rarity is not None and q_idf is not None and s_idf is not None:
                qh = qh + self.rarity(q_idf[..., None])
                sh = sh + self.rarity(s_idf[..., None])
            cls = (self.cls + self.segment.weight[0]).expand(b, 1, -1)
            x = torch.cat([cls, qh, sh], dim=1)
            pos = torch.cat(
                [
                    torch.zeros(1, dtype=torch.long, device=dev),
                    torch.arange(1, 1 + tq, device=dev),
                    torch.arange(1 + QUESTION_TOKENS, 1 + QUESTION_TOKENS + ts, device=dev),
                ]
            )
            x = x + self.position(pos)[None]
            keep = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=dev), q_mask, s_mask], dim=1)
            h = self.norm(self.encoder(x, src_key_padding_mask=~keep))
            rel = self.relevance(h[:, 0]).squeeze(-1)
            if self.extra is not None and pair is not None:
                rel = rel + self.extra(pair).squeeze(-1)
            se = self.span(h[:, 1 + tq :])
            neg = torch.finfo(se.dtype).min
            start = se[..., 0].masked_fill(~s_mask, neg)
            end = se[..., 1].masked_fill(~s_mask, neg)
            return rel, start, end

    return ReaderNet()


def pad_batch(inputs: list[np.ndarray], limit: int):  # type: ignore[no-untyped-def]
    """Stack ragged (tokens, width) arrays into a zero-padded float tensor and its mask."""
    torch = _torch()
    n = max(1, max((min(len(a), limit) for a in inputs), default=1))
    width = inputs[0].shape[1] if inputs and inputs[0].ndim == 2 else STATE_DIM
    x = np.zeros((len(inputs), n, width), np.float32)
    mask = np.zeros((len(inputs), n), bool)
    for i, a in enumerate(inputs):
        k = min(len(a), limit)
        x[i, :k] = a[:k]
        mask[i, :k] = True
    return torch.from_numpy(x), torch.from_numpy(mask)


def pad_rows(rows: list[np.ndarray], width: int, dtype: type = np.int64):  # type: ignore[no-untyped-def]
    """Ragged 1-d arrays (match flags, token rarities) as a zero-padded (len(rows), width) tensor."""
    torch = _torch()
    out: np.ndarray = np.zeros((len(rows), width), dtype)
    for i, r in enumerate(rows):
        k = min(len(r), width)
        out[i, :k] = r[:k]
    return torch.from_numpy(out)


@dataclass(frozen=True)
class Reading:
    """The reader's verdict on one (question, sentence) pair."""

    relevance: float  # logit
    span: tuple[int, int] | None  # token positions (inclusive) of the best answer phrase
    span_probability: float  # P(start) * P(end) of that phrase


def best_span(
    start: np.ndarray, end: np.ndarray, max_len: int = MAX_SPAN_TOKENS, prior: float = SPAN_LENGTH_PRIOR
) -> tuple[int, int, float]:
    """The (i, j) with i <= j < i + max_len maximising P(start=i) P(end=j) exp(-prior (j - i)), and
    that phrase's own probability P(start=i) P(end=j)."""
    ps = np.exp(start - start.max())
    ps /= ps.sum()
    pe = np.exp(end - end.max())
    pe /= pe.sum()
    n = len(ps)
    length = np.arange(n)[None, :] - np.arange(n)[:, None]  # j - i
    allowed = (length >= 0) & (length < max_len)
    joint = np.outer(ps, pe)
    weighed = np.where(allowed, joint * np.exp(-prior * np.maximum(length, 0)), -1.0)
    k = int(weighed.argmax())
    i, j = divmod(k, n)
    return i, j, float(joint[i, j])


class Reader:
    """The fitted reader, loaded once; `read` scores candidate sentences of one question."""

    def __init__(self, path: Path = READER_FILE) -> None:
        torch = _torch()
        blob = torch.load(path, map_location="cpu", weights_only=False)
        self.info: dict[str, object] = dict(blob.get("info", {}))
        self.model_id: str = str(blob.get("model_id", READER_MODEL_ID))
        self.net = build_network(**blob["config"], dropout=0.0)
        self.uses_pair = bool(blob["config"].get("extra"))
        self.uses_idf = bool(blob["config"].get("idf"))
        self.uses_context = bool(blob["config"].get("context"))
        self.net.load_state_dict({k: v.float() for k, v in blob["state"].items()})
        self.net.eval()

    def prepare(self, text: str, states: np.ndarray, offsets: np.ndarray, limit: int) -> ReaderInput:
        """A text's reader input from its raw token states (`Embedder.encode_states`)."""
        torch = _torch()
        states, offsets = states[:limit], offsets[:limit]
        with torch.inference_mode():
            projected = self.net.proj(torch.from_numpy(np.asarray(states, np.float32))).numpy()
        return ReaderInput(projected.astype(np.float16), word_terms(text, offsets), np.asarray(offsets))

    def read(
        self,
        question: ReaderInput,
        sentences: list[ReaderInput],
        pair: np.ndarray | None = None,
        rarity: Callable[[str], float] | None = None,
        context: Sequence[frozenset[str]] | None = None,
    ) -> list[Reading]:
        """Readings of each sentence for the question; `pair`: (len(sentences), len(PAIR_FEATURES));
        `rarity`: term -> [0, 1] in this collection (bm25_rarity), for readers fitted with it;
        `context`: each sentence's context terms (`shelf_context`), for readers fitted with it."""
        if not sentences:
            return []
        torch = _torch()
        q_terms = question.all_terms
        n = len(sentences)
        q, q_mask = pad_batch([question.states] * n, QUESTION_TOKENS)
        s, s_mask = pad_batch([x.states for x in sentences], SENTENCE_TOKENS)
        own = question.word_terms[:QUESTION_TOKENS]
        if self.uses_context and context is not None:
            if len(context) != n:
                raise ValueError(f"{len(context)} contexts for {n} sentences")
            flags = [question_flags(own, x.all_terms, c) for x, c in zip(sentences, context, strict=True)]
        else:
            flags = [match_flags(own, x.all_terms) for x in sentences]
        q_match = pad_rows(flags, q.shape[1])
        s_match = pad_rows(
            [match_flags(x.word_terms[:SENTENCE_TOKENS], q_terms) for x in sentences], s.shape[1]
        )
        with torch.inference_mode():
            extra = torch.from_numpy(np.asarray(pair, np.float32)) if pair is not None else None
            q_idf = s_idf = None
            if self.uses_idf and rarity is not None:
                qi = token_idf(question.word_terms[:QUESTION_TOKENS], rarity)
                q_idf = pad_rows([qi] * n, q.shape[1], np.float32)
                s_idf = pad_rows(
                    [token_idf(x.word_terms[:SENTENCE_TOKENS], rarity) for x in sentences],
                    s.shape[1],
                    np.float32,
                )
            rel, st, en = self.net.read(q, q_match, q_mask, s, s_match, s_mask, extra, q_idf, s_idf)
        out = []
        for i, x in enumerate(sentences):
            k = min(len(x.states), SENTENCE_TOKENS)
            if k == 0:
                out.append(Reading(float(rel[i]), None, 0.0))
                continue
            a, b, p = best_span(st[i, :k].numpy(), en[i, :k].numpy())
            out.append(Reading(float(rel[i]), (a, b), p))
        return out


def save_reader(net, path: Path, info: dict[str, object], model_id: str = READER_MODEL_ID) -> None:  # type: ignore[no-untyped-def]
    """Write the network's weights as fp16 with its configuration and model card."""
    torch = _torch()
    state = {k: v.detach().to(torch.float16) for k, v in net.state_dict().items()}
    torch.save({"config": net.config, "state": state, "info": info, "model_id": model_id}, path)


def shelf_context(shelf: Shelf, rows: Sequence[int]) -> list[frozenset[str]]:
    """Each row's context terms (what `question_flags` marks 2): the terms of its article's title
    and of the sentence before it in the same article."""
    out = []
    for r in rows:
        art = int(shelf.article_ids[r])
        got = shelf.title_terms.get(art, frozenset())
        if r > 0 and int(shelf.article_ids[r - 1]) == art:
            got = got | frozenset(terms(shelf.sentence_text(r - 1)))
        out.append(got)
    return out


def shelf_rarity(shelf: Shelf) -> Callable[[str], float]:
    """A term's rarity in the shelf's sentences: its BM25 idf over that of a term found once (as
    index.answering.reader.bm25_rarity computes it for training); unseen terms are rarest."""
    idf, ids = shelf.bm25.idf, shelf.vocab.ids
    top = max(bm25_rarity_top(float(shelf.size)), 1e-9)

    def rarity(term: str) -> float:
        j = ids.get(term)
        return 1.0 if j is None or j >= len(idf) else float(min(1.0, max(0.0, idf[j] / top)))

    return rarity
