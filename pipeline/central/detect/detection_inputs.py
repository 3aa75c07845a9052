"""What the rules read, in the shape the detecting operator receives it (docs/SEPARATION.md).

- `households`: the CAF's household file, one row per household, no size
  (pipeline/shared/detector_files.py);
- `bits`: per household not opposed at the CAF, the linking operator's « found » flag and linked
  opposition, and the OR bits of the linked persons' CSS statuses (null for a household not
  found: no rule reads them there);
- `insured`: the reverse rule's perimeter, the insured persons with a free CSS in force;
- `insured_caf`: per linked coverage person, its CAF household's RSA-or-PPA flag (from the CAF)
  and opposition (from the linking operator), never a CAF household id.

The single central run (`detect`) derives them from the exports and the links with no key
(`in_clear`); the detecting operator's command (`detecter`, separated.py) builds them from the
parties' files (`from_protocol`), and the engine reads only them. `make bench-kanon-separation`,
tests/detect/test_detect_kanonymity_sample.py and tests/detect/test_detect_separated.py check
that both give the same targets.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from pipeline.central.detect.inputs import CentralInputs
from pipeline.central.detect.status_bits import unmask
from pipeline.central.match.status_sums import insured_opposition, sent_where_read
from pipeline.shared.detector_files import caf_minima, household_rows, insured_rows
from pipeline.shared.masked_sums import household_or, person_bits


@dataclass(frozen=True)
class DetectionInputs:
    households: pl.DataFrame
    bits: pl.DataFrame
    insured: pl.DataFrame
    insured_caf: pl.DataFrame
    reference_date: dt.date
    warnings: tuple[str, ...] = ()


def _insured_caf(minima: pl.DataFrame, opposition: pl.DataFrame) -> pl.DataFrame:
    return minima.join(opposition, on="cpam_handle", how="full", coalesce=True).sort(
        "cpam_handle")


def in_clear(inputs: CentralInputs) -> DetectionInputs:
    """Interim: the detecting operator's tables derived from the exports and links."""
    caf, cpam, links = inputs.caf, inputs.cpam, inputs.links
    bits = sent_where_read(caf, cpam, links, household_or(caf, person_bits(cpam), links))
    return DetectionInputs(
        household_rows(caf), bits, insured_rows(cpam),
        _insured_caf(caf_minima(caf, links), insured_opposition(caf, cpam, links)),
        inputs.reference_date, inputs.warnings)


def from_protocol(households: pl.DataFrame, sums: pl.DataFrame, shares: pl.DataFrame,
                  insured: pl.DataFrame, minima: pl.DataFrame, opposition: pl.DataFrame,
                  reference_date: dt.date) -> DetectionInputs:
    """D's tables from the parties' files: the CAF's household file, L's sums and the CAF's
    shares (unmasked here), the coverage side's insured file, the CAF's per-person RSA-or-PPA
    flags and L's per-person household opposition."""
    return DetectionInputs(households, unmask(sums, shares), insured,
                           _insured_caf(minima, opposition), reference_date)
