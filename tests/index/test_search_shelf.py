"""index.search.shelf and index.search.candidates on small hand-made shelves (no model, no SQL):
building from ShelfRows, copy on write (`with_rows`, `without_articles`), neighbourhoods, exact
sentence slices, passages' rows, per-sentence facts, and the candidate rows of a question."""

from __future__ import annotations

import numpy as np

from index.embedding import FakeEmbedder
from index.search.candidates import candidate_rows
from index.search.lexical import terms
from index.search.shelf import PARAGRAPH_REACH, SentenceFacts, Shelf, ShelfRows
from index.storage.vectors import VectorIndex

DIM = 16
EMB = FakeEmbedder(dim=DIM, model_id="fake-shelf")

SPACE = ["The Moon orbits the Earth.", "Jupiter is the largest planet.", "Saturn has rings of ice."]
BREAD = ["Bread rises because of yeast.", "Knead the dough for ten minutes."]
GARDEN = ["Tomatoes need sunlight.", "Water the tomatoes twice a week.", "Mulch keeps weeds away."]


def shelf_rows(articles: dict[int, tuple[str, list[str]]], first_sentence_id: int = 1) -> ShelfRows:
    """ShelfRows of articles {id: (title, sentences)}: each article's text is its sentences joined
    by two spaces (so that offsets are not simply cumulative lengths), one passage per article
    (chunk id = 100 * article id) and a second one over its last two sentences."""
    sids, aids, starts, ends, sentences = [], [], [], [], []
    texts, titles, chunks, refs = {}, {}, {}, {}
    sid = first_sentence_id
    for aid, (title, sents) in sorted(articles.items()):
        pos = 0
        for s in sents:
            sids.append(sid)
            aids.append(aid)
            starts.append(pos)
            ends.append(pos + len(s))
            sentences.append(s)
            sid += 1
            pos += len(s) + 2
        texts[aid] = "  ".join(sents)
        titles[aid] = title
        chunks[100 * aid] = (aid, 0, len(sents) - 1)
        if len(sents) >= 2:
            chunks[100 * aid + 1] = (aid, len(sents) - 2, len(sents) - 1)
        refs[aid] = (f"https://example.org/{aid}", f"src-{aid}")
    vectors = EMB.encode(sentences) if sentences else np.zeros((0, DIM), np.float32)
    return ShelfRows(
        np.asarray(sids, np.int64),
        np.asarray(aids, np.int64),
        np.asarray(starts, np.int64),
        np.asarray(ends, np.int64),
        vectors,
        texts,
        titles,
        chunks,
        refs,
    )


def passages_of(rows: ShelfRows, index: VectorIndex | None = None) -> VectorIndex:
    """A passage index over rows' chunks (mean of their sentence vectors), new or extended."""
    index = index or VectorIndex(DIM, EMB.model_id)
    base = {a: int(np.flatnonzero(rows.article_ids == a)[0]) for a in rows.texts}
    ids, vecs = [], []
    for cid, (aid, first, last) in rows.passage_spans.items():
        v = rows.vectors[base[aid] + first : base[aid] + last + 1].sum(axis=0)
        ids.append(cid)
        vecs.append(v / max(float(np.linalg.norm(v)), 1e-9))
    if ids:
        index.add(np.asarray(ids, np.int64), np.asarray(vecs, np.float32))
    return index


def make_shelf(articles: dict[int, tuple[str, list[str]]]) -> Shelf:
    rows = shelf_rows(articles)
    return Shelf.from_rows("test", DIM, rows, passages_of(rows))


def two_articles() -> Shelf:
    return make_shelf({1: ("Planets and moons", SPACE), 2: ("Baking bread", BREAD)})


def rows_of(shelf: Shelf, article_id: int) -> list[int]:
    return np.flatnonzero(shelf.article_ids == article_id).tolist()


def bm25_of(shelf: Shelf, text: str) -> np.ndarray:
    return shelf.bm25.scores(shelf.vocab.lookup(terms(text)))


def candidates(shelf: Shelf, question: str, **kw: int) -> np.ndarray:
    args = {"dense_k": 2, "lexical_k": 2, "passage_k": 1, "exhaustive_limit": 1_000, **kw}
    return candidate_rows(shelf, EMB.encode([question])[0], shelf.vocab.lookup(terms(question)), **args)


# -- building ---------------------------------------------------------------------------------------


def test_a_shelf_built_from_rows() -> None:
    shelf = two_articles()
    assert shelf.size == 5 and shelf.collection == "test" and shelf.dim == DIM
    assert shelf.article_ids.tolist() == [1, 1, 1, 2, 2]
    assert shelf.counts.shape[0] == 5 and shelf.bm25.n == 5
    assert shelf.article_base == {1: 0, 2: 3}
    assert shelf.titles == {1: "Planets and moons", 2: "Baking bread"}
    assert shelf.title_terms[2] == frozenset({"bak", "bread"})
    assert shelf.refs[1] == ("https://example.org/1", "src-1")
    assert shelf.lengths.tolist() == [len(terms(s)) for s in SPACE + BREAD]


def test_sentence_text_is_the_exact_slice_of_the_article() -> None:
    shelf = two_articles()
    for row, want in enumerate(SPACE + BREAD):
        aid = int(shelf.article_ids[row])
        start, end = int(shelf.starts[row]), int(shelf.ends[row])
        assert shelf.sentence_text(row) == want == shelf.texts[aid][start:end]


def test_sentence_text_with_unicode_offsets() -> None:
    sents = ["Café Müller opened in 1998.", "Señora Núñez 🙂 ran it."]
    shelf = make_shelf({7: ("Café", sents)})
    assert [shelf.sentence_text(r) for r in range(shelf.size)] == sents


def test_chunk_rows_are_the_passage_sentences() -> None:
    shelf = two_articles()
    assert shelf.passage_sentences(100) == range(0, 3)
    assert shelf.passage_sentences(101) == range(1, 3)
    assert shelf.passage_sentences(200) == range(3, 5)
    assert shelf.passage_sentences(999) == range(0)


def test_sentence_facts() -> None:
    facts = SentenceFacts.of(
        [
            "Knead the dough for ten minutes.",
            "The museum opened in 1998.",
            "Bread rises.",
            "It was built by Gustave Eiffel in Paris.",
        ]
    )
    assert facts.has_number.tolist() == [True, True, False, False]
    assert facts.has_date.tolist() == [False, True, False, False]
    # Capitalised words after the first one: names and places (the first word is not a name).
    assert facts.names[2] == frozenset()
    assert facts.names[3] == frozenset(terms("Gustave Eiffel Paris"))
    part = facts.take(np.array([3, 0]))
    assert part.has_number.tolist() == [False, True] and part.names[0] == facts.names[3]
    both = part.plus(facts.take(np.array([1])))
    assert both.has_date.tolist() == [False, False, True] and len(both.names) == 3


# -- copy on write ----------------------------------------------------------------------------------


def test_with_rows_adds_articles_and_leaves_the_old_shelf_as_it_was() -> None:
    old = two_articles()
    before_bm25 = bm25_of(old, "Moon yeast")
    before_vocab = dict(old.vocab.ids)
    before_shape = old.counts.shape
    rows = shelf_rows({3: ("Growing tomatoes", GARDEN)}, first_sentence_id=50)
    new = old.with_rows(rows)

    assert new is not old and new.size == 8 and old.size == 5
    assert new.article_ids.tolist() == [1, 1, 1, 2, 2, 3, 3, 3]
    assert new.sentence_ids[-3:].tolist() == [50, 51, 52]
    assert [new.sentence_text(r) for r in rows_of(new, 3)] == GARDEN
    assert new.passage_sentences(300) == range(5, 8) and new.passage_sentences(301) == range(6, 8)
    assert new.facts.has_number.shape == (8,) and len(new.facts.names) == 8
    # The new shelf finds the new article's words.
    tomato = bm25_of(new, "tomatoes")
    assert tomato[rows_of(new, 3)].max() > 0 and not tomato[:5].any()

    # The old one answers as before: same rows, words, scores, vocabulary.
    assert old.counts.shape == before_shape
    assert old.vocab.ids == before_vocab
    assert 3 not in old.texts and 3 not in old.titles and 300 not in old.passage_spans
    assert old.passage_sentences(300) == range(0)
    assert old.vocab.lookup(terms("tomatoes")) == []
    assert np.array_equal(bm25_of(old, "Moon yeast"), before_bm25)
    assert old.facts.has_number.shape == (5,)
    # Old terms keep their ids in the new vocabulary.
    assert all(new.vocab.ids[t] == i for t, i in before_vocab.items())


def test_with_rows_recomputes_idf_over_all_rows() -> None:
    old = make_shelf({1: ("Planets", SPACE)})
    new = old.with_rows(shelf_rows({2: ("More planets", ["Mars is a planet.", "Venus is a planet."])}, 10))
    j = new.vocab.ids["planet"]
    # "planet" was in 1 of 3 sentences, now in 3 of 5: a more common term, a lower idf.
    assert new.bm25.idf[j] < old.bm25.idf[old.vocab.ids["planet"]]


def test_with_rows_onto_an_empty_shelf() -> None:
    empty = make_shelf({})
    assert empty.size == 0 and len(candidates(empty, "Moon")) == 0
    full = empty.with_rows(shelf_rows({1: ("Planets", SPACE)}))
    assert full.size == 3 and [full.sentence_text(r) for r in range(3)] == SPACE
    assert bm25_of(full, "Saturn rings").argmax() == 2


def test_without_articles_hides_their_rows() -> None:
    old = make_shelf({1: ("Planets", SPACE), 2: ("Baking bread", BREAD), 3: ("Tomatoes", GARDEN)})
    new = old.without_articles({2})
    assert new.size == 6 and old.size == 8
    assert 2 not in set(new.article_ids.tolist())
    assert 2 not in new.texts and 2 not in new.titles and 2 not in new.title_terms and 2 not in new.refs
    assert 200 not in new.passage_spans and new.passage_sentences(200) == range(0)
    # BM25 no longer sees the bread sentences; the dense rows are the others' vectors only.
    assert not bm25_of(new, "bread yeast dough knead").any()
    assert bm25_of(old, "bread yeast dough knead").any()
    assert new.vectors.shape == (6, DIM)
    kept = rows_of(old, 1) + rows_of(old, 3)
    assert np.array_equal(new.vectors, old.vectors[kept])
    assert new.sentence_ids.tolist() == old.sentence_ids[kept].tolist()
    # The rows after the removed article moved up, and still slice their own text.
    assert [new.sentence_text(r) for r in rows_of(new, 3)] == GARDEN
    assert new.passage_sentences(300) == range(3, 6)
    assert new.facts.has_number.tolist() == old.facts.has_number[kept].tolist()
    # The old shelf is untouched.
    assert old.size == 8 and 2 in old.texts and old.passage_sentences(200) == range(3, 5)


def test_without_articles_is_never_a_candidate_even_through_the_shared_passage_index() -> None:
    old = two_articles()
    new = old.without_articles({2})
    assert new.passages is old.passages  # shared: it still holds article 2's passage
    q = "Why does bread rise with yeast?"
    assert set(old.article_ids[candidates(old, q)].tolist()) >= {2}
    got = candidates(new, q, dense_k=10, lexical_k=10, passage_k=10)
    assert len(got) > 0 and set(new.article_ids[got].tolist()) == {1}


def test_without_every_article_is_empty() -> None:
    new = two_articles().without_articles({1, 2})
    assert new.size == 0 and new.texts == {} and new.passage_spans == {}
    assert len(candidates(new, "Moon")) == 0


def test_article_terms_are_cached_and_survive_copies() -> None:
    old = two_articles()
    t = old.article_terms(1)
    assert t == frozenset(terms(" ".join(SPACE)))
    assert old.article_terms(1) is t
    assert old.without_articles({2}).article_terms(1) is t
    added = old.with_rows(shelf_rows({3: ("Tomatoes", GARDEN)}, 50))
    assert added.article_terms(1) is t


# -- neighbourhoods ---------------------------------------------------------------------------------


def test_neighbourhood_never_crosses_an_article_border() -> None:
    shelf = make_shelf({1: ("Planets", SPACE), 2: ("Bread", BREAD), 3: ("Single", ["Only one sentence."])})
    assert shelf.neighbourhood(0) == [0, 1]  # first row of the shelf
    assert shelf.neighbourhood(1) == [0, 1, 2]
    assert shelf.neighbourhood(2) == [1, 2]  # last of article 1: not the first of article 2
    assert shelf.neighbourhood(3) == [3, 4]  # first of article 2
    assert shelf.neighbourhood(4) == [3, 4]  # article 2's last; row 5 is article 3
    assert shelf.neighbourhood(5) == [5]  # a one-sentence article, last row of the shelf
    for r in range(shelf.size):
        assert {int(shelf.article_ids[n]) for n in shelf.neighbourhood(r)} == {int(shelf.article_ids[r])}


# -- candidates -------------------------------------------------------------------------------------


def test_candidate_rows_are_unique_sorted_shelf_rows() -> None:
    shelf = make_shelf({1: ("Planets", SPACE), 2: ("Bread", BREAD), 3: ("Tomatoes", GARDEN)})
    got = candidates(shelf, "Which planet has rings?", dense_k=3, lexical_k=3, passage_k=2)
    assert got.dtype == np.int64
    assert got.tolist() == sorted(set(got.tolist()))
    assert all(0 <= r < shelf.size for r in got.tolist())


def test_candidate_rows_are_the_union_of_dense_bm25_and_passage_picks() -> None:
    shelf = make_shelf({1: ("Planets", SPACE), 2: ("Bread", BREAD), 3: ("Tomatoes", GARDEN)})
    q = "Saturn rings"
    qvec = EMB.encode([q])[0]
    qids = shelf.vocab.lookup(terms(q))
    # Each source alone.
    lexical = candidate_rows(shelf, qvec, qids, dense_k=1, lexical_k=1, passage_k=0, exhaustive_limit=0)
    assert lexical.tolist() == [2]  # "Saturn has rings of ice." (dense search is off past the limit)
    dense = candidate_rows(shelf, qvec, [], dense_k=1, lexical_k=1, passage_k=0, exhaustive_limit=1_000)
    assert len(dense) == 1 and int(dense[0]) == int(np.argmax(shelf.vectors @ qvec))
    passage = candidate_rows(shelf, qvec, [], dense_k=1, lexical_k=1, passage_k=1, exhaustive_limit=0)
    _, ids = shelf.passages.search(qvec, 1)
    assert passage.tolist() == list(shelf.passage_sentences(int(ids[0][0])))
    # Together: the union of the three.
    union = candidate_rows(shelf, qvec, qids, dense_k=1, lexical_k=1, passage_k=1, exhaustive_limit=1_000)
    assert union.tolist() == sorted(set(lexical.tolist()) | set(dense.tolist()) | set(passage.tolist()))


def test_bm25_candidates_need_a_matching_term() -> None:
    shelf = two_articles()
    qvec = EMB.encode(["zebra"])[0]
    # No dense search, no passages, no term of the collection: nothing.
    got = candidate_rows(
        shelf, qvec, shelf.vocab.lookup(["zebra"]), dense_k=5, lexical_k=5, passage_k=0, exhaustive_limit=0
    )
    assert got.tolist() == []
    # A term found in one sentence only gives that sentence, not lexical_k rows of zeros.
    got = candidate_rows(
        shelf, qvec, shelf.vocab.lookup(["jupiter"]), dense_k=5, lexical_k=5, passage_k=0, exhaustive_limit=0
    )
    assert got.tolist() == [1]


def test_candidate_rows_of_an_empty_shelf() -> None:
    empty = make_shelf({})
    got = candidate_rows(
        empty, np.ones(DIM, np.float32) / 4, [0], dense_k=5, lexical_k=5, passage_k=5, exhaustive_limit=10
    )
    assert got.dtype == np.int64 and got.shape == (0,)


def test_dense_k_larger_than_the_shelf() -> None:
    shelf = two_articles()
    got = candidates(shelf, "Moon", dense_k=50, lexical_k=50, passage_k=50)
    assert got.tolist() == list(range(shelf.size))


# -- paragraphs -------------------------------------------------------------------------------------


def paragraph_rows(articles: dict[int, list[list[str]]], first_sentence_id: int = 1) -> ShelfRows:
    """ShelfRows of articles {id: paragraphs of sentences}: sentences joined by a space inside a
    paragraph, paragraphs by a blank line (with stray spaces on it, as pasted text has)."""
    flat = {aid: (f"Article {aid}", [s for p in paras for s in p]) for aid, paras in articles.items()}
    rows = shelf_rows(flat, first_sentence_id)
    starts = []
    for aid, paras in sorted(articles.items()):
        text = ""
        for k, p in enumerate(paras):
            if k:
                text += "\n \n"
            for j, s in enumerate(p):
                if j:
                    text += " "
                starts.append(len(text))
                text += s
        rows.texts[aid] = text
    rows.starts = np.asarray(starts, np.int64)
    rows.ends = rows.starts + np.asarray([len(s) for a in sorted(flat) for s in flat[a][1]], np.int64)
    return rows


def test_paragraph_windows_stop_at_blank_lines_and_article_ends() -> None:
    rows = paragraph_rows({1: [["A1.", "A2.", "A3."], ["B1.", "B2."]], 2: [["C1.", "C2."]]})
    shelf = Shelf.from_rows("test", DIM, rows, passages_of(rows))
    assert [shelf.sentence_text(r) for r in range(shelf.size)] == [
        "A1.",
        "A2.",
        "A3.",
        "B1.",
        "B2.",
        "C1.",
        "C2.",
    ]
    lo, hi = shelf.paragraphs.windows(np.arange(shelf.size))
    assert lo.tolist() == [0, 0, 0, 3, 3, 5, 5]
    assert hi.tolist() == [2, 2, 2, 4, 4, 6, 6]


def test_a_long_paragraph_is_a_window_of_its_neighbours() -> None:
    sents = [f"S{i}." for i in range(12)]
    rows = paragraph_rows({1: [sents]})
    shelf = Shelf.from_rows("test", DIM, rows, passages_of(rows))
    lo, hi = shelf.paragraphs.windows(np.arange(12))
    reach = PARAGRAPH_REACH
    assert lo.tolist() == [max(0, r - reach) for r in range(12)]
    assert hi.tolist() == [min(11, r + reach) for r in range(12)]


def test_paragraph_windows_survive_adding_and_removing_articles() -> None:
    first = paragraph_rows({1: [["A1.", "A2."], ["B1."]]})
    shelf = Shelf.from_rows("test", DIM, first, passages_of(first))
    more = paragraph_rows({2: [["C1."], ["D1.", "D2.", "D3."]]}, first_sentence_id=10)
    grown = shelf.with_rows(more)
    lo, hi = grown.paragraphs.windows(np.arange(grown.size))
    assert lo.tolist() == [0, 0, 2, 3, 4, 4, 4] and hi.tolist() == [1, 1, 2, 3, 6, 6, 6]
    left = grown.without_articles({1})
    lo, hi = left.paragraphs.windows(np.arange(left.size))
    assert [left.sentence_text(r) for r in range(left.size)] == ["C1.", "D1.", "D2.", "D3."]
    assert lo.tolist() == [0, 1, 1, 1] and hi.tolist() == [0, 3, 3, 3]
