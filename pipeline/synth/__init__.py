"""Synthetic French CAF and CPAM extracts with their ground truth (test data only).

Only synthetic people: names drawn from common-name lists, NIRs built with valid keys from random
numbers. See docs/CONTRACTS.md "Ground truth" for the files written by `generate`.
`generate` (scipy, faker) is imported on first use: the CLI mounts `synth` in every process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.common.lazy import lazy_exports

if TYPE_CHECKING:
    from pipeline.synth.generate import generate

__all__ = ["generate"]
__getattr__ = lazy_exports(__name__, {"generate": "pipeline.synth.generate"})
