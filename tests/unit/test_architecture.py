"""The house rules of DESIGN §3, checked: a pure core, and a light SDK and CLI.

- `ringfence.core` does no I/O, reads no clock and no environment, and imports
  nothing from the shell (store, server, sdk, cli) or from network/database stacks.
- Importing the SDK and the CLI does not import the server stack.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import ringfence.core

CORE_DIR = Path(ringfence.core.__file__).parent

FORBIDDEN_MODULES = {
    "sqlalchemy", "httpx", "fastapi", "starlette", "uvicorn", "psycopg", "socket", "subprocess",
    "requests", "ringfence.store", "ringfence.server", "ringfence.sdk", "ringfence.cli",
}
# Clock reads and the environment: time is an argument, configuration is passed in.
FORBIDDEN_NAMES = {
    "time.time", "time.time_ns", "time.monotonic", "time.perf_counter",
    "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today",
    "datetime.date.today",
    "os.environ", "os.getenv", "os.environb",
}
SERVER_STACK = {"fastapi", "sqlalchemy", "scipy", "uvicorn", "starlette", "alembic"}


def _forbidden_module(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES)


def _module_name(path: Path) -> str:
    parts = path.relative_to(CORE_DIR.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_name(path: Path) -> str:
    """The package relative imports in `path` start from."""
    module = _module_name(path)
    return module if path.name == "__init__.py" else module.rsplit(".", 1)[0]


def _dotted(node: ast.expr) -> list[str] | None:
    """`a.b.c` as ["a", "b", "c"], or None for anything that is not a plain name chain."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return [*base, node.attr] if base is not None else None
    return None


def violations(source: str, package: str) -> Iterator[str]:
    """What in `source` (a module of `package`) breaks the core's rules."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}  # local name -> what it really is ("dt" -> "datetime")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _forbidden_module(alias.name):
                    yield f"line {node.lineno}: imports {alias.name}"
                local = alias.asname or alias.name.split(".")[0]
                aliases[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if _forbidden_module(base) or _forbidden_module(full):
                    yield f"line {node.lineno}: imports {full}"
                if full in FORBIDDEN_NAMES:
                    yield f"line {node.lineno}: imports {full}"
                aliases[alias.asname or alias.name] = full
        elif isinstance(node, ast.Call):
            func = _dotted(node.func)
            literal = node.args[0] if node.args else None
            if (
                func in (["importlib", "import_module"], ["__import__"])
                and isinstance(literal, ast.Constant)
                and isinstance(literal.value, str)
                and _forbidden_module(literal.value)
            ):
                yield f"line {node.lineno}: imports {literal.value} dynamically"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute | ast.Name):
            chain = _dotted(node)
            if chain is None or chain[0] not in aliases:
                continue
            full = ".".join([*aliases[chain[0]].split("."), *chain[1:]])
            if full in FORBIDDEN_NAMES:
                yield f"line {node.lineno}: uses {full}"


def core_modules() -> list[Path]:
    return sorted(CORE_DIR.rglob("*.py"))


def test_the_core_is_where_we_look() -> None:
    names = {_module_name(p) for p in core_modules()}
    # If this fails the walk below checks nothing: fix the path, not the list.
    assert {
        "ringfence.core", "ringfence.core.names", "ringfence.core.canonical", "ringfence.core.pointer",
        "ringfence.core.diff", "ringfence.core.documents", "ringfence.core.validation",
        "ringfence.core.model", "ringfence.core.access",
    } <= names


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(CORE_DIR)))
def test_core_module_is_pure(path: Path) -> None:
    found = list(violations(path.read_text(encoding="utf-8"), _package_name(path)))
    assert found == [], f"{path.relative_to(CORE_DIR.parent)} breaks DESIGN §3: {found}"


# The checker must catch what it exists to catch, or the test above proves nothing.
@pytest.mark.parametrize(
    "source",
    [
        "import sqlalchemy",
        "import sqlalchemy.orm as orm",
        "from httpx import Client",
        "import socket",
        "from subprocess import run",
        "from ringfence.store import sql",
        "from ringfence import server",
        "import ringfence.cli.main",
        "from ..store import sql",
        "from .. import sdk",
        "import importlib\nimportlib.import_module('fastapi')",
        "import time\nstamp = time.time()",
        "import time as t\nstamp = t.monotonic()",
        "from time import time\nstamp = time()",
        "import datetime\nnow = datetime.datetime.now()",
        "import datetime as dt\nnow = dt.datetime.now(dt.UTC)",
        "from datetime import datetime\nnow = datetime.now()",
        "from datetime import date\ntoday = date.today()",
        "import os\nhome = os.environ['HOME']",
        "import os\nhome = os.environ.get('HOME')",
        "import os\nhome = os.getenv('HOME')",
        "from os import environ",
    ],
)
def test_the_checker_catches_violations(source: str) -> None:
    assert list(violations(source, "ringfence.core")) != []


@pytest.mark.parametrize(
    "source",
    [
        "import datetime as dt\ndef age(now: dt.datetime) -> dt.timedelta: ...",
        "from datetime import datetime\nstamp = datetime.fromisoformat('2026-01-01T00:00:00')",
        "import json, hashlib, re",
        "from ringfence.core import pointer as jp\nfrom ringfence.errors import Problem",
        "from . import names",
        "import os.path\njoined = os.path.join('a', 'b')",
        "time = 3\nstamp = time",
    ],
)
def test_the_checker_allows_pure_code(source: str) -> None:
    assert list(violations(source, "ringfence.core")) == []


# --- what the SDK and the CLI pull in -----------------------------------------------------


def _existing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package does not exist (yet)
        return False


def test_sdk_cli_and_core_do_not_import_the_server_stack() -> None:
    core = sorted(_module_name(p) for p in core_modules())
    modules = [m for m in ("ringfence.sdk", "ringfence.cli.main", *core) if _existing(m)]
    assert set(core) <= set(modules)
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps({\n"
        f"    'heavy': sorted(m for m in sys.modules if m.split('.')[0] in {sorted(SERVER_STACK)!r}),\n"
        "    'loaded': sorted(m for m in sys.modules if m.startswith('ringfence')),\n"
        "}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"importing {modules} failed:\n{done.stderr}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(core) <= set(report["loaded"]), "the core modules were not imported"
    assert report["heavy"] == [], (
        f"importing {modules} pulled in the server stack: {report['heavy']} (DESIGN §3: "
        "`pip install ringfence` gives the SDK and CLI without it)"
    )
