"""Encode a question-answering set once for fitting the reader: sentences (the project's splitter),
their vectors and token states, the questions' vectors and token states, gold sentence and token
labels. The result is an .npz cache outside the repository (it holds the data's text as vectors).

    python scripts/reader_cache.py SOURCE OUT.npz [--start K] [--every N] [--skip M] [--limit-articles N]

Articles taken: articles[K::N], less the first M of those, at most --limit-articles.

SOURCE: a folder with articles.jsonl + questions.jsonl, or an official SQuAD .json file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index.answering.reader import QUESTION_TOKENS, SENTENCE_TOKENS
from index.embedding import SentenceTransformerEmbedder
from index.evaluation.trainingdata import read_qa
from index.ingest.sentences import split_sentences


def _ragged(arrays: list[np.ndarray], width: int, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(arrays) + 1, np.int64)
    ptr[1:] = np.cumsum([len(a) for a in arrays])
    flat = np.concatenate([a.reshape(-1, width) for a in arrays]) if arrays else np.zeros((0, width))
    return flat.astype(dtype), ptr


def build(
    source: Path, out: Path, every: int, limit: int | None, batch: int, start: int = 0, skip: int = 0
) -> None:
    qa = read_qa(source)
    arts = qa.articles[start::every][skip:]
    arts = arts[:limit] if limit else arts
    keep = {a.id for a in arts}
    idx = {a.id: i for i, a in enumerate(arts)}
    sent_art, sent_start, sent_end, texts = [], [], [], []
    first = []
    for i, a in enumerate(arts):
        first.append(len(texts))
        for s, e in split_sentences(a.text):
            sent_art.append(i)
            sent_start.append(s)
            sent_end.append(e)
            texts.append(a.text[s:e])
    first.append(len(texts))
    qs = [q for q in qa.questions if q.article_id in keep]
    print(f"{source}: {len(arts)} articles, {len(texts)} sentences, {len(qs)} questions", flush=True)
    emb = SentenceTransformerEmbedder()
    t0 = time.time()
    # Encode in chunks so progress is visible on a slow machine.
    vecs, states, offsets = [], [], []
    step = 4096
    for k in range(0, len(texts), step):
        r = emb.encode_states(texts[k : k + step], max_tokens=SENTENCE_TOKENS, batch_size=batch)
        vecs.append(r.vectors.astype(np.float16))
        states += r.states
        offsets += r.offsets
        done = k + len(r.states)
        print(f"  sentences {done}/{len(texts)} {done / (time.time() - t0):.0f}/s", flush=True)
    qr = emb.encode_states([q.question for q in qs], max_tokens=QUESTION_TOKENS, batch_size=batch)
    print(f"  questions done in {time.time() - t0:.0f}s", flush=True)
    sent_art_a = np.asarray(sent_art, np.int32)
    starts = np.asarray(sent_start, np.int64)
    ends = np.asarray(sent_end, np.int64)
    # Gold labels: the sentence holding each answer span, and the span's token positions in it.
    gold_rows, gold_tok = [], []
    for q in qs:
        a = idx[q.article_id]
        lo, hi = first[a], first[a + 1]
        rows, toks = [], []
        for s, e in q.spans:
            r = lo + int(np.searchsorted(ends[lo:hi], s, side="right"))
            if r >= hi or not (starts[r] <= s and e <= ends[r]):
                continue  # the span crosses a sentence boundary
            off = offsets[r] + starts[r]
            inside = np.flatnonzero((off[:, 1] > s) & (off[:, 0] < e))
            if len(inside) == 0:
                continue  # past the stored tokens
            rows.append(r)
            toks.append((int(inside[0]), int(inside[-1])))
        gold_rows.append(rows)
        gold_tok.append(toks)
    s_states, s_ptr = _ragged(states, 384, np.float16)
    s_offs, _ = _ragged(offsets, 2, np.int32)
    q_states, q_ptr = _ragged(qr.states, 384, np.float16)
    np.savez(
        out,
        sent_article=sent_art_a,
        sent_start=starts,
        sent_end=ends,
        sent_vec=np.concatenate(vecs) if vecs else np.zeros((0, 384), np.float16),
        sent_states=s_states,
        sent_ptr=s_ptr,
        sent_offsets=s_offs,
        article_first=np.asarray(first, np.int64),
        q_article=np.asarray([idx[q.article_id] for q in qs], np.int32),
        q_vec=qr.vectors.astype(np.float16),
        q_states=q_states,
        q_ptr=q_ptr,
        q_answerable=np.asarray([q.answerable for q in qs], bool),
        meta=np.frombuffer(
            json.dumps(
                {
                    "source": str(source),
                    "articles": [a.id for a in arts],
                    "titles": [a.title for a in arts],
                    "questions": [q.question for q in qs],
                    "qids": [q.qid for q in qs],
                    "answers": [q.answers for q in qs],
                    "gold_rows": gold_rows,
                    "gold_tokens": gold_tok,
                }
            ).encode(),
            np.uint8,
        ),
    )
    print(f"wrote {out} in {time.time() - t0:.0f}s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--start", type=int, default=0, help="the first article taken")
    ap.add_argument("--every", type=int, default=1, help="take every N-th article")
    ap.add_argument("--skip", type=int, default=0, help="leave out the first M of the articles taken")
    ap.add_argument("--limit-articles", type=int, default=None)
    ap.add_argument("--batch", type=int, default=128)
    a = ap.parse_args()
    build(a.source, a.out, a.every, a.limit_articles, a.batch, a.start, a.skip)


if __name__ == "__main__":
    main()
