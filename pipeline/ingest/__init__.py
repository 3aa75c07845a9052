"""Ingest stage (agency side): read a raw CAF or CPAM extract, validate it, normalise it.

Public API: `ingest(agency, input, out_dir, layout=None) -> IngestResult`; layouts in
`layouts/*.yaml`; French normalisers in `normalise/`. See docs/CONTRACTS.md "Ingested".
"""

from pipeline.ingest.api import IngestResult, ingest

__all__ = ["IngestResult", "ingest"]
