"""Providers are declared once (pipeline/shared/providers.py); no module spells the pair again."""

from __future__ import annotations

import ast
from pathlib import Path

from pipeline.shared.providers import AGENCIES

ROOT = Path(__file__).resolve().parents[2]
DECLARATION = ROOT / "pipeline" / "shared" / "providers.py"
SOURCES = [*sorted((ROOT / "pipeline").rglob("*.py")), *sorted((ROOT / "bench").rglob("*.py"))]


def _redeclarations(path: Path) -> list[str]:
    """Literal collections holding every provider id, and assignments to a provider-list name."""
    tree = ast.parse(path.read_text("utf-8"))
    where = path.relative_to(ROOT)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            values = {e.value for e in node.elts if isinstance(e, ast.Constant)}
            if set(AGENCIES) <= values:
                found.append(f"{where}:{node.lineno} littéral {sorted(values)}")
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if any(n.endswith(("AGENCIES", "PROVIDERS")) for n in names):
                found.append(f"{where}:{node.lineno} {names}")
    return found


def test_the_declaration_names_the_two_demo_providers() -> None:
    assert AGENCIES == ("caf", "cpam")
    assert _redeclarations(DECLARATION)  # the scan does see a declaration when there is one


def test_no_module_declares_the_providers_again() -> None:
    found = [f for path in SOURCES if path != DECLARATION for f in _redeclarations(path)]
    assert not found, found
