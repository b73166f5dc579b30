"""Follow-up questions: a question asked after an earlier answer (in a Discord thread) favours the
article that answer quoted.

"What did he say about the shipments?" after "Who is the National Security Council spokesman?"
means *that* article's "he": the follow-up is asked as it is (the article's own sentences say
"he" too, so putting the name in would only pull the earlier sentence back), once over the whole
collection and once over the previous article's candidates alone; the answer from the previous
article wins unless it is no answer at all, or clearly worse than an answer found elsewhere.

The restricted ask is the same pipeline (ranker, reader, judge) over the same candidates, only the
other articles' rows removed (`Pipeline.answer(within=...)`), so its confidence means what any
answer's does. `Library.ask(context=...)` is the way in.
"""

from __future__ import annotations

from dataclasses import dataclass

from index.answering.pipeline import Cutoffs, Pipeline
from index.search.shelf import Shelf
from index.types import Answer

# The previous article's answer is kept unless one from elsewhere is this much more confident.
PREFER_MARGIN = 0.25


@dataclass(frozen=True)
class Context:
    """What a thread was last answered with."""

    question: str
    article_id: int
    quote: str


def prefer(favoured: Answer | None, anywhere: Answer) -> Answer:
    """The previous article's answer unless it declines or one from elsewhere is clearly better."""
    if favoured is None or not favoured.answered:
        return anywhere
    if anywhere.answered and anywhere.confidence >= favoured.confidence + PREFER_MARGIN:
        return anywhere
    return favoured


def ask_follow_up(
    pipeline: Pipeline, shelf: Shelf, question: str, context: Context, *, alternatives: int, cut: Cutoffs
) -> Answer:
    """Answer a checked `question` asked after `context`: over the whole shelf, and over the
    previous article's candidates alone; the previous article's answer unless a clearly better one
    comes from elsewhere."""
    anywhere = pipeline.answer(shelf, [question], alternatives=alternatives, cut=cut)[0]
    if anywhere.answered and anywhere.quote is not None and anywhere.quote.article.id == context.article_id:
        return anywhere
    within = pipeline.answer(shelf, [question], alternatives=alternatives, cut=cut, within=context.article_id)
    return prefer(within[0], anywhere)
