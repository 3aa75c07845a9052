"""The package layout is the trust boundary: agency side, shared layer, central side.

pipeline/agency/** runs inside a provider on raw identities; pipeline/central/** runs at the
operator on pseudonymised exports; pipeline/shared/** (with the technical pipeline/common and
the trust layer pipeline/trust) is what both import. Neither side imports the other, and the
shared layer imports neither, function-level imports included: a central module that reached
into agency code (or the reverse) would be one refactor away from moving raw data across.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PIPELINE = Path(__file__).resolve().parents[1] / "pipeline"
SIDES = {"agency": "pipeline.agency", "central": "pipeline.central"}
SHARED = ("shared", "common", "trust")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every pipeline module a file imports, at any depth of the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)]
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return [(n, m) for n, m in found if m.startswith("pipeline")]


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in sorted((PIPELINE / package).rglob("*.py")):
        for line, module in imported_modules(path):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                out.append(f"{path.relative_to(PIPELINE.parent)}:{line} imports {module}")
    return sorted(set(out))


@pytest.mark.parametrize(("package", "forbidden"), [
    ("agency", (SIDES["central"],)),
    ("central", (SIDES["agency"],)),
    *[(p, tuple(SIDES.values())) for p in SHARED],
])
def test_no_import_crosses_the_trust_boundary(package: str, forbidden: tuple[str, ...]) -> None:
    assert violations(package, forbidden) == []


def test_the_boundary_check_sees_a_crossing(tmp_path: Path) -> None:
    """Control: the checker flags a function-level import of the other side."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from pipeline.agency.ingest.api import STATS\n", "utf-8")
    assert imported_modules(bad) == [(2, "pipeline.agency.ingest.api"),
                                     (2, "pipeline.agency.ingest.api.STATS")]


def test_every_stage_package_sits_on_one_side() -> None:
    top = {p.name for p in PIPELINE.iterdir() if (p / "__init__.py").exists()}
    assert {"agency", "central", *SHARED} <= top
    assert not top & {"ingest", "pseudonymise", "reidentify", "match", "detect", "report"}
