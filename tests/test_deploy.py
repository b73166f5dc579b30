"""The deployment files, checked without a Docker engine: the Dockerfile's COPY sources, torch index,
entry point and user; compose.yaml's services; the wheel's migrations; the entry point's token check."""

from __future__ import annotations

import fnmatch
import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "compose.yaml"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        word, _, rest = pending.partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    return out


def final_stage() -> list[tuple[str, str]]:
    ins = instructions()
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[last_from:]


def exec_form(args: str) -> list[str]:
    assert args.startswith("["), f"use the exec form (JSON array), not {args!r}"
    value = json.loads(args)
    assert isinstance(value, list)
    return [str(v) for v in value]


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def copy_sources() -> list[str]:
    sources = []
    for word, args in instructions():
        if word != "COPY" or "--from=" in args:
            continue
        parts = [p for p in shlex.split(args) if not p.startswith("--")]
        sources.extend(parts[:-1])  # the last one is the destination
    return sources


def sent_to_docker(rel: str) -> bool:
    """Whether .dockerignore lets a top-level path into the build context (the last rule that
    matches wins; "!" rules let in)."""
    ignore = REPO / ".dockerignore"
    rules = [r.strip() for r in ignore.read_text().splitlines() if r.strip() and not r.startswith("#")]
    sent = True
    for rule in rules:
        negate = rule.startswith("!")
        pat = rule.lstrip("!").lstrip("/")
        if fnmatch.fnmatch(rel, pat) or rel == pat.rstrip("/"):
            sent = negate
    return sent


def context_paths() -> list[str]:
    """What `docker build .` sends (top level): the Dockerfile copies the whole context."""
    return sorted(p.name for p in REPO.iterdir() if sent_to_docker(p.name))


def test_the_build_context_is_what_the_image_needs_and_every_copy_source_is_in_it() -> None:
    context = set(context_paths())
    assert {"pyproject.toml", "README.md", "bot", "index"} <= context
    assert not context & {".venv", ".git", "tests", "scripts", "examples", "build"}, context
    for src in copy_sources():
        if src == ".":
            continue
        if any(c in src for c in "*?["):  # an optional input (a glob may match nothing)
            continue
        assert (REPO / src).exists() and sent_to_docker(src), f"Dockerfile copies {src}, not in the context"


def test_torch_comes_from_the_same_cpu_index_as_bootstrap() -> None:
    args = " ".join(a for w, a in instructions() if w == "ARG")
    m = re.search(r"TORCH_INDEX_URL=(\S+)", args)
    assert m, "TORCH_INDEX_URL build argument"
    url = re.compile(r"torch\b.*--index-url\s+(\S+)")
    boot = [
        m2.group(1)
        for line in (REPO / "scripts/bootstrap.sh").read_text().splitlines()
        if (m2 := url.search(line))
    ]
    assert boot and m.group(1).endswith("/cpu") and set(boot) == {m.group(1)}
    # torch is installed before quotebot, and quotebot is then pinned to it.
    runs = [args for word, args in instructions() if word == "RUN"]
    torch_at = next(i for i, r in enumerate(runs) if '--index-url "$TORCH_INDEX_URL"' in r)
    app_at = next(i for i, r in enumerate(runs) if re.search(r"pip install -c \S+ \"?\.\[", r))
    assert torch_at < app_at


def test_entry_point_is_quotebot_run_and_the_script_is_declared() -> None:
    stage = final_stage()
    entry = [exec_form(a) for w, a in stage if w == "ENTRYPOINT"][-1]
    cmd = [exec_form(a) for w, a in stage if w == "CMD"][-1]
    assert entry + cmd == ["quotebot", "run"]
    target = pyproject()["project"]["scripts"]["quotebot"]
    module, _, func = target.partition(":")
    assert callable(getattr(importlib.import_module(module), func))


def test_image_runs_as_a_non_root_user_with_data_in_a_volume() -> None:
    stage = final_stage()
    users = [a for w, a in stage if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    env = " ".join(a for w, a in stage if w == "ENV")
    assert "QUOTEBOT_DATA=/data" in env
    assert any(w == "VOLUME" and "/data" in a for w, a in stage)


def load_compose() -> dict[str, Any]:
    text = COMPOSE.read_text(encoding="utf-8")
    try:
        import yaml
    except ImportError:  # a structural check instead of a parse
        for needle in ("services:", "  bot:", "  db:", "dockerfile: Dockerfile", "image: postgres:16"):
            assert needle in text
        pytest.skip("PyYAML is not installed: checked compose.yaml's structure only")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def test_compose_builds_the_dockerfile_and_waits_for_a_healthy_postgres() -> None:
    compose = load_compose()
    bot, db = compose["services"]["bot"], compose["services"]["db"]
    build = bot["build"]
    context = REPO / (build if isinstance(build, str) else build.get("context", "."))
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (context / dockerfile).resolve() == DOCKERFILE

    env = bot["environment"]
    assert "DISCORD_TOKEN" in env and "${DISCORD_TOKEN" in str(env["DISCORD_TOKEN"])  # never a literal token
    url = env["QUOTEBOT_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://") and "@db:5432/" in url
    assert any(str(v).split(":")[1] == "/data" for v in bot["volumes"])
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"

    assert db["image"] == "postgres:16"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    user, password, name = (
        db["environment"][k] for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
    )
    assert f"//{user}:{password}@db:5432/{name}" in url
    named = set(compose.get("volumes") or {})
    for service in (bot, db):
        source = str(service["volumes"][0]).split(":")[0]
        assert source in named, f"{source} should be a named volume"


def test_the_wheel_built_from_the_docker_context_ships_the_migrations(tmp_path: Path) -> None:
    pytest.importorskip("setuptools", reason="setuptools is needed to build the wheel offline")
    context = tmp_path / "src"
    context.mkdir()
    for src in [
        c for c in context_paths() if c != "docker-extra"
    ]:  # what `docker build` sends (less the optional inputs)
        if (REPO / src).is_dir():
            shutil.copytree(REPO / src, context / src, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / src, context / src)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", ".", "-w", "dist"],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = (context / "dist").glob("quotebot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        str(p.relative_to(REPO))
        for pattern in ("*.py", "*.mako", "versions/*.py")
        for p in (REPO / "index/storage/migrations").glob(pattern)
    }
    assert "index/storage/migrations/versions/0001_initial.py" in expected
    assert expected <= names, expected - names
    # The shipped model files and the odd-input suite travel with the code that loads them.
    for data in ("scorer.json", "answer_model.json", "reader.pt"):
        assert f"index/answering/{data}" in names
    assert "index/evaluation/odd_inputs.jsonl" in names


def test_run_without_a_token_exits_1_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "QUOTEBOT_DATABASE_URL")}
    env["QUOTEBOT_DATA"] = str(tmp_path / "data")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "DISCORD_TOKEN" in lines[0], done.stderr
    assert done.stdout == ""
