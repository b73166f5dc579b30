"""index.search.lexical and index.search.questions: terms, the stemmer, the vocabulary, term counts,
BM25, and what a question asks for."""

from __future__ import annotations

import numpy as np
import pytest

from index.search.lexical import BM25, STOPWORDS, Vocabulary, stem, term_matrix, terms
from index.search.questions import question_type

# -- terms ------------------------------------------------------------------------------------------


def test_terms_fold_case() -> None:
    assert terms("Jupiter") == terms("JUPITER") == terms("jupiter") == ["jupiter"]


def test_terms_fold_accents() -> None:
    assert terms("Café Müller") == terms("cafe muller")


def test_terms_drop_stopwords() -> None:
    assert terms("What is the largest planet in the Solar System?") == [
        "largest",
        "planet",
        "solar",
        "system",
    ]
    assert terms("it is what it is") == []
    assert all(terms(w) == [] for w in ("The", "AND", "which", "would"))


def test_words_for_whoever_wrote_the_text_are_no_terms() -> None:
    # A post says "I"; a member asks about "the poster" or "the author": those words would only
    # be question words that the text never holds.
    assert terms("What bike does the poster's boyfriend have?") == terms("What bike does the boyfriend have?")
    assert (
        terms("What does the author recommend?") == terms("What do the writers recommend?") == ["recommend"]
    )
    assert terms("Which reviewer or commenter liked the Redditor's blogger friend?") == terms("liked friend")


@pytest.mark.parametrize("forms", [("running", "runs", "run", "ran"), ("covered", "covers", "cover")])
def test_forms_of_one_word_share_a_term(forms: tuple[str, ...]) -> None:
    assert len({tuple(terms(w)) for w in forms}) == 1
    assert len(terms(forms[0])) == 1


def test_irregular_forms_meet_their_base() -> None:
    assert set(terms("Who leads the team?")) == set(terms("the team was led by her")) == {"lead", "team"}
    assert terms("led") == terms("leads") == terms("lead")
    assert terms("wrote") == terms("written") == terms("write")


def test_the_stemmer_keeps_short_words_numbers_and_double_s() -> None:
    assert stem("bus") == "bus"
    assert stem("2024") == "2024"
    assert stem("glass") == "glass"  # not "glas"
    assert stem("stopped") == "stop"  # the doubled consonant goes
    assert stem("nations") == "nation"
    assert stem("cities") == "city"


def test_apostrophes_inside_words_keep_one_word() -> None:
    # Not split at the apostrophe ("o" and "neill" would be two terms, "don" a stopword).
    assert terms("O'Neill") == ["oneill"]
    assert terms("don't") == ["dont"]
    # The typographic apostrophe is the same word.
    assert terms("O’Neill") == terms("O'Neill")
    # The possessive 's is dropped: "Saturn's rings" matches "Saturn".
    assert terms("Saturn's rings") == terms("Saturn rings") == ["saturn", "ring"]
    assert terms("Saturn’s") == ["saturn"]


def test_punctuation_and_underscores_split_words() -> None:
    assert terms("sun-light, moon_beam; star.") == ["sun", "light", "moon", "beam", "star"]
    assert terms("") == [] and terms("?!...") == []


def test_stopword_list_is_lowercase() -> None:
    assert all(w == w.casefold() for w in STOPWORDS)


# -- the vocabulary and term counts -----------------------------------------------------------------


def test_vocabulary_grows_for_new_terms_and_keeps_old_ids() -> None:
    v = Vocabulary()
    a = v.add("apple")
    b = v.add("banana")
    assert (a, b) == (0, 1) and len(v) == 2
    assert v.add("apple") == a and len(v) == 2  # an old term keeps its id
    c = v.add("cherry")
    assert c == 2 and v.ids["apple"] == a and v.ids["banana"] == b
    assert v.lookup(["cherry", "durian", "apple"]) == [c, a]  # unknown terms are skipped


def test_term_matrix_counts_and_grows_the_vocabulary() -> None:
    v = Vocabulary()
    v.add("old")
    m = term_matrix([["moon", "moon", "earth"], [], ["old", "sun"]], v)
    assert m.shape == (3, 4)
    assert set(v.ids) == {"old", "moon", "earth", "sun"} and v.ids["old"] == 0
    dense = m.toarray()
    assert dense[0, v.ids["moon"]] == 2 and dense[0, v.ids["earth"]] == 1
    assert dense[1].sum() == 0
    assert dense[2, v.ids["old"]] == 1 and dense[2, v.ids["sun"]] == 1
    assert dense.sum() == 5


def test_term_matrix_of_nothing_has_one_column() -> None:
    m = term_matrix([], Vocabulary())
    assert m.shape == (0, 1)


# -- BM25 -------------------------------------------------------------------------------------------


def _bm25(sentences: list[str]) -> tuple[BM25, Vocabulary]:
    v = Vocabulary()
    return BM25(term_matrix([terms(s) for s in sentences], v)), v


def test_a_rare_query_term_outscores_a_common_one() -> None:
    sentences = [
        "The planet orbits the star.",
        "The planet has rings.",
        "The planet is cold.",
        "A comet crossed the sky.",
    ]
    bm, v = _bm25(sentences)
    s = bm.scores(v.lookup(terms("planet comet")))
    # "comet" is in one sentence, "planet" in three: the comet sentence ranks first.
    assert int(np.argmax(s)) == 3
    assert s[3] > s[0] > 0
    assert bm.idf[v.ids["comet"]] > bm.idf[v.ids["planet"]]


def test_bm25_scores_zero_without_a_matching_term() -> None:
    bm, v = _bm25(["The moon is bright.", "Bread rises."])
    s = bm.scores(v.lookup(terms("moon")))
    assert s[0] > 0 and s[1] == 0
    assert not bm.scores([]).any()
    assert not bm.scores([10_000]).any()  # an id past the matrix is ignored
    assert bm.scores([]).shape == (2,)


def test_bm25_prefers_the_shorter_sentence_for_the_same_term() -> None:
    bm, v = _bm25(["Moon.", "Moon rocks, dust, craters, seas and mountains everywhere."])
    s = bm.scores(v.lookup(["moon"]))
    assert s[0] > s[1] > 0


def test_bm25_on_an_empty_matrix() -> None:
    bm, _ = _bm25([])
    assert bm.n == 0 and bm.scores([0]).shape == (0,)


def test_bm25_lengths_count_terms() -> None:
    bm, _ = _bm25(["The Moon orbits the Earth.", "Rain."])
    assert bm.lengths.tolist() == [3.0, 1.0]


# -- question types ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many moons does Jupiter have?", "number"),
        ("How much does the loaf weigh?", "number"),
        ("What percentage of the soil is clay?", "number"),
        ("how old is the oak?", "number"),
        ("When did the war end?", "date"),
        ("In what year was the museum opened?", "date"),
        ("Since when has it been closed?", "date"),
        ("Who wrote Hamlet?", "person"),
        ("Which president signed the treaty?", "person"),
        ("Whose idea was the bridge?", "person"),
        ("Where is the glacier museum?", "place"),
        ("Which country borders Spain?", "place"),
        ("What is a light year?", None),
        ("Why does bread rise?", None),
        ("How does yeast work?", None),
        ("Explain photosynthesis", None),
        ("", None),
    ],
)
def test_question_type(question: str, kind: str | None) -> None:
    assert question_type(question) == kind


def test_question_type_takes_the_first_kind_that_fits() -> None:
    # Both a number and a person question: number is checked first.
    assert question_type("How many people did the king who ruled Spain meet?") == "number"
