"""A writer to be SIGKILLed at random points: adds, replaces, removes and rebuilds articles forever.

    python -m tests.reliability.crash_driver DATA_DIR SEED [MAX_OPS]

Prints "READY" once the library is open, "BEGIN <op>" before each write and, after it completes,
"DONE <article id>" (add or replace), "REMOVED <article id>" or "REBUILT". Articles are made of
words unique to them (see `article_text`), so a question built from one sentence has one right
article. Uses the fake embedder, so hundreds of writes fit in a second. With MAX_OPS it stops
after that many writes (test_concurrency runs it beside a second process on the same directory).
"""

from __future__ import annotations

import contextlib
import random
import sys
from pathlib import Path

from index.embedding import FakeEmbedder
from index.errors import NotFound
from index.library import Library
from index.settings import LibrarySettings
from index.types import Document

COLLECTION = "local"


def sentence(tag: str, k: int) -> str:
    w = [f"{tag}s{k}w{i}" for i in range(4)]
    return f"The {w[0]} of {w[1]} met the {w[2]} near {w[3]}."


def question(tag: str, k: int) -> str:
    w = [f"{tag}s{k}w{i}" for i in range(4)]
    return f"Where did the {w[0]} of {w[1]} meet the {w[2]}?"


def article_text(tag: str, n_sentences: int) -> str:
    return " ".join(sentence(tag, k) for k in range(n_sentences))


def tag_of(title: str) -> str:
    return title.split()[1]


def open_library(data_dir: Path) -> Library:
    return Library(LibrarySettings(data_dir=data_dir, threshold=0.0), embedder=FakeEmbedder())


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> None:
    data_dir, seed = Path(sys.argv[1]), int(sys.argv[2])
    max_ops = int(sys.argv[3]) if len(sys.argv) > 3 else None
    rng = random.Random(seed)
    lib = open_library(data_dir)
    lib.shelf(COLLECTION)
    say("READY")
    n = 0
    while max_ops is None or n < max_ops:
        n += 1
        tag = f"r{seed}n{n}"
        arts = lib.articles(COLLECTION)
        roll = rng.random()
        if arts and roll < 0.25:
            victim = rng.choice(arts)
            say(f"BEGIN remove {victim.id}")
            with contextlib.suppress(NotFound):  # another process removed it first
                lib.remove(COLLECTION, victim.id)
            say(f"REMOVED {victim.id}")
        elif arts and roll < 0.5:
            # Same source id, same sentence count: the index count does not change (see test_crash).
            old = rng.choice([a for a in arts if a.source_id] or arts)
            text = article_text(tag, old.n_sentences)
            say(f"BEGIN replace {old.id}")
            [res] = lib.add_documents(
                COLLECTION, [Document(text, f"Article {tag}", source_id=old.source_id or f"src-{old.id}")]
            )
            say(f"DONE {res.article.id}")
        elif roll < 0.55:
            say("BEGIN rebuild")
            lib.rebuild(COLLECTION)
            say("REBUILT")
        else:
            text = article_text(tag, rng.randint(2, 9))
            say("BEGIN add")
            [res] = lib.add_documents(COLLECTION, [Document(text, f"Article {tag}", source_id=tag)])
            say(f"DONE {res.article.id}")
    lib.close()


if __name__ == "__main__":
    main()
