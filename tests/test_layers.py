"""Who may import whom (docs/architecture.md): checked by loading the node's entry points in a fresh
interpreter and by reading every module's imports, so a cycle cannot creep back in unnoticed."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

GATEWAY_ONLY = (
    "influxdb_client",
    "numpy",
    "jiter",
    "tqdm",
    "starlette",
    "uvicorn",
    "jinja2",
    "matplotlib",
    "odata_query",
    "python_multipart",
    "PIL",
)
NODE_ENTRY_POINTS = ("node.service", "node.commands.run", "node.commands.check", "node.cli")
OURS = ("contract", "node", "gateway", "hardware", "calibration")


def _loaded_after_import(module: str) -> list[str]:
    code = (
        "import sys, json, importlib; "
        f"importlib.import_module({module!r}); print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, check=True
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


@pytest.mark.parametrize("module", NODE_ENTRY_POINTS)
def test_the_node_loads_nothing_of_the_gateway(module: str) -> None:
    loaded = _loaded_after_import(module)
    assert module in loaded
    assert [m for m in loaded if m == "gateway" or m.startswith("gateway.")] == []
    assert [m for m in loaded if m.split(".")[0] in GATEWAY_ONLY] == []


def _imports(path: Path) -> set[str]:
    """Every module of ours a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] in OURS}


ALLOWED = {
    "contract": {"contract"},
    "calibration": {"contract", "calibration"},
    "hardware": {"contract", "calibration", "hardware"},
    "node": {"contract", "hardware", "calibration", "node"},
    "gateway": {"contract", "calibration", "gateway"},
}
"""Package -> the packages its modules may import: contract < calibration < hardware < node, and
the gateway beside the node. A driver may offer a shipped calibration preset as its default curve
(the SEN0189 turbidity probe); the calibration a node applies lives in node/calibration.py. The
demo, which runs nodes beside a gateway, is the one corner allowed both."""
EXCEPTIONS = {"gateway/demo.py": {"node"}}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_what_sits_beneath_it(package: str) -> None:
    wrong: list[str] = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        allowed = ALLOWED[package] | EXCEPTIONS.get(rel, set())
        for name in sorted(_imports(path)):
            if name.split(".")[0] not in allowed:
                wrong.append(f"{rel} imports {name}")
    assert wrong == []
