"""The FAISS passage index: flat and IVF kinds, ids are database ids, atomic save, load checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index.embedding import FakeEmbedder
from index.errors import StoreError
from index.library import Library
from index.search.candidates import _passage_rows
from index.settings import LibrarySettings
from index.storage.vectors import FLAT, IVF, VectorIndex, ivf_lists
from tests.conftest import make_doc

DIM = 16


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def build(n: int, *, ivf: bool, nprobe: int = 256) -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    ids = np.arange(1000, 1000 + 3 * n, 3, dtype=np.int64)  # database ids, not positions
    vecs = unit_vectors(n)
    index = VectorIndex.build(
        ids, vecs, model_id="m", dim=DIM, ivf_threshold=100 if ivf else 10**9, nprobe=nprobe
    )
    return index, ids, vecs


@pytest.mark.parametrize("ivf", [False, True], ids=["flat", "ivf"])
def test_add_search_remove_save_load(tmp_path: Path, ivf: bool) -> None:
    index, ids, vecs = build(300, ivf=ivf)
    assert index.kind == (IVF if ivf else FLAT)
    assert index.count == 300
    # Every vector finds itself first, under its database id.
    scores, found = index.search(vecs[:20], 1)
    assert found[:, 0].tolist() == ids[:20].tolist()
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)

    # Remove by database id: gone from results and from the count.
    assert index.remove(ids[:10]) == 10
    assert index.count == 290
    _, found = index.search(vecs[:10], 5)
    assert not set(found.ravel().tolist()) & set(ids[:10].tolist())

    # Add under new ids.
    extra = unit_vectors(5, seed=1)
    index.add(np.array([7, 8, 9, 10, 11], np.int64), extra)
    assert index.count == 295
    _, found = index.search(extra, 1)
    assert found[:, 0].tolist() == [7, 8, 9, 10, 11]

    path = tmp_path / "c.faiss"
    index.save(path)
    meta = VectorIndex.read_meta(path)
    assert meta is not None and (meta.model_id, meta.dim, meta.count, meta.kind) == (
        "m",
        DIM,
        295,
        index.kind,
    )
    loaded = VectorIndex.load(path, nprobe=256)
    assert loaded is not None
    assert (loaded.count, loaded.kind, loaded.model_id) == (295, index.kind, "m")
    _, a = index.search(vecs[10:30], 3)
    _, b = loaded.search(vecs[10:30], 3)
    assert a.tolist() == b.tolist()


def test_ivf_list_count() -> None:
    assert ivf_lists(10) == 64
    assert ivf_lists(1_000_000) == 4096


def test_empty_index_and_bad_input() -> None:
    index = VectorIndex(DIM, "m")
    scores, ids = index.search(unit_vectors(1)[0], 5)  # a 1-D query is one row
    assert scores.shape == (1, 0) and ids.shape == (1, 0)
    assert index.remove(np.zeros(0, np.int64)) == 0
    index.add(np.zeros(0, np.int64), np.zeros((0, DIM), np.float32))
    assert index.count == 0
    with pytest.raises(StoreError):
        index.add(np.array([1], np.int64), np.zeros((1, DIM + 1), np.float32))


def test_k_larger_than_count_is_clamped() -> None:
    index, ids, vecs = build(5, ivf=False)
    _, found = index.search(vecs[0], 50)
    assert found.shape == (1, 5)
    assert sorted(found[0].tolist()) == sorted(ids.tolist())


def test_ivf_can_return_missing_hits_and_consumers_drop_them(fake_library: Library) -> None:
    # With one probed list out of 64, FAISS pads the results with -1.
    index, _, vecs = build(300, ivf=True, nprobe=1)
    _, found = index.search(vecs[0], 300)
    assert (found == -1).any()
    fake_library.add_documents("c", [make_doc("The sky is blue. Grass is green.", "Colours")])
    shelf = fake_library.shelf("c")
    assert list(shelf.passage_sentences(-1)) == []
    rows = _passage_rows(shelf, np.array([-1, -1], np.int64))
    assert rows.size == 0


def test_library_on_ivf_never_cites_a_missing_hit(tmp_path: Path) -> None:
    settings = LibrarySettings(data_dir=tmp_path, ivf_threshold=64, nprobe=1, threshold=1.0)
    lib = Library(settings, embedder=FakeEmbedder())
    try:
        docs = [
            make_doc(
                f"Topic {i} is about item{i} and thing{i % 7}. It has {i} parts.",
                f"Doc {i}",
                source_id=f"d{i}",
            )
            for i in range(80)
        ]
        lib.add_documents("c", docs)
        lib.rebuild("c")  # built past the threshold: IVF
        shelf = lib.shelf("c")
        assert shelf.passages.kind == IVF
        for q in ["What is item3 about?", "How many parts does thing5 have?", "zebra quantum"]:
            ans = lib.ask("c", q, alternatives=3)
            assert ans.quote is None  # threshold 1.0
            assert ans.best is not None
            for quote in [ans.best, *ans.alternatives, *ans.related]:
                assert quote.article.id > 0
                assert quote.text == shelf.texts[quote.article.id][quote.start : quote.end]
    finally:
        lib.close()


def test_atomic_save_leaves_no_temporary_files(tmp_path: Path) -> None:
    index, _, _ = build(50, ivf=False)
    path = tmp_path / "sub" / "c.faiss"
    for _ in range(3):
        index.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["c.faiss", "c.json"]


def test_failed_save_keeps_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, _, _ = build(50, ivf=False)
    path = tmp_path / "c.faiss"
    index.save(path)
    before = path.read_bytes()
    index.add(np.array([1], np.int64), unit_vectors(1, seed=5))

    def boom(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("index.storage.vectors.os.replace", boom)
    with pytest.raises(OSError):
        index.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.faiss", "c.json"]


def test_load_refuses_missing_corrupt_or_mismatched_files(tmp_path: Path) -> None:
    index, _, _ = build(20, ivf=False)
    path = tmp_path / "c.faiss"
    assert VectorIndex.load(path) is None  # missing
    index.save(path)
    assert VectorIndex.load(path) is not None

    path.write_bytes(path.read_bytes()[:100])  # truncated
    assert VectorIndex.load(path) is None

    index.save(path)
    path.write_bytes(b"\x00garbage" * 50)  # corrupted
    assert VectorIndex.load(path) is None

    index.save(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["count"] = 19  # count mismatch between file and meta
    path.with_suffix(".json").write_text(json.dumps(meta))
    assert VectorIndex.load(path) is None

    index.save(path)
    path.with_suffix(".json").write_text("{not json")
    assert VectorIndex.load(path) is None
    assert VectorIndex.read_meta(path) is None


def test_library_switches_to_ivf_in_the_background_when_outgrown(tmp_path: Path) -> None:
    import time

    from index.embedding import FakeEmbedder
    from index.library import Library
    from index.settings import LibrarySettings
    from index.types import Document

    lib = Library(LibrarySettings(data_dir=tmp_path, ivf_threshold=300), embedder=FakeEmbedder())
    docs = [
        Document(
            " ".join(f"Fact {i}-{j} concerns topic{j % 11} and item{i * 50 + j}." for j in range(30)),
            f"Article {i}",
            source_id=f"a{i}",
        )
        for i in range(50)
    ]
    lib.add_documents("c", docs)  # ~500 passages, added to the exact index without rebuilding first
    deadline = time.monotonic() + 30
    while lib.shelf("c").passages.kind != "ivf" and time.monotonic() < deadline:
        time.sleep(0.05)
    shelf = lib.shelf("c")
    assert shelf.passages.kind == "ivf"
    assert shelf.passages.count == lib.stats("c").passages
    assert lib.doctor() == []
    ans = lib.ask("c", "Fact 7-3 concerns topic3 and item353", alternatives=0)
    assert ans.best is not None and ans.best.article.source_id == "a7"
