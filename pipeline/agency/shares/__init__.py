"""The CAF's `parts` step (export contract 6, docs/SEPARATION.md): after the linking operator's
run, its shares of the masked sums' unmasking and its per-linked-person minima flag, for the
detecting operator."""

from pipeline.agency.shares.core import compute_shares, read_links, write_shares

__all__ = ["compute_shares", "read_links", "write_shares"]
