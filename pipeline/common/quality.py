"""Precision, recall and F1 from counts: the one implementation every evaluation calls.

Conventions (shared by the linkage evaluation, the chain evaluation and the benches): with no
prediction the precision is 1.0 (nothing wrong was claimed), with no truth the recall is 1.0
(nothing was missed), and F1 is 0.0 when both are 0.
"""

from __future__ import annotations


def precision_recall_f1(true_positives: int, predicted: int, truth: int,
            digits: int | None = None) -> dict[str, float]:
    """{precision, recall, f1} of `true_positives` among `predicted` against `truth` items,
    rounded to `digits` when given (rounded after F1 is computed from the exact values)."""
    precision = true_positives / predicted if predicted else 1.0
    recall = true_positives / truth if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    out = {"precision": precision, "recall": recall, "f1": f1}
    return out if digits is None else {k: round(v, digits) for k, v in out.items()}
