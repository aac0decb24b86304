"""The package's architecture, checked: every module imports on its own, and imports point down the layers.

Layers, bottom to top (a module may import its own layer and the ones below it, never one above):
ground floor (errors, config, keys, spec, connections, outcome) < sandbox < catalog < monitoring < queue
< producer < devtools < cli. `worker/__init__.py` (the public surface, which loads `Client` lazily) and the
`worker/app.py` entry point for `celery -A worker.app` stand outside the order.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "worker"
LAYERS = ["", "sandbox", "catalog", "monitoring", "queue", "producer", "devtools", "cli"]
OUTSIDE = {"worker", "worker.app"}


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(_name(p) for p in PACKAGE.rglob("*.py"))


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 and parts[1] in LAYERS else ""
    return LAYERS.index(top)


def _imports(path: Path) -> set[str]:
    """Every worker.* module `path` imports, at the top or inside functions, resolved to absolute names."""
    package = _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("worker"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.startswith("worker"):
                found.add(target)
    return found


def test_imports_point_down_the_layers() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _name(path)
        if module in OUTSIDE:
            continue
        for target in sorted(_imports(path)):
            if target not in OUTSIDE and _layer(target) > _layer(module):
                upward.append(f"{module} imports {target}")
    assert upward == []


def test_the_sandbox_never_imports_the_catalog() -> None:
    offenders = [
        _name(p)
        for p in (PACKAGE / "sandbox").rglob("*.py")
        if any(t.startswith("worker.catalog") for t in _imports(p))
    ]
    assert offenders == []


def _import_alone(module: str) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120, check=False, cwd=ROOT
    )
    return module, "" if done.returncode == 0 else done.stderr.strip().splitlines()[-1]


@pytest.mark.timeout(600)
def test_every_module_imports_on_its_own_in_a_fresh_interpreter() -> None:
    with ThreadPoolExecutor(4) as pool:
        failures = {module: error for module, error in pool.map(_import_alone, MODULES) if error}
    assert failures == {}
    assert len(MODULES) > 50  # the walk found the package


def test_the_public_surface() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from worker import Client, Settings, Outcome, ModuleTrap, WasmqError; print(Client)"],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "worker.producer.client.Client" in done.stdout
