"""Validation suites (Great Expectations) and the self-contained French auditor report.

Public API (see docs/CONTRACTS.md for the tables validated):

- `validate(stage, df, out_dir, *, context=None) -> ValidationOutcome`
- `raise_on_critical(outcome)`
- `render_report(run_dir, facts) -> (report.html, report.json)`; the `facts` schema is in
  `pipeline.central.report.facts`.

Imports are lazy: `import pipeline.central.report` costs nothing, rendering never loads pandas, and
Great
Expectations (seconds to import) loads only when a validation actually runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.common.lazy import lazy_exports

if TYPE_CHECKING:
    from pipeline.central.report.render import render_report
    from pipeline.central.report.validation import ValidationOutcome, raise_on_critical, validate

__all__ = ["ValidationOutcome", "raise_on_critical", "render_report", "validate"]

_HOMES = {
    "ValidationOutcome": "pipeline.central.report.validation",
    "raise_on_critical": "pipeline.central.report.validation",
    "validate": "pipeline.central.report.validation",
    "render_report": "pipeline.central.report.render",
}
__getattr__ = lazy_exports(__name__, _HOMES)
