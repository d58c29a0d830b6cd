"""The package's layers, held to their order: a module imports only from its own layer and the
layers below it, and the pure core loads neither Flask nor the database.

    cli      the command line (may start the web server: `annotator serve`)
    web      pages, JSON API, log-in, the server
    services the application's work over the database
    storage  tables, engines, migrations, locks, backup, the job queue
    core     pure rules: spans, agreement, formats, exporters, tokenizers, errors
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.nodb  # its behaviour does not depend on the database

PACKAGE = Path(__file__).resolve().parent.parent / "annotator"
LAYERS = ["core", "storage", "services", "web", "cli"]  # bottom to top
# Third-party packages a layer must not import (at module level or inside a function).
FORBIDDEN = {
    "core": ("flask", "werkzeug", "sqlalchemy", "sqlmodel", "alembic", "gunicorn"),
    "storage": ("flask", "gunicorn"),
    "services": ("flask", "gunicorn"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, relative ones resolved."""
    found = []
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            # `from annotator import web` names a subpackage, not an attribute
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names
                      if name in ("annotator", *(f"annotator.{layer}" for layer in LAYERS))]
    return found


def layer_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "annotator" and parts[1] in LAYERS else None


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """What in ``source`` (the text of ``module``) breaks the layer order."""
    own = layer_of(module)
    if own is None:
        return []
    problems = []
    for line, name in imported(source, module, is_package):
        target = layer_of(name)
        if target is not None and LAYERS.index(target) > LAYERS.index(own):
            problems.append(f"{module}:{line} imports {name} ({own} may not import {target})")
        if name == "annotator":
            problems.append(f"{module}:{line} imports the package root (above every layer)")
        top = name.split(".")[0]
        if top in FORBIDDEN.get(own, ()):
            problems.append(f"{module}:{line} imports {name} ({own} may not import {top})")
    return problems


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        yield path


def test_every_module_sits_in_a_layer():
    stray = [str(p.relative_to(PACKAGE)) for p in modules()
             if p.parent != PACKAGE and layer_of(module_name(p)) is None]
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert stray == []
    assert top == ["__init__.py"], "modules belong in a layer's folder, not at the package's top"


def test_imports_point_only_downward():
    problems = []
    for path in modules():
        problems += violations(path.read_text(encoding="utf-8"), module_name(path),
                               path.name == "__init__.py")
    assert problems == []


@pytest.mark.parametrize("module, source, broken", [
    ("annotator.core.spans", "from annotator.storage.models import Document\n", True),
    ("annotator.core.spans", "def f():\n    from annotator.web import db\n", True),
    ("annotator.core.exporters.jsonl", "from ...services import report\n", True),
    ("annotator.storage.db", "from annotator.services.users import create_user\n", True),
    ("annotator.services.report", "from annotator import web\n", True),
    ("annotator.services.report", "from flask import request\n", True),
    ("annotator.core.nlp", "import sqlalchemy\n", True),
    ("annotator.web.api", "from annotator.cli.base import main\n", True),
    ("annotator.web.server", "from annotator import create_app\n", True),
    ("annotator.services.report", "from annotator.core import agreement\n", False),
    ("annotator.core.exporters.jsonl", "from ._common import Record\n", False),
    ("annotator.cli.commands", "from annotator.web.server import run\n", False),
])
def test_the_check_sees_an_upward_import(module, source, broken):
    assert bool(violations(source, module)) is broken


def test_the_core_loads_without_flask_or_the_database():
    core = [module_name(p) for p in sorted((PACKAGE / "core").rglob("*.py"))]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in core) +
            "print(sorted(m for m in ('flask', 'werkzeug', 'sqlalchemy', 'sqlmodel') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
