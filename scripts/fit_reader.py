"""Fit the reader (index/answering/reader.py) on encoded training sets and write index/answering/reader.pt.

    python scripts/reader_cache.py ../shared/train/squad1-train /tmp/sq1.npz --every 2
    python scripts/fit_reader.py /tmp/sq1.npz [/tmp/more.npz ...] [--epochs 2] [--dev /tmp/dev.npz]
        [--out index/answering/reader.pt] [--seed 0] [--max-questions N] [--minutes M]

Each training question is paired with its gold sentence (the one holding a gold answer span) and
hard negatives: the sentences of the same article closest to it by cosine + idf word overlap that
do not contain an answer, plus one sentence of another article. Losses: a listwise softmax over a
question's candidates (ranking), a per-pair logistic loss (is this the answering sentence; for
unanswerable questions every candidate is negative), and start/end cross-entropy on the gold
sentence's answer tokens. A dev cache (built the same way from ../shared/eval) is only scored:
hit@1 of the reader's best sentence among the collection-wide top candidates.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from index.answering.reader import (
    QUESTION_TOKENS,
    SENTENCE_TOKENS,
    bm25_rarity,
    build_network,
    match_flags,
    pad_batch,
    pad_rows,
    question_flags,
    save_reader,
    token_idf,
    word_terms,
)
from index.evaluation.metrics import hits
from index.evaluation.trainingdata import read_qa
from index.search.lexical import terms


@dataclass
class Encoded:
    """One encoded set (see scripts/reader_cache.py), with texts and word terms restored."""

    name: str
    sent_article: np.ndarray
    sent_vec: np.ndarray
    sent_states: np.ndarray
    sent_ptr: np.ndarray
    article_first: np.ndarray
    q_article: np.ndarray
    q_vec: np.ndarray
    q_states: np.ndarray
    q_ptr: np.ndarray
    q_answerable: np.ndarray
    sent_text: list[str]
    sent_terms: list[tuple[str, ...]]
    sent_bag: list[frozenset[str]]
    q_text: list[str]
    q_terms: list[tuple[str, ...]]
    q_bag: list[frozenset[str]]
    answers: list[list[str]]
    gold_rows: list[list[int]]
    gold_tokens: list[list[tuple[int, int]]]
    idf: dict[str, float]
    rarity: dict[str, float]
    source: str = ""  # where the cache's articles came from (reader_cache.py's SOURCE)
    # Each sentence's context terms: its article's title and the sentence before it in the same
    # article (index.answering.reader.shelf_context, as served).
    ctx_bag: list[frozenset[str]] = field(default_factory=list)
    near_of: dict[int, int] = field(default_factory=dict)  # changed question -> its original's gold row

    def rare(self, term: str) -> float:
        return self.rarity.get(term, 1.0)

    def sentence(self, r: int) -> np.ndarray:
        return self.sent_states[self.sent_ptr[r] : self.sent_ptr[r + 1]]

    def question(self, i: int) -> np.ndarray:
        return self.q_states[self.q_ptr[i] : self.q_ptr[i + 1]]


def load(path: Path) -> Encoded:
    d = np.load(path)
    meta = json.loads(d["meta"].tobytes())
    qa = read_qa(Path(meta["source"]))
    by_id = {a.id: a for a in qa.articles}
    arts = [by_id[a] for a in meta["articles"]]
    starts, ends, sa = d["sent_start"], d["sent_end"], d["sent_article"]
    sent_ptr = d["sent_ptr"]
    offs = d["sent_offsets"]
    sent_text, sent_terms = [], []
    for r in range(len(starts)):
        t = arts[int(sa[r])].text[int(starts[r]) : int(ends[r])]
        sent_text.append(t)
        sent_terms.append(word_terms(t, offs[sent_ptr[r] : sent_ptr[r + 1]]))
    q_text = meta["questions"]
    # Question token offsets were not cached: recompute them with the tokenizer.
    from transformers import AutoTokenizer

    from index.embedding import resolve_model_path

    tok = AutoTokenizer.from_pretrained(resolve_model_path("bundled"))
    q_terms = []
    enc = tok(
        q_text, truncation=True, max_length=256, return_offsets_mapping=True, return_special_tokens_mask=True
    )
    for text, special, o in zip(q_text, enc["special_tokens_mask"], enc["offset_mapping"], strict=True):
        keep = [i for i, s in enumerate(special) if not s][:QUESTION_TOKENS]
        q_terms.append(word_terms(text, np.asarray([o[i] for i in keep], np.int64).reshape(-1, 2)))
    bags = [frozenset(terms(t)) for t in sent_text]
    df: dict[str, int] = {}
    for b in bags:
        for t in b:
            df[t] = df.get(t, 0) + 1
    n = len(bags)
    idf = {t: math.log1p((n - c + 0.5) / (c + 0.5)) for t, c in df.items()}  # BM25's, as served
    title_bags = [frozenset(terms(a.title or "")) for a in arts]
    ctx = [
        title_bags[int(sa[r])] | (bags[r - 1] if r > 0 and sa[r - 1] == sa[r] else frozenset())
        for r in range(len(bags))
    ]
    return Encoded(
        path.stem,
        sa,
        d["sent_vec"].astype(np.float32),
        d["sent_states"],
        sent_ptr,
        d["article_first"],
        d["q_article"],
        d["q_vec"].astype(np.float32),
        d["q_states"],
        d["q_ptr"],
        d["q_answerable"],
        sent_text,
        sent_terms,
        bags,
        q_text,
        q_terms,
        [frozenset(terms(t)) for t in q_text],
        meta["answers"],
        [list(x) for x in meta["gold_rows"]],
        [[tuple(t) for t in x] for x in meta["gold_tokens"]],
        idf,
        {t: bm25_rarity(c, n) for t, c in df.items()},
        str(meta["source"]),
        ctx_bag=ctx,
    )


def pair_features(e: Encoded, i: int, rows: np.ndarray) -> np.ndarray:
    """PAIR_FEATURES: cosine and the idf-weighted share of question terms in each sentence."""
    dense = e.sent_vec[rows] @ e.q_vec[i]
    qb = e.q_bag[i]
    w = sum(e.idf.get(t, 1.0) for t in qb) or 1.0
    lex = np.array(
        [sum(e.idf.get(t, 1.0) for t in qb & e.sent_bag[r]) / w for r in rows.tolist()], np.float32
    )
    return np.stack([dense, lex], axis=1).astype(np.float32)


def cheap_scores(e: Encoded, i: int, rows: np.ndarray) -> np.ndarray:
    """cosine + idf-weighted share of question terms: the baseline the reader must beat."""
    return pair_features(e, i, rows).sum(axis=1)


@dataclass
class Example:
    set: int
    q: int
    rows: list[int]
    labels: list[int]
    span: tuple[int, int] | None  # tokens of the answer in rows[0] when labels[0] == 1


def examples(e: Encoded, k: int, negatives: int, rng: random.Random) -> list[Example]:
    out = []
    n_sent = len(e.sent_text)
    for i in range(len(e.q_text)):
        a = int(e.q_article[i])
        lo, hi = int(e.article_first[a]), int(e.article_first[a + 1])
        if hi <= lo:
            continue
        gold = e.gold_rows[i]
        if e.q_answerable[i] and not gold:
            continue
        rows = np.arange(lo, hi)
        sc = cheap_scores(e, i, rows)
        order = rows[np.argsort(-sc)]
        negs = [int(r) for r in order if int(r) not in gold and not hits(e.sent_text[int(r)], e.answers[i])][
            :negatives
        ]
        other = rng.randrange(n_sent)
        if int(e.sent_article[other]) != a:
            negs.append(other)
        if gold:
            out.append(Example(k, i, [gold[0], *negs], [1] + [0] * len(negs), e.gold_tokens[i][0]))
        elif i in e.near_of:  # a changed question: the sentence that answered the original first
            rows_ = [e.near_of[i], *[r for r in negs if r != e.near_of[i]]]
            out.append(Example(k, i, rows_, [0] * len(rows_), None))
        else:
            out.append(Example(k, i, negs, [0] * len(negs), None))
    return out


def add_near_misses(e: Encoded, share: float, rng: random.Random) -> dict[str, int]:
    """Append changed copies of `share` of the answerable questions (scripts/near_misses.py), each
    without an answer, paired with its original's answering sentence; returns counts by kind."""
    from near_misses import perturb

    from index.embedding import SentenceTransformerEmbedder

    made: list[tuple[int, str, int]] = []  # (original, changed text, gold row)
    kinds: dict[str, int] = {}
    articles: dict[int, str] = {}  # article -> its sentences joined, made once

    def article(a: int) -> str:
        if a not in articles:
            articles[a] = " ".join(e.sent_text[int(e.article_first[a]) : int(e.article_first[a + 1])])
        return articles[a]

    for i in range(len(e.q_text)):
        if not (e.q_answerable[i] and e.gold_rows[i]) or rng.random() >= share:
            continue
        row = e.gold_rows[i][0]
        got = perturb(e.q_text[i], e.sent_text[row], article(int(e.q_article[i])), rng)
        if got:
            kinds[got[0]] = kinds.get(got[0], 0) + 1
            made.append((i, got[1], row))
    if not made:
        return kinds
    enc = SentenceTransformerEmbedder().encode_states([t for _, t, _ in made], max_tokens=QUESTION_TOKENS)
    base = len(e.q_text)
    flat = [e.q_states, *[np.asarray(x, np.float16) for x in enc.states]]
    e.q_ptr = np.concatenate([e.q_ptr, e.q_ptr[-1] + np.cumsum([len(x) for x in enc.states])])
    e.q_states = np.concatenate(flat)
    e.q_vec = np.concatenate([e.q_vec, enc.vectors.astype(np.float32)])
    e.q_article = np.concatenate([e.q_article, [e.q_article[i] for i, _, _ in made]]).astype(np.int32)
    e.q_answerable = np.concatenate([e.q_answerable, np.zeros(len(made), bool)])
    for k, ((_, text, row), offs) in enumerate(zip(made, enc.offsets, strict=True)):
        e.q_text.append(text)
        e.q_terms.append(word_terms(text, offs))
        e.q_bag.append(frozenset(terms(text)))
        e.answers.append([])
        e.gold_rows.append([])
        e.gold_tokens.append([])
        e.near_of[base + k] = row
    return kinds


def batch_tensors(sets: list[Encoded], batch: list[Example], context: bool = False):  # type: ignore[no-untyped-def]
    """The network's inputs for a batch; `context`: question flags with the sentences' context
    (question_flags), for a reader built with it."""
    qs, ss, qf, sf, pair, qi, si = [], [], [], [], [], [], []
    for ex in batch:
        e = sets[ex.set]
        pair.append(pair_features(e, ex.q, np.asarray(ex.rows)))
        rare = e.rare
        q_idf = token_idf(e.q_terms[ex.q], rare)
        for r in ex.rows:
            qs.append(e.question(ex.q))
            ss.append(e.sentence(r))
            if context:
                qf.append(question_flags(e.q_terms[ex.q], e.sent_bag[r], e.ctx_bag[r]))
            else:
                qf.append(match_flags(e.q_terms[ex.q], e.sent_bag[r]))
            sf.append(match_flags(e.sent_terms[r], e.q_bag[ex.q]))
            qi.append(q_idf)
            si.append(token_idf(e.sent_terms[r], rare))
    q, qm = pad_batch(qs, QUESTION_TOKENS)
    s, sm = pad_batch(ss, SENTENCE_TOKENS)
    pairs = torch.from_numpy(np.concatenate(pair))
    rarity = (pad_rows(qi, q.shape[1], np.float32), pad_rows(si, s.shape[1], np.float32))
    return q, pad_rows(qf, q.shape[1]), qm, s, pad_rows(sf, s.shape[1]), sm, pairs, rarity


def loss_of(net, sets: list[Encoded], batch: list[Example]):  # type: ignore[no-untyped-def]
    q, qf, qm, s, sf, sm, pair, (qi, si) = batch_tensors(sets, batch, bool(net.config.get("context")))
    rel, st, en = net(q, qf, qm, s, sf, sm, pair, qi, si)
    labels = torch.tensor([lab for ex in batch for lab in ex.labels], dtype=torch.float32)
    point = torch.nn.functional.binary_cross_entropy_with_logits(rel, labels)
    rank, span, n_rank = torch.zeros(()), torch.zeros(()), 0
    pos = 0
    starts, ends, span_rows = [], [], []
    for ex in batch:
        g = len(ex.rows)
        if ex.labels[0] == 1:
            rank = rank - torch.log_softmax(rel[pos : pos + g], 0)[0]
            n_rank += 1
            if ex.span is not None:
                span_rows.append(pos)
                starts.append(ex.span[0])
                ends.append(ex.span[1])
        pos += g
    if n_rank:
        rank = rank / n_rank
    if span_rows:
        idx = torch.tensor(span_rows)
        span = torch.nn.functional.cross_entropy(
            st[idx], torch.tensor(starts)
        ) + torch.nn.functional.cross_entropy(en[idx], torch.tensor(ends))
    return rank + 0.5 * point + span, float(rank.detach()), float(span.detach())


def dev_hit_at_1(net, e: Encoded, top: int = 20, limit: int = 1500) -> dict[str, float]:
    """Collection-wide: candidates = top `top` by the cheap score, best by reader relevance. Where
    the set has unanswerable questions, also how well the best relevance tells the two apart
    (AUC: the chance that an answerable question's best relevance is above an unanswerable one's)."""
    net.eval()
    base_hits = reader_hits = n = 0
    answerable = [i for i in range(len(e.q_text)) if e.q_answerable[i]][:limit]
    unanswerable = [i for i in range(len(e.q_text)) if not e.q_answerable[i]][:limit]
    all_rows = np.arange(len(e.sent_text))
    best_rel: dict[bool, list[float]] = {True: [], False: []}
    with torch.inference_mode():
        for i in answerable + unanswerable:
            dense = e.sent_vec @ e.q_vec[i]
            pre = np.argpartition(-dense, min(200, len(dense) - 1))[:200]
            sc = cheap_scores(e, i, all_rows[pre])
            cand = pre[np.argsort(-sc)[:top]]
            ex = Example(0, i, cand.tolist(), [0] * len(cand), None)
            q, qf, qm, s, sf, sm, pair, (qi, si) = batch_tensors([e], [ex], bool(net.config.get("context")))
            rel, _, _ = net(q, qf, qm, s, sf, sm, pair, qi, si)
            best_rel[bool(e.q_answerable[i])].append(float(rel.max()))
            if not e.q_answerable[i]:
                continue
            base_hits += hits(e.sent_text[int(cand[0])], e.answers[i])
            best = int(cand[int(rel.argmax())])
            reader_hits += hits(e.sent_text[best], e.answers[i])
            n += 1
    net.train()
    out = {"baseline_hit@1": base_hits / max(n, 1), "reader_hit@1": reader_hits / max(n, 1), "n": n}
    if best_rel[False]:
        pos, neg = np.array(best_rel[True]), np.array(best_rel[False])
        out["answerable_vs_unanswerable_auc"] = float((pos[:, None] > neg[None, :]).mean())
    return out


def describe(e: Encoded) -> dict[str, object]:
    """What one cache holds, for the model card: its source and how many articles, sentences and
    questions (and synthetic near misses added here, appended after them) it gave."""
    questions = len(e.q_text) - len(e.near_of)
    return {
        "cache": e.name,
        "source": e.source,
        "articles": int(len(e.article_first) - 1),
        "sentences": len(e.sent_text),
        "questions": questions,
        "unanswerable": int((~e.q_answerable[:questions]).sum()),
        "synthetic_near_misses": len(e.near_of),
    }


def bucketed(exs: list[Example], sets: list[Encoded], batch: int) -> list[Example]:
    """Shuffled examples regrouped so that a batch holds questions of similar length (less padding),
    batches in random order."""
    out: list[Example] = []
    chunk = batch * 50
    for k in range(0, len(exs), chunk):
        part = sorted(exs[k : k + chunk], key=lambda x: len(sets[x.set].sentence(x.rows[0])))
        groups = [part[i : i + batch] for i in range(0, len(part), batch)]
        random.Random(k).shuffle(groups)
        out.extend(x for g in groups for x in g)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("caches", type=Path, nargs="+")
    ap.add_argument("--dev", type=Path, action="append", default=[])
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--minutes", type=float, default=100.0, help="stop training after this long")
    ap.add_argument("--batch", type=int, default=32, help="questions per step")
    ap.add_argument("--negatives", type=int, default=7)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-questions", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("index/answering/reader.pt"))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: every core)")
    ap.add_argument(
        "--pair", action="store_true", help="add PAIR_FEATURES to the relevance (reader learns the rest)"
    )
    ap.add_argument("--rarity", action="store_true", help="give the reader each token's word rarity")
    ap.add_argument(
        "--context",
        action="store_true",
        help="mark question words found only in the sentence's context (title, sentence before)",
    )
    ap.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from this reader file (same shape; one fitted without --context may be continued with it)",
    )
    ap.add_argument("--dev-every", type=int, default=400, help="steps between dev checks")
    ap.add_argument(
        "--near-misses",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="add a changed, unanswerable copy of this share of the questions (scripts/near_misses.py)",
    )
    a = ap.parse_args()
    # Importing index (faiss) sets the OpenMP runtime torch shares to one thread; the network's
    # ops train 1.4x faster on two (100 steps: 49 s -> 35 s on the 2-core machine, same losses).
    torch.set_num_threads(a.threads or os.cpu_count() or 1)
    rng = random.Random(a.seed)
    torch.manual_seed(a.seed)
    t0 = time.time()
    sets = [load(p) for p in a.caches]
    devs = [load(p) for p in a.dev]
    print(f"loaded {len(sets)} sets in {time.time() - t0:.0f}s", flush=True)
    if a.near_misses > 0:
        for e in sets:
            print(f"{e.name}: near misses {add_near_misses(e, a.near_misses, rng)}", flush=True)
    exs = [x for k, e in enumerate(sets) for x in examples(e, k, a.negatives, rng)]
    rng.shuffle(exs)
    if a.max_questions:
        exs = exs[: a.max_questions]
    exs = bucketed(exs, sets, a.batch)
    print(f"{len(exs)} training questions ({sum(x.labels[0] == 0 for x in exs)} without answer)", flush=True)
    net = build_network(extra=2 if a.pair else 0, idf=a.rarity, context=a.context)
    started_from: dict[str, object] | None = None
    if a.init:
        blob = torch.load(a.init, map_location="cpu", weights_only=False)
        state = {k: v.float() for k, v in blob["state"].items()}
        own = net.state_dict()["match.weight"]
        if state["match.weight"].shape[0] < own.shape[0]:
            # A reader fitted without context: its "no match" row also starts the new context
            # row, so the continued reader begins where the old one left off.
            w = state["match.weight"]
            state["match.weight"] = torch.cat([w, w[:1].expand(own.shape[0] - w.shape[0], -1)])
        missing = net.load_state_dict(state, strict=False)
        started_from = dict(blob.get("info", {}))  # the reader this one continues, with its own card
        print(f"started from {a.init} (new: {missing.missing_keys})", flush=True)
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=0.01)
    steps = int(math.ceil(len(exs) / a.batch) * a.epochs)
    warm = max(1, min(200, steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min((k + 1) / warm, max(0.05, (steps - k) / max(1, steps - warm)))
    )
    net.train()
    step, deadline = 0, time.time() + a.minutes * 60
    log: list[dict[str, float]] = []
    while step < steps and time.time() < deadline:
        for k in range(0, len(exs), a.batch):
            if step >= steps or time.time() >= deadline:
                break
            loss, rank, span = loss_of(net, sets, exs[k : k + a.batch])
            if step == 0:
                print(f"first step {time.time() - t0:.0f}s", flush=True)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            if step % 100 == 0:
                print(f"step {step}/{steps} loss {float(loss.detach()):.3f} rank {rank:.3f} span {span:.3f} "
                      f"{time.time() - t0:.0f}s", flush=True)  # fmt: skip
            if step % a.dev_every == 0 and devs:
                log.append(
                    {
                        "step": step,
                        **{
                            f"{d.name}_{m}": v
                            for d in devs
                            for m, v in dev_hit_at_1(net, d, limit=300).items()
                        },
                    }
                )
                print(log[-1], flush=True)
        rng.shuffle(exs)
        exs = bucketed(exs, sets, a.batch)
    figures = {d.name: dev_hit_at_1(net, d) for d in devs}
    print(figures, flush=True)
    info = {
        "fitted_on": [str(p) for p in a.caches],
        "training_data": [describe(e) for e in sets],
        "questions": len(exs),
        "steps": step,
        "seed": a.seed,
        "command": "python scripts/fit_reader.py " + " ".join(sys.argv[1:]),
        "minutes": round((time.time() - t0) / 60, 1),
        "dev_reader_only": figures,
        "near_misses": a.near_misses,
    }
    if started_from is not None:
        info["started_from"] = started_from
    save_reader(net, a.out, info)
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e6:.1f} MB)", flush=True)


if __name__ == "__main__":
    main()
