"""The linking operator's hand-off under the separated detection (contract 6,
pipeline/shared/separation.py, docs/SEPARATION.md): after the links, L writes

- for the detecting operator: the masked household sums with the « found » flag and the linked
  opposition (status_sums.linking_sums), and each linked coverage person's household opposition
  (status_sums.insured_opposition);
- for the CAF: the coverage handles linked to its persons, from which it computes its shares.

L reads only what its exports carry for it: handles, `adulte`, opposition, the CAF's factors
(`rho_<bit>`, one per household, repeated on its rows) and the coverage side's pads
(`c_<bit>`); never a feature. Exports without these columns (a convention without separated
detection) give no hand-off.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.central.match.status_sums import insured_opposition, linking_sums
from pipeline.common.errors import PipelineError
from pipeline.common.tables import write_parquet
from pipeline.shared import separation
from pipeline.trust.convention import Convention
from pipeline.trust.gate import GateResult


def _masked(path: Path, wanted: list[str]) -> list[str] | None:
    """The masked columns of an export: all of `wanted`, none (no hand-off), else refused."""
    present = [c for c in wanted if c in pl.read_parquet_schema(path)]
    if not present:
        return None
    if len(present) != len(wanted):
        missing = ", ".join(c for c in wanted if c not in present)
        raise PipelineError(f"{path} : colonnes masquées incomplètes (manque {missing}) : "
                            "les sommes masquées ne peuvent pas être calculées")
    return present


def write_handoff(benefits: str, benefits_export: Path, coverage_export: Path, links: Path,
                  folder: Path) -> dict[str, Path]:
    """Write L's three files into `folder`; {} when the exports carry no masked column."""
    factors = _masked(benefits_export, separation.FACTORS)
    pads = _masked(coverage_export, separation.PADS)
    if factors is None and pads is None:
        return {}
    if factors is None or pads is None:
        which = benefits_export if factors is None else coverage_export
        raise PipelineError(f"{which} : colonnes masquées absentes alors que l'autre côté les "
                            "envoie : les deux côtés doivent suivre le contrat 6")
    caf = pl.read_parquet(benefits_export, columns=["handle", "foyer", "adulte", "opposition",
                                                    *factors])
    cpam = pl.read_parquet(coverage_export, columns=["handle", "opposition", *pads])
    pairs = pl.read_parquet(links, columns=separation.LINKS_FIELDS)
    rho = caf.group_by("foyer").agg(pl.col(c).first() for c in factors)
    folder.mkdir(parents=True, exist_ok=True)
    out = {
        "sommes": write_parquet(linking_sums(caf, cpam, rho, cpam.select("handle", *pads), pairs)
                                .select(separation.SUMS_FIELDS),
                                folder / separation.SUMS_FILE, sort_by=["foyer"]),
        "oppositions": write_parquet(insured_opposition(caf, cpam, pairs)
                                     .select(separation.OPPOSITION_FIELDS),
                                     folder / separation.OPPOSITION_FILE,
                                     sort_by=["cpam_handle"]),
        "liens": write_parquet(pairs, folder / separation.LINKS_FILE.format(provider=benefits),
                               sort_by=separation.LINKS_FIELDS),
    }
    return out


def sign_handoff(handoff: dict[str, Path], conv: Convention, gate: GateResult,
                 keys: Path) -> None:
    """Sign the two files for the detecting operator, one manifest each, with the linking
    operator's key of the convention: the detecting operator verifies them like the agencies'
    files (same contract version, reference files and linkage-key fingerprint)."""
    from pipeline.shared.contract import EXPORT_SCHEMA_VERSION
    from pipeline.trust.manifest import write_manifest

    operators = conv.operators
    if len(operators) != 1:
        raise PipelineError(f"la convention doit désigner un seul opérateur d'appariement pour "
                            f"signer les sommes masquées ({', '.join(operators) or 'aucun'})")
    for kind in ("sommes", "oppositions"):
        write_manifest(handoff[kind], agency=operators[0], convention_id=conv.id,
                       key_fingerprint=gate.key_fingerprint, keys_dir=Path(keys),
                       schema_version=EXPORT_SCHEMA_VERSION,
                       reference={"fichiers_reference": dict(gate.reference_files)},
                       extra={"export": kind}, per_file=True)
