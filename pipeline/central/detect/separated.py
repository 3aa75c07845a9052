"""`detecter`: the detecting operator's run under the separated detection (docs/SEPARATION.md).

D holds no token, no link and no household size: the agencies' detection files (the CAF's
household file, each coverage provider's insured perimeter), the linking operator's hand-off
(masked sums with the « found » flag and linked opposition; per linked insured person, its CAF
household's opposition) and the CAF's parts (its shares of the unmasking; per linked insured
person, its household's RSA-or-PPA flag). File names and columns: contract 6,
pipeline/shared/separation.py.

gate (detection_gate.py: convention naming a detecting operator, manifests, key fingerprints,
columns, rules) -> read and cross-check the tables (a household without its sums, a sum without
its share...) -> unmask (status_bits.py) -> the engine's core (engine.run_rules, the one the
single central run uses) -> targets to the provider that re-identifies them
(coverage.assign_owned) -> k-anonymity of D's two views (detection_views.py) -> audit entry ->
publication. Nothing is computed before the gate and the checks pass; a refusal is recorded in
the audit log (« refus ») and nothing is written in the output folder, which is built in a
staging folder and swapped in only once complete (pipeline/common/files.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline import __version__
from pipeline.central.detect.detection_gate import (
    DetectionFiles,
    DetectionGate,
    locate,
    verify_detection_inputs,
)
from pipeline.central.detect.detection_inputs import DetectionInputs, from_protocol
from pipeline.central.detect.inputs import (
    CAF_COLUMNS,
    CAF_OPTIONAL,
    CPAM_COLUMNS,
    check_keys,
    first_bad_row,
    read_table,
    reference_date,
)
from pipeline.common.errors import InputError, PipelineError
from pipeline.common.files import fault_point, sha256_file, staged_folder, write_text
from pipeline.common.outputs import exclusive_output
from pipeline.common.progress import QUIET, console, info, step, warn
from pipeline.shared import separation
from pipeline.shared.masked_sums import BITS, P
from pipeline.shared.providers import COVERAGE, on_side, sigle

EVENT = "detection_separee"
_CAF_TYPES = {**CAF_COLUMNS, **CAF_OPTIONAL}
HOUSEHOLD_TYPES = {c: _CAF_TYPES[c] for c in separation.HOUSEHOLD_FIELDS}
INSURED_TYPES = {c: CPAM_COLUMNS[c] for c in separation.INSURED_FIELDS}
SUMS_TYPES = {"foyer": pl.String, "trouve_cpam": pl.Boolean, "opposition_liee": pl.Boolean,
              **{f"{separation.SUM_PREFIX}{b}": pl.Int64 for b in BITS}}
SHARES_TYPES = {"foyer": pl.String, **{f"{separation.SHARE_PREFIX}{b}": pl.Int64 for b in BITS}}
MINIMA_TYPES = {"cpam_handle": pl.String, "a_minima": pl.Boolean}
OPPOSITION_TYPES = {"cpam_handle": pl.String, "opposition_foyer": pl.Boolean}


@dataclass(frozen=True)
class SeparatedResult:
    out_dir: Path
    run_id: str
    targets: int
    counts: dict[str, int]
    warnings: list[str]
    audit_head: str = ""


# --- reading and cross-checks (InputError naming the file; no value in a message) -----------


def _unique_key(df: pl.DataFrame, path: Path, column: str, label: str) -> None:
    row = first_bad_row(df, pl.col(column).is_null() | pl.col(column).is_duplicated())
    if row is not None:
        raise InputError(path, f"{column} vide ou en double dans le {label}", line=row,
                         column=column)


def _residues(df: pl.DataFrame, path: Path, prefix: str) -> None:
    """Masked values are residues mod p: anything else was not computed by the protocol."""
    for b in BITS:
        col = f"{prefix}{b}"
        row = first_bad_row(df, (pl.col(col) < 0) | (pl.col(col) >= P))
        if row is not None:
            raise InputError(path, "valeur hors de l'intervalle des résidus [0, p - 1]",
                             line=row, column=col)


def _count(frame: pl.DataFrame, column: str, others: pl.Series) -> int:
    return frame.filter(~pl.col(column).is_in(others.implode())).height


def _cross_check(households: pl.DataFrame, sums: pl.DataFrame, shares: pl.DataFrame,
                 files: DetectionFiles, hh_path: Path) -> None:
    """L sends one row per household not opposed at the CAF, its sums exactly where the
    household is found; the CAF a share for every household L sent sums for. A household left
    out would read as « not found » (a false a_verifier target), a sum without its share would
    not unmask: both refused, naming the file at fault."""
    kept = households.filter(~pl.col("opposition").fill_null(False))
    missing = _count(kept, "foyer", sums["foyer"])
    if missing:
        raise InputError(files.sums, f"{missing} foyer(s) non opposé(s) du fichier "
                         f"{hh_path.name} sans ligne dans ce fichier de sommes masquées",
                         column="foyer")
    extra = _count(sums, "foyer", kept["foyer"])
    if extra:
        raise InputError(files.sums, f"{extra} foyer(s) absent(s) du fichier {hh_path.name} "
                         "ou opposé(s) à la CAF", column="foyer")
    for col in ("trouve_cpam", "opposition_liee"):
        row = first_bad_row(sums, pl.col(col).is_null())
        if row is not None:
            raise InputError(files.sums, "indicateur vide", line=row, column=col)
    sums_cols = [pl.col(f"{separation.SUM_PREFIX}{b}") for b in BITS]
    sent = pl.all_horizontal([c.is_not_null() for c in sums_cols])
    row = first_bad_row(sums, (sent | pl.all_horizontal([c.is_null() for c in sums_cols]))
                        .not_() | (sent != pl.col("trouve_cpam")))
    if row is not None:
        raise InputError(files.sums, "sommes masquées présentes pour un foyer non trouvé, "
                         "absentes pour un foyer trouvé, ou incomplètes", line=row)
    without = _count(sums.filter(sent), "foyer", shares["foyer"])
    if without:
        raise InputError(files.shares, f"sommes masquées incohérentes : {without} foyer(s) ayant "
                         f"une somme dans {files.sums.name} sans part de la CAF dans ce fichier",
                         column="foyer")


def read_tables(files: DetectionFiles, gate: DetectionGate
                ) -> tuple[DetectionInputs, pl.DataFrame]:
    """D's tables from the verified files, and the owners (handle, fournisseur) of the insured
    persons (which coverage provider's detection file each handle came from)."""
    from pipeline.central.coverage import PROVIDER_COLUMN, refuse_shared_handles

    benefits = gate.benefits
    hh_path = files.detection[benefits]
    label = f"fichier des foyers {sigle(benefits)}"
    households = check_keys(read_table(hh_path, HOUSEHOLD_TYPES, label), hh_path, label)
    _unique_key(households, hh_path, "foyer", label)
    reference = reference_date(households, hh_path)
    insured = []
    for agency in on_side(gate.providers, COVERAGE):
        path = files.detection[agency]
        what = f"fichier des assurés {sigle(agency)}"
        frame = check_keys(read_table(path, INSURED_TYPES, what), path, what)
        insured.append(frame.with_columns(pl.lit(agency).alias(PROVIDER_COLUMN)))
    both = refuse_shared_handles(pl.concat(insured))
    sums = read_table(files.sums, SUMS_TYPES, "fichier de sommes masquées")
    _unique_key(sums, files.sums, "foyer", "fichier de sommes masquées")
    _residues(sums, files.sums, separation.SUM_PREFIX)
    shares = read_table(files.shares, SHARES_TYPES, "fichier des parts de la CAF")
    _unique_key(shares, files.shares, "foyer", "fichier des parts de la CAF")
    _residues(shares, files.shares, separation.SHARE_PREFIX)
    minima = read_table(files.minima, MINIMA_TYPES, "fichier des minima de la CAF")
    _unique_key(minima, files.minima, "cpam_handle", "fichier des minima de la CAF")
    opposition = read_table(files.opposition, OPPOSITION_TYPES, "fichier des oppositions")
    _unique_key(opposition, files.opposition, "cpam_handle", "fichier des oppositions")
    _cross_check(households, sums, shares, files, hh_path)
    try:
        d = from_protocol(households, sums, shares, both.drop(PROVIDER_COLUMN).sort("handle"),
                          minima, opposition, reference)
    except ValueError as exc:  # status_bits.unmask: what the cross-check did not catch
        raise InputError(files.shares, str(exc)) from exc
    return d, both.select("handle", PROVIDER_COLUMN)


# --- validation and report -------------------------------------------------------------------


def checked(stage: str, frame: pl.DataFrame, staging: Path, context: dict) -> object:
    """The stage's expectation suite on `frame` (results under validation/); a critical
    failure stops the run."""
    from pipeline.central.report import raise_on_critical, validate

    outcome = validate(stage, frame, staging, context=context)
    raise_on_critical(outcome)
    return outcome


def validate_inputs(files: DetectionFiles, gate: DetectionGate, staging: Path) -> list:
    """Each provider's detection file against its contract's suite (caf_detection,
    cpam_detection: pipeline/shared/suites/), with the row count its manifest signs."""
    from pipeline.shared.providers import modele

    out = []
    for agency in gate.providers:
        rows = gate.manifests[agency].rows
        own = modele(agency) == agency
        out.append(checked(f"{modele(agency)}_detection", pl.read_parquet(files.detection[agency]),
                           staging if own else staging / "fournisseurs" / agency,
                           {"convention": gate.convention_id, "agency": agency,
                            "expected_rows_min": rows, "expected_rows_max": rows}))
    return out


def report(staging: Path, gate: DetectionGate, validations: list, audit_log: Path,
           recorded: dict, run_id: str, today: dt.date, warnings: list[str]) -> None:
    """The detecting operator's report: the sections of its role (report/facts.py
    ROLE_SECTIONS), with the k-anonymity of its two views."""
    from pipeline.central.facts import collect_facts
    from pipeline.central.report import render_report
    from pipeline.trust import audit

    status = audit.verify(audit_log)
    facts = collect_facts(staging, gate=gate, leak={}, agency_leakage={},
                          validations=validations,
                          audit_status={**status.to_dict(), "entries": recorded["seq"],
                                        "head": audit.head_of(recorded)},
                          run_id=run_id, today=today, warnings=warnings, role="detection")
    with step("Rapport de l'opérateur de détection"):
        render_report(staging, facts)


# --- the run --------------------------------------------------------------------------------


def run_detection(
    convention: Path,
    detection: Mapping[str, Path],
    handoff: Path,
    parts: Path,
    out_dir: Path,
    audit_log: Path,
    *,
    today: dt.date,
    rules: list[str] | None = None,
    strict: bool = False,
    replace: bool = False,
) -> SeparatedResult:
    """One run of the detecting operator, alone on `out_dir` (lock), refusing to overwrite it
    unless `replace`. `detection`: {provider: folder received, <provider>.detection.parquet +
    <provider>.manifest.json}; `handoff`: L's folder (sommes.parquet, oppositions.parquet);
    `parts`: the CAF's folder (caf.parts.parquet, caf.minima.parquet, each with its manifest)."""
    out_dir, audit_log = Path(out_dir), Path(audit_log)
    if audit_log.resolve().is_relative_to(out_dir.resolve()):
        raise PipelineError(
            f"{audit_log} : le journal d'audit ne peut pas être dans le dossier de sortie "
            f"{out_dir}, remplacé en entier à chaque exécution ; placez-le à côté (par exemple "
            f"{out_dir.parent / 'audit_detection.jsonl'})")
    with exclusive_output(out_dir, replace=replace):
        return _run_locked(convention, detection, handoff, parts, out_dir, audit_log,
                           today=today, rules=rules, strict=strict)


def _run_locked(convention: Path, detection: Mapping[str, Path], handoff: Path, parts: Path,
                out_dir: Path, audit_log: Path, *, today: dt.date, rules: list[str] | None,
                strict: bool) -> SeparatedResult:
    from pipeline.central.coverage import assign_owned
    from pipeline.central.detect.detection_views import detection_k
    from pipeline.central.detect.engine import TARGET_SORT, run_rules, select_period, select_rules
    from pipeline.central.detect.predicates import load_checked_rules
    from pipeline.central.run import audit_reason, run_id_for
    from pipeline.trust import audit

    # A torn or altered log stops everything before any work: nothing computed, nothing published.
    audit.require_intact(audit_log)
    files = locate(detection, handoff, parts)
    inputs = {label: sha256_file(path) for label, path in files.labelled().items()
              if path.is_file()}
    params = {"convention": str(convention), "rules": rules, "strict": strict,
              "today": today.isoformat(), "version": __version__}
    run_id = run_id_for(inputs, params)
    entry = {"event": EVENT, "run_id": run_id, "inputs": inputs, "params": params,
             "versions": {"nonrecours": __version__}}

    try:
        with step("Contrôle de la convention, des manifestes et des empreintes de clé"):
            gate = verify_detection_inputs(convention, files, rules, today)
        with step("Lecture et contrôle des fichiers de l'opérateur de détection"):
            d, owners = read_tables(files, gate)
            sel, warnings = select_period(d.reference_date, strict)
            catalogue = select_rules(load_checked_rules(), gate.rules)
    except PipelineError as exc:
        audit.append(audit_log, {**entry, "outcome": "refus", "reason": str(exc)})
        raise
    entry["convention"] = gate.convention_id
    entry["operator"] = ",".join(gate.detectors)
    entry["fichiers_reference"] = {**gate.reference_files,
                                   "table_parametres": gate.parameter_table}

    recorded: dict | None = None
    try:
        with staged_folder(out_dir) as staging:
            with step("k-anonymat de ce que détient l'opérateur de détection"):
                k = detection_k(d)
            result = run_rules(d, staging, catalogue, sel, warnings,
                               extra_stats={"k_anonymat_detection": k})
            assign_owned(staging, gate.providers, owners, TARGET_SORT)
            validations = validate_inputs(files, gate, staging)
            targets_frame = pl.read_parquet(staging / "targets.parquet")
            validations.append(checked("targets", targets_frame, staging, {
                "aggregates": str(staging / "aggregates.csv"), "fournisseurs": gate.providers}))
            targets = targets_frame.height
            outputs = {p.name: sha256_file(p) for p in sorted(staging.iterdir()) if p.is_file()}
            recorded = audit.append(audit_log, {**entry, "outcome": "succes",
                                                "outputs": outputs, "warnings": warnings})
            fault_point("audit-appended", out_dir)
            head = audit.head_of(recorded)
            report(staging, gate, validations, audit_log, recorded, run_id, today, warnings)
            reports = {p.name: sha256_file(p) for p in sorted(staging.iterdir())
                       if p.is_file() and p.name not in outputs}
            write_text(staging / "run.json", json.dumps(
                {"run_id": run_id, "convention": gate.convention_id,
                 "today": today.isoformat(), "outputs": {**outputs, **reports},
                 "audit_head": head, "gate": gate.to_dict()},
                indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    except Exception as exc:
        audit.append(audit_log, {**entry, "outcome": "echec",
                                 "phase": "publication" if recorded else "calcul",
                                 "reason": audit_reason(exc)})
        raise

    for w in warnings:
        warn(w)
    for view, figures in sorted(k.items()):
        if figures.get("objectifs_atteints") is False:
            warn(f"k-anonymat : objectifs non atteints sur la {view.replace('_', ' ')} "
                 f"(k = 1 : {figures['part_k1']:.2%}, k < 5 : {figures['part_k_moins_5']:.2%})")
    info(f"Résultats de la détection : {out_dir} ({targets} cibles)")
    if not QUIET:  # one unwrapped line: the head is copied from it
        console.print(f"Journal d'audit : {audit_log}, {recorded['seq']} entrées, tête {head} "
                      "(à conserver hors du serveur ; vérification : « audit verify --head »)",
                      soft_wrap=True)
    return SeparatedResult(out_dir=out_dir, run_id=run_id, targets=targets,
                           counts=dict(result.counts), warnings=list(warnings), audit_head=head)
