"""Checks and figures of a library's collections: `doctor` compares SQL with the index files."""

from __future__ import annotations

from index.settings import LibrarySettings
from index.storage.store import Store
from index.storage.vectors import VectorIndex, index_file


def doctor(settings: LibrarySettings, store: Store, model_id: str) -> list[str]:
    """Problems found when comparing SQL with the index files (empty when all agree)."""
    problems: list[str] = []
    damage = store.damage()
    if damage:
        return [damage if "damaged" in damage else f"the database file is damaged: {damage}"]
    for c in store.collections():
        path = index_file(settings.index_dir, c)
        passage_ids = {r.id for r in store.passage_rows(c)}
        meta = VectorIndex.read_meta(path)
        index = VectorIndex.load(path)
        if index is None or meta is None:
            problems.append(f"collection {c}: index file {path} is missing or unreadable")
            continue
        gen = store.generation(c)
        if meta.generation != gen:
            problems.append(
                f"collection {c}: index saved at generation {meta.generation}, the database is at "
                f"{gen} (stale: written before the last change was saved)"
            )
        if meta.model_id != model_id:
            problems.append(f"collection {c}: index built by {meta.model_id!r}, configured {model_id!r}")
        if index.count != len(passage_ids):
            problems.append(
                f"collection {c}: index holds {index.count} vectors, SQL has {len(passage_ids)} passages"
            )
        else:
            ids = index.ids()
            if ids is not None and set(ids) != passage_ids:
                problems.append(
                    f"collection {c}: index ids differ from SQL passage ids "
                    f"({len(set(ids) - passage_ids)} extra, {len(passage_ids - set(ids))} missing)"
                )
        bad = store.bad_offsets(c)
        if bad is not None:
            problems.append(f"collection {c}: sentence {bad} has invalid offsets")
    for f in sorted(settings.index_dir.glob("*.faiss")) if settings.index_dir.exists() else []:
        if f.stem not in store.collections():
            ix = VectorIndex.load(f)
            if ix is not None and ix.count > 0:
                problems.append(f"index file {f} holds {ix.count} vectors of a collection with no articles")
    return problems
