"""The layering, checked from the source: which room may import which, and no import cycles.

Every `import` / `from ... import` in bot/ and index/ counts, at module level or inside a function
(a lazy import that dodges a cycle is still a cycle of ideas); only imports under
`if TYPE_CHECKING:` are left out (they never run).

    index/ never imports discord or bot/ (it is the library the bot, the CLI and the fit scripts share)
    index.types, index.errors      leaves: import nothing else of the project at run time
    index.ingest, index.storage    article -> rows; neither imports search/, answering/, the facade
    index.settings                 the configuration: may use ingest/ (FetchPolicy), nothing above
    index.search                   shelves and candidates: may use storage/, not answering/
    index.answering                ranking, reading, deciding: may use search/ and storage/
    index.writing, index.adding    writes (batched adds, removal) and where articles come from
    index.library                  the facade over all of the above (so are archive, health,
                                   insights, maintenance: nothing below imports them)
    index.evaluation               measures the library: nothing in the pipeline imports it
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("index", "bot")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Every module name this module imports at run time (absolute, resolved)."""

    def visit(node: ast.AST) -> Iterator[str]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                yield from (name for other in child.orelse for name in visit_one(other))
                continue
            yield from visit_one(child)

    def visit_one(node: ast.AST) -> Iterator[str]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            yield source
            for alias in node.names:  # `from index.storage import store` imports index.storage.store
                yield f"{source}.{alias.name}"
        yield from visit(node)

    yield from visit(tree)


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        found = set(_imports(tree, name, path.name == "__init__.py"))
        graph[name] = found
    return graph


GRAPH = _graph()
PROJECT = set(GRAPH)


def _project_imports(module: str) -> set[str]:
    """The project's modules `module` imports (names of attributes that are not modules dropped)."""
    return {m for m in GRAPH[module] if m in PROJECT and m != module}


def _in(module: str, room: str) -> bool:
    return module == room or module.startswith(room + ".")


def test_the_graph_is_read() -> None:
    # A broken parser would make every rule below pass vacuously.
    assert "index.library" in GRAPH and "bot.client" in GRAPH
    assert "index.storage.store" in _project_imports("index.library")
    assert any(m.startswith("discord") for m in GRAPH["bot.client"])


def test_index_never_imports_discord_or_the_bot() -> None:
    bad = sorted(
        f"{m} imports {dep}"
        for m in PROJECT
        if _in(m, "index")
        for dep in GRAPH[m]
        if _in(dep, "discord") or _in(dep, "bot")
    )
    assert not bad, bad


_ABOVE = [
    "index.library",
    "index.writing",
    "index.adding",
    "index.maintenance",
    "index.archive",
    "index.health",
    "index.insights",
]
RULES = [
    # (room, rooms it must not import)
    (
        "index.types",
        ["index.ingest", "index.storage", "index.search", "index.answering", "index.settings", *_ABOVE],
    ),
    (
        "index.errors",
        ["index.ingest", "index.storage", "index.search", "index.answering", "index.settings", *_ABOVE],
    ),
    ("index.settings", ["index.storage", "index.search", "index.answering", *_ABOVE]),
    ("index.ingest", ["index.storage", "index.search", "index.answering", "index.settings", *_ABOVE]),
    ("index.storage", ["index.ingest", "index.search", "index.answering", *_ABOVE]),
    ("index.search", ["index.answering", "index.ingest", *_ABOVE]),
    ("index.answering", ["index.ingest", *_ABOVE]),
    ("index.writing", ["index.adding", "index.library", "index.answering"]),
    ("index.adding", ["index.library", "index.answering"]),
]


@pytest.mark.parametrize(("room", "forbidden"), RULES, ids=[r for r, _ in RULES])
def test_rooms_import_only_what_is_below_them(room: str, forbidden: list[str]) -> None:
    bad = sorted(
        f"{m} imports {dep}"
        for m in PROJECT
        if _in(m, room)
        for dep in _project_imports(m)
        if any(_in(dep, f) for f in forbidden)
    )
    assert not bad, bad


def test_nothing_in_the_pipeline_imports_evaluation() -> None:
    bad = sorted(
        f"{m} imports {dep}"
        for m in PROJECT
        if _in(m, "index") and not _in(m, "index.evaluation")
        for dep in _project_imports(m)
        if _in(dep, "index.evaluation")
    )
    assert not bad, bad


def test_sql_lives_in_storage() -> None:
    # Every SQL statement is in index/storage (the rest of the code asks the Store in words).
    bad = sorted(
        f"{m} imports {dep}"
        for m in PROJECT
        if not _in(m, "index.storage")
        for dep in GRAPH[m]
        if _in(dep, "sqlalchemy") or _in(dep, "sqlmodel")
    )
    assert not bad, bad


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), plus self-loops."""
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0

    def edges(m: str) -> set[str]:
        # A package's __init__ is imported along with any of its modules: ignore that edge (it is
        # not a cycle of ideas), but keep imports *from* an __init__ with content.
        return {d for d in _project_imports(m) if not _in(m, d)}

    def strong(v: str) -> None:
        nonlocal counter
        index_of[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges(v):
            if w not in index_of:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index_of[w])
        if low[v] == index_of[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for m in sorted(PROJECT):
        if m not in index_of:
            strong(m)
    return out


def test_no_import_cycles() -> None:
    assert _cycles() == []


# -- bot/ -------------------------------------------------------------------------------------------
# The bot side's rooms (added with the bot/ restructure of issue 14; kept apart from the index rules):
#
#   bot.context, bot.checks, bot.errors,   leaves: what every cog, view and check needs; they import
#   bot.replies, bot.safe_text             no cog, view, client or CLI module (the QuoteBot type only
#                                          under TYPE_CHECKING)
#   bot.views, bot.progress                buttons, modals, pagers, ingest progress: no cog, client or CLI
#   bot.client                             the Bot: loads the cogs by name, imports none (nor the CLI)
#   bot.cogs                               never import the CLI
#   bot.cli                                the command line: only python -m bot (bot.__main__) imports it

BOT_LEAVES = ("bot.context", "bot.checks", "bot.errors", "bot.replies", "bot.safe_text")
BOT_RULES = [
    *((leaf, ["bot.cogs", "bot.views", "bot.progress", "bot.client", "bot.cli"]) for leaf in BOT_LEAVES),
    ("bot.views", ["bot.cogs", "bot.client", "bot.cli"]),
    ("bot.progress", ["bot.cogs", "bot.views", "bot.client", "bot.cli"]),
    ("bot.client", ["bot.cogs", "bot.cli"]),
    ("bot.cogs", ["bot.cli"]),
]


@pytest.mark.parametrize(("room", "forbidden"), BOT_RULES, ids=[r for r, _ in BOT_RULES])
def test_bot_rooms_import_only_what_is_below_them(room: str, forbidden: list[str]) -> None:
    assert any(_in(m, room) for m in PROJECT), f"no module {room}"  # a renamed room fails loudly
    test_rooms_import_only_what_is_below_them(room, forbidden)


def test_only_python_m_bot_imports_the_cli() -> None:
    bad = sorted(
        f"{m} imports {dep}"
        for m in PROJECT
        if not _in(m, "bot.cli") and m != "bot.__main__"
        for dep in _project_imports(m)
        if _in(dep, "bot.cli")
    )
    assert not bad, bad
