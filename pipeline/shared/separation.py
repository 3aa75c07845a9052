"""Export contract 6: which file goes to which party under the separated detection
(docs/SEPARATION.md). One declaration, read by the agencies, the two central parties, the
convention generator and the gates.

- Each agency sends the linking operator (L, the convention's `operateur_appariement`) its
  pseudonymised export (`export/`), which carries, besides tokens and handles, the masked
  statuses (coverage side: one pad `c_<bit>` per person and bit) or the factors (CAF: one
  `rho_<bit>` per household and bit, repeated on its rows): uniform residues, no attribute.
- Each agency sends the detecting operator (D, `operateur_detection`) its detection file
  (`detection/`): the CAF's household file, the coverage providers' insured perimeter
  (pipeline/shared/detector_files.py).
- L, after the links, writes `separation/`: the masked sums and the linked opposition for D,
  and for the CAF the coverage handles linked to its persons.
- The CAF then writes `parts/`: its shares of the unmasking and its per-linked-person minima
  flag, for D. D unmasks and runs the rules (pipeline/central/detect/detection_inputs.py).
"""

from __future__ import annotations

from pipeline.shared.detector_files import FEATURES
from pipeline.shared.masked_sums import BITS

ROLE_DETECTOR = "operateur_detection"  # the convention's role of D

# the only attribute L receives: the CAF's adult flag (its « found » flag: an adult is linked)
LINKER_ATTRIBUTES = ("adulte",)
PAD_PREFIX, FACTOR_PREFIX = "c_", "rho_"  # L's columns: coverage pads, CAF factors
SUM_PREFIX, SHARE_PREFIX = "s_", "t_"  # L's sums and the CAF's shares, for D
PADS = [f"{PAD_PREFIX}{b}" for b in BITS]
FACTORS = [f"{FACTOR_PREFIX}{b}" for b in BITS]

# agency -> D, written by `pseudonymise` beside the export
DETECTION_DIR = "detection"
DETECTION_FILE = "{provider}.detection.parquet"
HOUSEHOLD_FIELDS = ["foyer", "handle", *FEATURES, "opposition", "date_reference"]
INSURED_FIELDS = ["handle", "foyer", "opposition"]
DETECTION_KIND = "detection"  # the detection file's manifest `extra.export`

# kept by the CAF in its own folder (owner-only, never sent), written by `pseudonymise` for its
# `parts` step: per person, what the shares and minima read, so that `parts` does not depend on
# the features staying in the export L receives. Opposed households' values emptied as in the
# export (docs/CONTRACTS.md "Opposition").
LOCAL_FILE = "separation_locale.parquet"
LOCAL_FIELDS = ["handle", "foyer", "adulte", "opposition", "a_rsa", "a_ppa"]

# L -> D and L -> CAF, written by the central linking run
HANDOFF_DIR = "separation"
SUMS_FILE = "sommes.parquet"  # foyer, trouve_cpam, opposition_liee, s_<bit>
SUMS_FIELDS = ["foyer", "trouve_cpam", "opposition_liee", *[f"{SUM_PREFIX}{b}" for b in BITS]]
OPPOSITION_FILE = "oppositions.parquet"  # cpam_handle, opposition_foyer
OPPOSITION_FIELDS = ["cpam_handle", "opposition_foyer"]
LINKS_FILE = "liens_{provider}.parquet"  # caf_handle, cpam_handle
LINKS_FIELDS = ["caf_handle", "cpam_handle"]

# D's run: its output folder and its own audit log (beside it: the folder is replaced per run)
DETECTION_OUT = "detection_centrale"
DETECTION_AUDIT = "audit_detection.jsonl"

# CAF -> D, written by the `parts` step after the links
SHARES_DIR = "parts"
SHARES_FILE = "{provider}.parts.parquet"  # foyer, t_<bit>
SHARES_FIELDS = ["foyer", *[f"{SHARE_PREFIX}{b}" for b in BITS]]
MINIMA_FILE = "{provider}.minima.parquet"  # cpam_handle, a_minima
MINIMA_FIELDS = ["cpam_handle", "a_minima"]
SHARES_KIND, MINIMA_KIND = "parts", "minima"  # their manifests' `extra.export`


# The rules' features that reach D otherwise than as a column of a detection file: the
# convention section and the columns that carry them (the agency computes the feature, only
# what a rule reads of it leaves). Tested against the rule catalogue and the convention.
CARRIED_BY = {
    "statut_css": ("fields", PADS),  # masked bits, summed by L, unmasked by D
    "css_gratuite_en_cours": ("detection_fields", INSURED_FIELDS),  # the insured perimeter
    "adulte": ("fields", list(LINKER_ATTRIBUTES)),  # L's « found » flag
    "a_ppa": ("shares_fields", MINIMA_FIELDS),  # RSA-or-PPA per linked insured person
}


def linker_fields(benefits: bool) -> list[str]:
    """The masked columns an agency adds to its export for L."""
    return list(FACTORS if benefits else PADS)


def detection_fields(benefits: bool) -> list[str]:
    """The columns of an agency's detection file for D."""
    return list(HOUSEHOLD_FIELDS if benefits else INSURED_FIELDS)


def convention_sections(providers: list[str], benefits: str | None
                        ) -> dict[str, dict[str, list[str]]]:
    """The convention's allow-lists for the detecting operator (each provider's detection file,
    the CAF's shares and minima); the masked columns for L go in `fields` (linker_fields)."""
    return {"detection_fields": {a: detection_fields(a == benefits) for a in providers},
            "shares_fields": ({benefits: sorted({*SHARES_FIELDS, *MINIMA_FIELDS})}
                              if benefits else {})}
