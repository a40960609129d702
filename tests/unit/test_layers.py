"""The dependency rule where import-linter cannot see it: doctests, and the grep of the issue.

`.importlinter` (run by ``make test`` as ``lint-imports``) checks the modules' own imports.
A doctest's imports run only under pytest, so they are checked here: an example in the pure
packages imports no shell (the Faust app and its adapters, the API, the CLI, I/O clients).
"""

from __future__ import annotations

import ast
import configparser
import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE = ("schemas", "detectors", "simulation")
SHELLS = {"streams", "agents", "tables", "api", "enms", "evaluation", "bench", "fuzz",
          "faust", "aiokafka", "redis", "aiohttp"}


def _modules(package: str) -> list[str]:
    pkg = importlib.import_module(package)
    return [package, *(f"{package}.{m.name}" for m in pkgutil.walk_packages(pkg.__path__))]


def _doctest_imports(module_name: str) -> list[tuple[str, str]]:
    """(example's owner, top-level package imported) for every import in the doctests."""
    module = importlib.import_module(module_name)
    out = []
    for test in doctest.DocTestFinder(recurse=True).find(module):
        for example in test.examples:
            try:
                tree = ast.parse(example.source)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    out += [(test.name, a.name.split(".")[0]) for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    out.append((test.name, node.module.split(".")[0]))
    return out


@pytest.mark.parametrize("package", PURE)
def test_no_doctest_of_a_pure_package_imports_a_shell(package: str) -> None:
    found = [(name, top) for m in _modules(package) for name, top in _doctest_imports(m)
             if top in SHELLS]
    assert found == [], f"doctests importing a shell: {found}"


def test_the_check_sees_a_doctest_import() -> None:
    # The scan is not vacuous: it finds the imports that the pure packages' examples do make.
    tops = {top for m in _modules("detectors") for _, top in _doctest_imports(m)}
    assert "schemas" in tops


def test_no_pure_or_adapter_module_imports_the_worker_or_the_api() -> None:
    # The issue's own check: grep -rn "^from \(agents\|api\)" streams/ detectors/ schemas/
    pattern = re.compile(r"^\s*(from|import) (agents|api)\b", re.MULTILINE)
    hits = [str(p.relative_to(ROOT)) for d in ("streams", "detectors", "schemas", "simulation")
            for p in (ROOT / d).rglob("*.py") if pattern.search(p.read_text())]
    assert hits == []


def test_the_contracts_file_states_the_rules() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    names = {config[s]["name"] for s in config.sections() if s.startswith("importlinter:contract")}
    assert len(names) >= 7
    sources = {config[s]["source_modules"].split()[0] for s in config.sections()
               if s.startswith("importlinter:contract")}
    assert {"schemas", "detectors", "streams", "agents", "api"} <= sources
