"""Synthetic French CAF and CPAM extracts with their ground truth (test data only).

Only synthetic people: names drawn from common-name lists, NIRs built with valid keys from random
numbers. See docs/CONTRACTS.md "Ground truth" for the files written by `generate`.
"""

from pipeline.synth.generate import generate

__all__ = ["generate"]
