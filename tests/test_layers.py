"""The code's shape (docs/architecture.md): layers that point down, no import circle, small modules.

The layers themselves are the import-linter contract in pyproject.toml (``make lint`` runs it);
these tests hold it too, and add what a layers contract cannot see: a circle between modules of
one layer, or of one package.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent
APPS = ("winback", "members", "campaigns", "notifications")
MAX_LINES = 400


def import_circles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's, without recursion)."""
    imports = {m: sorted(graph.find_modules_directly_imported_by(m) & modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []
    for start in sorted(modules):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            module, i = work.pop()
            if i == 0:
                index[module] = low[module] = len(index)
                stack.append(module)
                on_stack.add(module)
            for j in range(i, len(imports[module])):
                imported = imports[module][j]
                if imported not in index:
                    work.append((module, j + 1))
                    work.append((imported, 0))
                    break
                if imported in on_stack:
                    low[module] = min(low[module], index[imported])
            else:
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1:
                        circles.append(sorted(component))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
    return circles


def test_the_circle_finder_finds_a_circle_through_a_lazy_import():
    graph = grimp.ImportGraph()
    for module in ("a", "a.one", "a.two", "a.three", "a.four"):
        graph.add_module(module)
    graph.add_import(importer="a.one", imported="a.two")
    graph.add_import(importer="a.two", imported="a.three")
    graph.add_import(importer="a.three", imported="a.one")  # say, inside a function
    graph.add_import(importer="a.four", imported="a.one")

    assert import_circles(graph, set(graph.modules)) == [["a.one", "a.three", "a.two"]]


def test_no_module_of_the_four_apps_is_on_an_import_circle():
    # Function-level (lazy) imports count. Imports under ``if TYPE_CHECKING:`` do not: they never
    # run, and name a model's type where a rule takes one (the contract counts them all the same).
    graph = grimp.build_graph(*APPS, cache_dir=None, exclude_type_checking_imports=True)
    modules = {m for m in graph.modules if ".migrations" not in m}
    assert {"campaigns.engine.night", "notifications.dispatcher.send", "members.models"} <= modules

    assert import_circles(graph, modules) == []


def test_the_layers_contract_is_kept(monkeypatch):
    monkeypatch.chdir(ROOT)

    assert lint_imports(config_filename="pyproject.toml", no_cache=True) == 0


def test_every_module_of_the_four_apps_is_in_a_layer():
    # A module the contract does not name is free to import anything: a new one must join a layer.
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    named = {m.strip() for layer in contract["layers"] for m in re.split(r"[:|]", layer)}
    graph = grimp.build_graph(*APPS, cache_dir=None)
    children = {c for app in APPS for c in graph.find_children(app) if not c.endswith(".migrations")}

    assert children - named == set()
    assert named - set(graph.modules) == set()


def test_no_module_of_the_four_apps_is_over_400_lines():
    long = {
        str(path.relative_to(ROOT)): lines
        for app in APPS
        for path in (ROOT / app).rglob("*.py")
        if "migrations" not in path.parts and (lines := len(path.read_text().splitlines())) > MAX_LINES
    }

    assert long == {}
