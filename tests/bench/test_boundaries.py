"""The arrows between the product and bench/ point one way: bench uses the product, never the reverse."""

from __future__ import annotations

import ast

import pytest

from tests.coinlink.procs import ROOT

PRODUCT = ("coinlink", "accounts", "markets", "notifications", "realtime", "deploy")


def _imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _sources():
    for top in PRODUCT:
        yield from (ROOT / top).rglob("*.py")
    # Tests of the product too: only tests/bench (bench's own tests) may import bench.
    yield from (p for p in (ROOT / "tests").rglob("*.py") if (ROOT / "tests/bench") not in p.parents)


@pytest.mark.parametrize("path", sorted(_sources()), ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_outside_bench_and_its_tests_imports_bench(path):
    offending = {m for m in _imported_modules(path) if m == "bench" or m.startswith("bench.")}
    assert not offending, f"{path.relative_to(ROOT)} imports {sorted(offending)}"


def test_bench_uses_no_private_name_of_the_product():
    private = []
    for path in (ROOT / "bench").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        modules = _product_modules_named_in(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PRODUCT:
                private += [f"{path.name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            elif _private_attribute_of(node, modules):
                private.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert not private, private


def _product_modules_named_in(tree) -> set[str]:
    """Local names bound to product modules (`from notifications import evaluation`, `import markets.x as y`)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PRODUCT:
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Import):
            names.update((a.asname or a.name.split(".")[0]) for a in node.names if a.name.split(".")[0] in PRODUCT)
    return names


def _private_attribute_of(node, modules: set[str]) -> bool:
    """`evaluation._claim` where `evaluation` names a product module."""
    if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules):
        return False
    return node.attr.startswith("_") and not node.attr.startswith("__")
