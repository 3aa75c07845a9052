"""Agency side of the residue exchange: encode the rows the centre could not link by exact keys
into hardened keyed Bloom filters (pipeline/shared/bloom.py) and sign the export
(docs/RESIDUE.md)."""

from pipeline.agency.residue.core import encode_residue, encode_residue_result, read_request

__all__ = ["encode_residue", "encode_residue_result", "read_request"]
