"""`quotebot bench`: quotebot against the raw limits of its own parts, measured in one run on the same data.

Parts (each can be skipped with `--skip`):

- ingest: `Library.add_file` of the eval articles vs `SentenceTransformer.encode` of their sentences;
- ask: warm `Library.ask` latency vs encode + exact FAISS search over the same passage vectors, and
  `ask_many` throughput;
- scale (bench_scale.py): a synthetic collection (1,000,000 vectors; 100,000 with `--quick`) in the
  index kind quotebot picks for that size: build time, search latency, recall@10 vs exact search,
  memory, incremental add;
- real (bench_scale.py): the same on real all-MiniLM-L6-v2 sentence vectors: 100,000 sentences of the training
  articles (../shared/train, or $QUOTEBOT_TRAIN_DIR; 30,000 with `--quick`), embedded once and
  cached under ~/.cache/quotebot, queried with real questions: recall@10 per nprobe is the curve
  the shipped nprobe is chosen from (synthetic clusters are found trivially; these are not);
- peer (bench_peer.py): the same articles and questions through LangChain's FAISS vector store with
  the same model (optional extra `pip install -e ".[peer]"`).

`environment` notes the thread counts and returns the header line, `measure` runs the parts into a
`Report` (bench_report.py); bot/cli/bench.py prints the header, then the table and, last, one
machine-readable line `BENCH key=value ...`. Progress goes to stderr. Goals missed are reported, not
failed: the exit code is 0 unless the benchmark itself cannot run. Measures take
`index.library.LibrarySettings`: nothing here knows the bot.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.answering.reader import QUESTION_TOKENS, SENTENCE_TOKENS
from index.errors import InputError
from index.evaluation import bench_peer, bench_scale
from index.evaluation.bench_report import COLLECTION, Report, cycle, median_ms, p95_ms, progress
from index.evaluation.bench_scale import passage_matrix
from index.evaluation.trainingdata import read_jsonl

if TYPE_CHECKING:
    from index.settings import LibrarySettings

PARTS = ("ingest", "ask", "scale", "real", "peer")
EVAL_ENV = "QUOTEBOT_EVAL_DIR"


# -- data ------------------------------------------------------------------------------------------


def eval_dir() -> Path:
    """The SQuAD 2.0 dev slice: $QUOTEBOT_EVAL_DIR, or ../shared/eval/squad2-dev next to the repo."""
    env = os.environ.get(EVAL_ENV)
    candidates = [Path(env)] if env else []
    candidates += [
        Path(__file__).resolve().parents[3] / "shared" / "eval" / "squad2-dev",
        Path.cwd().parent / "shared" / "eval" / "squad2-dev",
    ]
    for c in candidates:
        if (c / "articles.jsonl").is_file() and (c / "questions.jsonl").is_file():
            return c
    raise InputError(
        f"No eval data (articles.jsonl + questions.jsonl) found; set {EVAL_ENV} to its folder "
        f"(tried {', '.join(str(c) for c in candidates)})."
    )


@dataclass
class Bench:
    """Shared state: one Library (one loaded model) over the eval articles, ingested once."""

    quick: bool
    settings: LibrarySettings
    report: Report
    tmp: Path
    articles: list[dict[str, Any]] = field(default_factory=list)
    questions: list[dict[str, Any]] = field(default_factory=list)
    articles_path: Path | None = None
    lib: Any = None
    ingested: bool = False
    ask_questions: list[dict[str, Any]] = field(default_factory=list)
    qb_best: dict[str, str | None] = field(default_factory=dict)

    # -- setup ---------------------------------------------------------------------------------

    def load_data(self) -> None:
        d = eval_dir()
        self.articles = read_jsonl(d / "articles.jsonl")
        self.articles_path = d / "articles.jsonl"
        if self.quick:
            self.articles = self.articles[:3]
            self.articles_path = self.tmp / "articles.jsonl"
            self.articles_path.write_text(
                "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in self.articles), encoding="utf-8"
            )
        ids = {str(a["id"]) for a in self.articles}
        self.questions = [q for q in read_jsonl(d / "questions.jsonl") if str(q.get("article_id")) in ids]
        n = 100 if self.quick else 300
        step = max(1, len(self.questions) // n)
        self.ask_questions = self.questions[::step][:n]
        progress(f"data {d}: {len(self.articles)} articles, {len(self.questions)} questions")

    def library(self) -> Any:
        if self.lib is None:
            from index.library import Library

            ls = self.settings.model_copy(update={"data_dir": self.tmp / "data", "database_url": None})
            self.lib = Library(ls)
            t = time.perf_counter()
            emb = self.lib.embedder  # loads the model once
            emb.encode(["warm up the model", "and its tokenizer"] * 40, batch_size=64)
            progress(f"model loaded and warmed up in {time.perf_counter() - t:.1f} s")
        return self.lib

    def sentences(self) -> list[str]:
        from index.ingest.sentences import split_sentences

        out = []
        for a in self.articles:
            text = str(a["text"])
            out += [text[s:e] for s, e in split_sentences(text)]
        return out

    def ensure_ingested(self) -> float:
        """Ingest the articles (once); the seconds it took."""
        lib = self.library()
        assert self.articles_path is not None
        t = time.perf_counter()
        lib.add_file(COLLECTION, self.articles_path)
        lib.shelf(COLLECTION)  # loading the answer-side structures is part of being ready
        self.ingested = True
        return time.perf_counter() - t

    # -- parts ---------------------------------------------------------------------------------

    def ingest(self) -> None:
        lib = self.library()
        sents = self.sentences()
        model = lib.embedder._model
        bs = lib.settings.batch_size
        progress(f"ingest: raw encode of {len(sents)} sentences")
        t = time.perf_counter()
        model.encode(sents, batch_size=bs, normalize_embeddings=True, show_progress_bar=False)
        raw_s = time.perf_counter() - t
        progress(f"ingest: raw {raw_s:.1f} s; quotebot add_file")
        qb_s = self.ensure_ingested()
        ratio = qb_s / raw_s
        r = self.report
        r.row("ingest", f"seconds ({len(self.articles)} articles, {len(sents)} sentences)", qb_s, raw_s,
              fmt="{:.2f}", goal="<= 1.3", ok=ratio <= 1.3)  # fmt: skip
        r.row("ingest", "sentences/s", len(sents) / qb_s, len(sents) / raw_s, fmt="{:.0f}")
        r.key("ingest_s", qb_s)
        r.key("ingest_raw_s", raw_s)
        r.key("ingest_ratio", ratio)
        r.key("ingest_sentences", len(sents))

    def ask(self) -> None:
        import faiss

        lib = self.library()
        if not self.ingested:
            progress("ask: ingesting (untimed)")
            self.ensure_ingested()
        shelf = lib.shelf(COLLECTION)
        pvecs = passage_matrix(shelf.passages)
        flat = faiss.IndexFlatIP(pvecs.shape[1])
        flat.add(pvecs)
        emb = lib.embedder
        qs = [str(q["question"]) for q in self.ask_questions]
        if not qs:
            raise InputError("No questions for the ingested articles.")
        for q in qs[:5]:  # warm both paths
            lib.ask(COLLECTION, q, alternatives=0)
            flat.search(emb.encode([q]), 8)
        progress(f"ask: {len(qs)} questions, one at a time ({len(pvecs)} passage vectors)")
        qb_t: list[float] = []
        raw_t: list[float] = []
        model_t: list[float] = []
        reader = lib.reader
        # The reader's raw work: one pass over a shortlist of sentence inputs (prepared once, as the
        # library's cache holds them) for the question's token states.
        short = list(range(min(lib.answer_model.shortlist, shelf.size)))
        texts = [shelf.sentence_text(r) for r in short]
        if reader is not None and texts:
            enc = emb.encode_states(texts, max_tokens=SENTENCE_TOKENS)
            inputs = [
                reader.prepare(t, st, o, SENTENCE_TOKENS)
                for t, st, o in zip(texts, enc.states, enc.offsets, strict=True)
            ]
        for i, q in enumerate(qs):  # interleaved, order alternating, so drift and wake-ups hit both alike
            for which in ("raw", "model", "qb") if i % 2 == 0 else ("qb", "model", "raw"):
                t0 = time.perf_counter()
                if which == "raw":
                    flat.search(emb.encode([q]), 8)
                    raw_t.append(time.perf_counter() - t0)
                elif which == "model":
                    if reader is None or not texts:
                        continue
                    qe = emb.encode_states([q], max_tokens=QUESTION_TOKENS)
                    flat.search(qe.vectors, 8)
                    reader.read(reader.prepare(q, qe.states[0], qe.offsets[0], QUESTION_TOKENS), inputs)
                    model_t.append(time.perf_counter() - t0)
                else:
                    ans = lib.ask(COLLECTION, q, alternatives=0)
                    qb_t.append(time.perf_counter() - t0)
                    self.qb_best[q] = ans.best.text if ans.best else None
        med, raw_med = median_ms(qb_t), median_ms(raw_t)
        p95, raw_p95 = p95_ms(qb_t), p95_ms(raw_t)
        r = self.report
        r.row("ask", f"median ms ({len(qs)} questions) vs encode + search", med, raw_med, fmt="{:.1f}",
              goal="<= 6", ok=med / raw_med <= 6)  # fmt: skip
        r.row("ask", "p95 ms", p95, raw_p95, fmt="{:.1f}")
        if model_t:
            model_med = median_ms(model_t)
            r.row("ask", f"median ms vs encode + search + reader pass ({len(short)} sentences)", med, model_med,
                  fmt="{:.1f}")  # fmt: skip
            r.key("ask_model_median_ms", model_med)
        n_many = 200 if self.quick else 1000
        many = cycle(qs if len(self.questions) < n_many else [str(q["question"]) for q in self.questions],
                      n_many)  # fmt: skip
        progress(f"ask: ask_many of {len(many)} questions")
        t0 = time.perf_counter()
        lib.ask_many(COLLECTION, many, alternatives=0)
        many_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        flat.search(emb.encode(many, batch_size=lib.settings.batch_size), 8)
        raw_many_s = time.perf_counter() - t0
        qps, raw_qps = len(many) / many_s, len(many) / raw_many_s
        r.row("ask", f"ask_many questions/s ({len(many)})", qps, raw_qps, fmt="{:.0f}", ratio=qps / raw_qps)
        r.key("ask_median_ms", med)
        r.key("ask_raw_median_ms", raw_med)
        r.key("ask_median_ratio", med / raw_med)
        r.key("ask_p95_ms", p95)
        r.key("ask_raw_p95_ms", raw_p95)
        r.key("ask_many_qps", qps)
        r.key("ask_many_raw_qps", raw_qps)

    def scale(self) -> None:
        bench_scale.scale(self.quick, self.report)

    def real(self) -> None:
        bench_scale.real(self.quick, self.report)

    def peer(self) -> None:
        bench_peer.peer(self)


def environment(quick: bool, report: Report) -> str:
    """The header line (threads, cpus, versions, load); the thread counts also go in `report`'s keys."""
    import faiss
    import torch

    import index.storage.vectors  # noqa: F401  (sets FAISS to one thread, as quotebot runs it)

    header = (
        f"quotebot bench{' --quick' if quick else ''}: torch threads {torch.get_num_threads()}, "
        f"faiss threads {faiss.omp_get_max_threads()}, cpus {os.cpu_count()}, "
        f"torch {torch.__version__}, faiss {faiss.__version__}, load average {os.getloadavg()[0]:.2f}"
    )
    report.key("quick", int(quick))
    report.key("torch_threads", torch.get_num_threads())
    report.key("faiss_threads", faiss.omp_get_max_threads())
    return header


def check_parts(skip: set[str]) -> None:
    unknown = skip - set(PARTS)
    if unknown:
        raise InputError(f"--skip takes {','.join(PARTS)}, not {','.join(sorted(unknown))}.")


def measure(settings: LibrarySettings, report: Report, *, quick: bool, skip: set[str]) -> None:
    """Run every part not in `skip` (on a throwaway data dir), in order: ingest, ask, peer, scale, real."""
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="quotebot-bench-") as tmp:
        bench = Bench(quick, settings, report, Path(tmp))
        needs_data = any(p not in skip for p in ("ingest", "ask", "peer"))
        if needs_data:
            bench.load_data()
        steps: list[tuple[str, Callable[[], None]]] = [
            ("ingest", bench.ingest),
            ("ask", bench.ask),
            ("peer", bench.peer),
            ("scale", bench.scale),
            ("real", bench.real),
        ]
        try:
            for name, fn in steps:
                if name in skip:
                    continue
                t = time.perf_counter()
                progress(f"{name}: start")
                fn()
                progress(f"{name}: done in {time.perf_counter() - t:.1f} s")
        finally:
            if bench.lib is not None:
                bench.lib.close()
    report.key("total_s", time.perf_counter() - t_all)
