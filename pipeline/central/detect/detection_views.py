"""What the detecting operator can read, as the two views its k-anonymity is measured on
(docs/SEPARATION.md; pipeline/shared/kanonymity.py): the `detecter` command puts the figures in
detect_stats.json (`k_anonymat_detection`), `make bench-kanon-separation` and
tests/detect/test_detect_kanonymity_sample.py measure the same views on the sample.

- the household view: one row per CAF household, the CAF's household file with L's « found »
  flag and linked opposition and the unmasked OR bits (no handle, no size, no count);
- the reverse rule's view: one row per insured person of the perimeter, with its CAF flags
  (RSA-or-PPA, the household's opposition) when linked.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipeline.central.detect.detection_inputs import DetectionInputs
from pipeline.shared import kanonymity
from pipeline.shared.detector_files import FEATURES
from pipeline.shared.masked_sums import BITS

HOUSEHOLD_VIEW = [*FEATURES, "opposition", "trouve_cpam", "opposition_liee", *BITS]
INSURED_VIEW = ["opposition", "a_minima", "opposition_foyer", "lie_caf"]


def household_view(d: DetectionInputs) -> pl.DataFrame:
    """One row per CAF household: the household file and L's and the bits' columns."""
    return d.households.join(d.bits, on="foyer", how="left")


def insured_view(d: DetectionInputs) -> pl.DataFrame:
    """One row per insured person of the reverse rule's perimeter, with its CAF flags."""
    return d.insured.join(d.insured_caf.rename({"cpam_handle": "handle"}), on="handle",
                          how="left").with_columns(lie_caf=pl.col("a_minima").is_not_null())


def _with_targets(k: dict[str, Any]) -> dict[str, Any]:
    """The figures of kanonymity.export_k and whether each target is met (None: no row)."""
    k1, k5 = k.get("part_k1"), k.get("part_k_moins_5")
    return {**k, "objectif_k1": kanonymity.TARGET_K1,
            "objectif_k_moins_5": kanonymity.TARGET_K_LT5,
            "objectif_k1_atteint": None if k1 is None else k1 < kanonymity.TARGET_K1,
            "objectif_k_moins_5_atteint": None if k5 is None else k5 < kanonymity.TARGET_K_LT5}


def detection_k(d: DetectionInputs) -> dict[str, Any]:
    """k-anonymity of what the detecting operator holds: the household view (group `foyer`)
    and the reverse rule's view (group `handle`)."""
    return {
        "vue_foyers": _with_targets(kanonymity.export_k(household_view(d), HOUSEHOLD_VIEW)),
        "vue_assures": _with_targets(kanonymity.export_k(insured_view(d), INSURED_VIEW,
                                                         "handle")),
    }
