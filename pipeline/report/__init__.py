"""Validation suites (Great Expectations) and the self-contained French auditor report.

Public API (see docs/CONTRACTS.md for the tables validated):

- `validate(stage, df, out_dir, *, context=None) -> ValidationOutcome`
- `raise_on_critical(outcome)`
- `render_report(run_dir, facts) -> (report.html, report.json)`; the `facts` schema is in
  `pipeline.report.facts`.

Imports are lazy: `import pipeline.report` costs nothing, rendering never loads pandas, and Great
Expectations (seconds to import) loads only when a validation actually runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.report.render import render_report
    from pipeline.report.validation import ValidationOutcome, raise_on_critical, validate

__all__ = ["ValidationOutcome", "raise_on_critical", "render_report", "validate"]

_HOMES = {
    "ValidationOutcome": "pipeline.report.validation",
    "raise_on_critical": "pipeline.report.validation",
    "validate": "pipeline.report.validation",
    "render_report": "pipeline.report.render",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'pipeline.report' has no attribute {name!r}")
