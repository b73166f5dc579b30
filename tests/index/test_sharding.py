"""Scale-out: library instances as shards sharing one database, and memory-bounded shelves."""

from __future__ import annotations

from pathlib import Path

from index.embedding import FakeEmbedder
from index.library import Library
from index.settings import LibrarySettings
from tests.conftest import make_doc

GUILD_A, GUILD_B = "111", "222"


def _docs(tag: str) -> list:
    return [
        make_doc(
            f"The {tag} lighthouse was built in 1871 by the harbour board. It stands forty metres tall.",
            title=f"{tag} lighthouse",
            source_id=f"{tag}-1",
        ),
        make_doc(
            f"The {tag} ferry crosses the bay twice a day. Tickets cost three pounds.",
            title=f"{tag} ferry",
            source_id=f"{tag}-2",
        ),
    ]


def test_two_shards_share_one_database(db_url: str, tmp_path: Path) -> None:
    """Two processes' libraries (separate data dirs, one database) each answer for their own guilds,
    load only those guilds' indexes, and a lost index file is rebuilt from SQL."""
    shard0 = Library(
        LibrarySettings(data_dir=tmp_path / "m0", database_url=db_url, threshold=0.0), embedder=FakeEmbedder()
    )
    shard1 = Library(
        LibrarySettings(data_dir=tmp_path / "m1", database_url=db_url, threshold=0.0), embedder=FakeEmbedder()
    )
    shard0.add_documents(GUILD_A, _docs("north"))
    shard1.add_documents(GUILD_B, _docs("south"))

    a = shard0.ask(GUILD_A, "When was the north lighthouse built?")
    b = shard1.ask(GUILD_B, "How often does the south ferry cross the bay?")
    assert a.quote is not None and a.quote.article.source_id == "north-1"
    assert b.quote is not None and b.quote.article.source_id == "south-2"
    assert shard0.loaded_collections == [GUILD_A]
    assert shard1.loaded_collections == [GUILD_B]

    # Guild B's articles are in the shared database, but shard 0 never indexed them: its first
    # question on B builds B's index from SQL on this machine.
    assert not (tmp_path / "m0" / "index" / f"{GUILD_B}.faiss").exists()
    b0 = shard0.ask(GUILD_B, "How tall is the south lighthouse?")
    assert b0.quote is not None and b0.quote.article.source_id == "south-1"

    # An index file lost on one machine: a restarted shard rebuilds it from SQL.
    shard1.close()
    (tmp_path / "m1" / "index" / f"{GUILD_B}.faiss").unlink()
    restarted = Library(
        LibrarySettings(data_dir=tmp_path / "m1", database_url=db_url, threshold=0.0), embedder=FakeEmbedder()
    )
    again = restarted.ask(GUILD_B, "How often does the south ferry cross the bay?")
    assert again.quote is not None and again.quote.text == b.quote.text
    assert (tmp_path / "m1" / "index" / f"{GUILD_B}.faiss").exists()
    # This machine holds no index for guild A (another shard's), and guild B's agrees with SQL.
    assert [p for p in restarted.doctor() if f"collection {GUILD_B}:" in p] == []
    shard0.close()
    restarted.close()


def test_least_recently_used_shelves_are_dropped_and_reloaded(tmp_path: Path) -> None:
    lib = Library(
        LibrarySettings(data_dir=tmp_path, threshold=0.0, max_loaded_collections=2), embedder=FakeEmbedder()
    )
    for g, tag in (("1", "red"), ("2", "green"), ("3", "blue")):
        lib.add_documents(g, _docs(tag))
    assert len(lib.loaded_collections) <= 2
    assert lib.loaded_collections[-1] == "3"
    lib.ask("2", "When was the green lighthouse built?")
    assert lib.loaded_collections == ["3", "2"]
    # "1" was dropped: asking reloads it from its index file and answers the same.
    ans = lib.ask("1", "When was the red lighthouse built?")
    assert ans.quote is not None and ans.quote.article.source_id == "red-1"
    assert lib.loaded_collections == ["2", "1"]
    assert lib.doctor() == []
