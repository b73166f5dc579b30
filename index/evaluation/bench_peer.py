"""The benchmark's peer part: the same articles and questions through LangChain's FAISS vector store with
the same model (optional extra `pip install -e ".[peer]"`), against quotebot's answers: ingest time,
ask latency and hit@1."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from index.evaluation.bench_report import COLLECTION, median_ms, progress

if TYPE_CHECKING:
    from index.evaluation.bench import Bench


def peer(bench: Bench) -> None:
    try:
        from langchain_community.vectorstores import FAISS as LCFAISS
        from langchain_huggingface import HuggingFaceEmbeddings
        from langchain_text_splitters import RecursiveCharacterTextSplitter
    except ImportError as e:
        bench.report.notes.append(f"peer: skipped ({e}); install with pip install -e '.[peer]'")
        progress(f"peer: skipped ({e})")
        return
    from index.embedding import resolve_model_path
    from index.evaluation.metrics import hits
    from index.ingest.sentences import split_sentences

    lib = bench.library()
    if not bench.ingested:
        progress("peer: ingesting into quotebot (untimed here)")
        bench.ensure_ingested()
    progress("peer: loading LangChain embeddings")
    emb = HuggingFaceEmbeddings(
        model_name=resolve_model_path(lib.settings.model),
        encode_kwargs={"normalize_embeddings": True, "batch_size": lib.settings.batch_size},
    )
    emb.embed_documents(["warm up the model", "and its tokenizer"] * 40)
    t0 = time.perf_counter()
    splitter = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50)
    texts: list[str] = []
    metas: list[dict[str, Any]] = []
    for a in bench.articles:
        for c in splitter.split_text(str(a["text"])):
            texts.append(c)
            metas.append({"article_id": str(a["id"])})
    store = LCFAISS.from_texts(texts, emb, metadatas=metas)
    peer_ingest = time.perf_counter() - t0
    progress(f"peer: {len(texts)} chunks in {peer_ingest:.1f} s; asking")

    def peer_quote(q: str) -> str | None:
        docs = store.similarity_search_with_score(q, k=1)
        if not docs:
            return None
        chunk = docs[0][0].page_content
        sents = [chunk[s:e] for s, e in split_sentences(chunk)] or [chunk]
        if len(sents) == 1:
            return sents[0]
        qv = np.asarray(emb.embed_query(q), np.float32)
        sv = np.asarray(emb.embed_documents(sents), np.float32)
        return sents[int(np.argmax(sv @ qv))]

    qs = bench.ask_questions
    for q in qs[:3]:
        peer_quote(str(q["question"]))
    peer_t: list[float] = []
    qb_t: list[float] = []
    qb_hit = peer_hit = n_ans = 0
    for q in qs:
        text = str(q["question"])
        t0 = time.perf_counter()
        pq = peer_quote(text)
        t1 = time.perf_counter()
        peer_t.append(t1 - t0)
        if text in bench.qb_best:
            best = bench.qb_best[text]
        else:
            t1 = time.perf_counter()
            ans = lib.ask(COLLECTION, text, alternatives=0)
            qb_t.append(time.perf_counter() - t1)
            best = ans.best.text if ans.best else None
        if q.get("answerable", True):
            n_ans += 1
            golds = [str(x) for x in q.get("answers", [])]
            qb_hit += hits(best, golds)
            peer_hit += hits(pq, golds)
    r = bench.report
    qb_ing = bench.report.keys.get("ingest_s")
    r.row("peer", f"ingest s ({len(texts)} chunks of 500)", float(qb_ing) if qb_ing else "see ingest",
          peer_ingest, fmt="{:.2f}")  # fmt: skip
    qb_med = float(bench.report.keys.get("ask_median_ms", "nan")) if not qb_t else median_ms(qb_t)
    peer_med = median_ms(peer_t)
    r.row("peer", "ask median ms", qb_med, peer_med, fmt="{:.1f}")
    qh, ph = qb_hit / max(1, n_ans), peer_hit / max(1, n_ans)
    r.row("peer", f"hit@1 ({n_ans} answerable)", qh, ph, fmt="{:.3f}", ratio=qh / ph if ph else math.nan)
    r.notes.append(
        "peer quote = the sentence of LangChain's top chunk closest to the question by cosine "
        "(chunk sentences embedded per question, included in its latency); quotebot quote = "
        "Answer.best, declines ignored; hit@1 by index.evaluation.metrics.hits (score.py's rule)"
    )
    r.key("peer_ingest_s", peer_ingest)
    r.key("peer_ask_median_ms", peer_med)
    r.key("peer_hit1", ph)
    r.key("quotebot_hit1", qh)
