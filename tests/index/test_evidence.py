"""The judge's evidence: traces of swapped, flipped or missing words, and the answer's neighbourhood."""

from __future__ import annotations

import numpy as np
import pytest

from index.answering.evidence import EVIDENCE, judge_evidence
from index.library import Library
from tests.conftest import make_doc

C = "local"
TEXT = (
    "The glacier museum opened in 1998 in the town of Fjordby. "
    "If two identical fermions have a symmetric spin function, the spatial variables must be antisymmetric. "
    "In 1993, Galor and Zeira showed that inequality in the presence of credit market imperfections has a "
    "long lasting detrimental effect on human capital formation. "
    "In September 2007, Sky launched a new TV advertising campaign targeting Sky+ at women. "
    "Some quantitative force laws were discovered using such tools. "
    "National Security Council spokesman John Kirby said the shipments were being hidden."
)


@pytest.fixture
def library(fake_library: Library) -> Library:
    fake_library.add_documents(C, [make_doc(TEXT, "Assorted facts", source_id="facts")])
    return fake_library


def evidence(library: Library, question: str, sentence_start: str) -> dict[str, float]:
    shelf = library.shelf(C)
    row = next(r for r in range(shelf.size) if shelf.sentence_text(r).startswith(sentence_start))
    values = judge_evidence(shelf, question, row, None)
    assert values.shape == (len(EVIDENCE),) and np.isfinite(values).all()
    return dict(zip(EVIDENCE, values.tolist(), strict=True))


def test_a_negated_word_is_a_flip(library: Library) -> None:
    flipped = evidence(library, "Inequality with credit market perfections has what effect?", "In 1993")
    same = evidence(library, "Inequality with credit market imperfections has what effect?", "In 1993")
    assert flipped["affix_flip"] == 1.0 and same["affix_flip"] == 0.0


def test_an_opposite_word_is_noticed(library: Library) -> None:
    swapped = evidence(library, "When did Sky launch a campaign targeting men?", "In September 2007")
    plain = evidence(library, "When did Sky launch a campaign targeting women?", "In September 2007")
    assert swapped["antonym"] == 1.0 and plain["antonym"] == 0.0


def test_a_changed_number_or_quantifier_is_missing(library: Library) -> None:
    three = evidence(
        library, "If three identical fermions have a symmetric spin, what must they be?", "If two"
    )
    two = evidence(library, "If two identical fermions have a symmetric spin, what must they be?", "If two")
    assert three["number_words_missing"] == 1.0 and two["number_words_missing"] == 0.0
    every = evidence(library, "All quantitative force laws were discovered using what?", "Some quantitative")
    assert every["quantifier_missing"] == 1.0 and every["quantifier_extra"] >= 1.0


def test_the_asked_for_name_stands_next_to_the_question_words(library: Library) -> None:
    near = evidence(library, "Who is the National Security Council spokesman?", "National Security")
    assert near["answer_adjacent"] == 1.0 and near["q_person"] == 1.0
    when = evidence(library, "When did the glacier museum open?", "The glacier museum")
    assert when["answer_adjacent"] == 1.0 and when["wh_first_when"] == 1.0
    nothing = evidence(library, "Who opened the glacier museum?", "The glacier museum")
    assert nothing["answer_adjacent"] == 0.0  # Fjordby is a place four words away, no person


def test_words_found_elsewhere_in_the_article_are_counted(library: Library) -> None:
    far = evidence(library, "When did Sky launch the glacier museum?", "In September 2007")
    assert far["missing_in_article"] > 0 and far["words_missing"] >= 2
