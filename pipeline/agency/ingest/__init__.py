"""Ingest stage (agency side): read a raw CAF or CPAM extract, validate it, normalise it.

Public API: `ingest(agency, input, out_dir, layout=None) -> IngestResult` (imported on first use,
so mounting the CLI does not load polars); layouts in `layouts/*.yaml`; French normalisers in
`normalise/`. See docs/CONTRACTS.md "Ingested".
"""

from typing import TYPE_CHECKING

from pipeline.common.lazy import lazy_exports

if TYPE_CHECKING:
    from pipeline.agency.ingest.api import IngestResult, ingest

__all__ = ["IngestResult", "ingest"]
__getattr__ = lazy_exports(__name__, dict.fromkeys(__all__, "pipeline.agency.ingest.api"))
