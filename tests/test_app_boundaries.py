"""Dependencies between the apps point one way: accounts and markets know nothing of notifications or
realtime (STYLE.md); the project package (coinlink/) wires them together."""

from __future__ import annotations

import ast

import pytest

from tests.coinlink.procs import ROOT

LOWER = ("accounts", "markets")
UPPER = ("notifications", "realtime")


def _imported_modules(path, root=ROOT) -> set[str]:
    """Every module the file imports, at the top or inside a function, relative imports resolved."""
    package = path.relative_to(root).parts[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            names.add(module)
            names.update(f"{module}.{alias.name}".lstrip(".") for alias in node.names)  # `from x import submodule`
    return names


def _is_upper(module: str) -> bool:
    return module.split(".")[0] in UPPER


@pytest.mark.parametrize(
    "path", sorted(p for top in LOWER for p in (ROOT / top).rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_accounts_and_markets_import_neither_notifications_nor_realtime(path):
    offending = sorted(m for m in _imported_modules(path) if _is_upper(m))
    assert not offending, f"{path.relative_to(ROOT)} imports {offending}"


def test_the_walk_sees_imports_inside_functions_and_relative_ones(tmp_path):
    probe = tmp_path / "accounts" / "probe.py"
    probe.parent.mkdir()
    probe.write_text(
        "import accounts.models\n"
        "def deliver():\n    from notifications.services import alert_create\n"
        "def publish():\n    from .. import realtime\n"
    )

    upper = {m for m in _imported_modules(probe, root=tmp_path) if _is_upper(m)}

    assert upper == {"notifications.services", "notifications.services.alert_create", "realtime"}
