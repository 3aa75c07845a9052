"""The linking operator's run, under a convention: gate -> checks -> link -> hand-off -> report ->
audit.

The operator only ever holds the pseudonymised exports and their signed manifests: one from the
benefits side (the CAF) and one from each coverage provider (CPAM, and MSA when the convention
names it: pipeline/shared/providers.yaml), whose union is the coverage side
(central/coverage.py). Since contract 6 the exports carry no feature: the operator links, then
writes the masked household sums for the detecting operator and the CAF's link list
(central/match/handoff.py); the rules run at the detecting operator (central/detect/), which
never receives a token nor the links (docs/SEPARATION.md). Nothing runs before the gate
(convention, signatures, manifests, key fingerprints, allowed fields and rules) has passed; a
refusal is recorded in the audit log and nothing else is written. The audit log is verified
before anything else (a torn or altered log: nothing runs, nothing is published). Outputs are
built in a staging folder; the run's audit entry (digests of the results) is appended, the
report printing the head after that entry is rendered, and only then is the folder swapped into
place (pipeline/common/files.py), so a failed or killed run never leaves a half-written result
and never removes the previous one before the new one is in.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from pipeline import __version__
from pipeline.central.facts import K_FILE, collect_facts, read_json
from pipeline.common.errors import PipelineError, RefusalError, os_error_message
from pipeline.common.files import fault_point, sha256_file, staged_folder, write_text
from pipeline.common.outputs import exclusive_output
from pipeline.common.progress import QUIET, console, info, step, warn
from pipeline.shared.providers import COVERAGE, benefits_provider, modele, on_side, ordered, sigle
from pipeline.shared.separation import HANDOFF_DIR

# Wall-clock measurements, not results: left out of the audit entry so that a rerun with the same
# inputs, parameters and clock (SOURCE_DATE_EPOCH) writes the same entry, hence the same report.
MEASUREMENTS = "_timings.json"


@dataclass(frozen=True)
class CentralResult:
    out_dir: Path
    run_id: str
    links: int
    warnings: list[str]
    audit_head: str = ""


def export_file(inbox: Path, agency: str) -> Path:
    path = inbox / f"{agency}.pseudo.parquet"
    if not path.exists():
        raise PipelineError(f"{path} : fichier pseudonymisé introuvable dans le dossier reçu")
    return path


def run_id_for(inputs: dict[str, str], params: dict) -> str:
    """A run id derived from what was run (input hashes + parameters): reruns share it."""
    blob = json.dumps({"inputs": inputs, "params": params}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def run_central(
    convention: Path,
    inboxes: dict[str, Path],
    out_dir: Path,
    audit_log: Path,
    *,
    today: date,
    rules: list[str] | None = None,
    strict: bool = False,
    replace: bool = True,
    residue: dict[str, Path] | None = None,
    keys: Path | None = None,
) -> CentralResult:
    """One central run, alone on `out_dir` (lock), refusing to overwrite it unless `replace`.

    `keys`: the linking operator's key folder; its signing key signs the hand-off for the
    detecting operator (without it the hand-off is written unsigned, and refused there).

    `residue` = {provider: folder received with residu.parquet + its signed manifest}: the
    agencies' answers to the residue requests of a previous run (staged exchange)."""
    out_dir, audit_log = Path(out_dir), Path(audit_log)
    with exclusive_output(out_dir, replace=replace):
        return _run_locked(convention, inboxes, out_dir, audit_log, today=today, rules=rules,
                           keys=keys,
                           strict=strict, residue=residue)


def audit_reason(exc: BaseException) -> str:
    """What the audit log says about a failure: our own messages (no data value by design),
    the system error, or only the exception's type."""
    if isinstance(exc, PipelineError):
        return str(exc)
    if isinstance(exc, OSError):
        return os_error_message(exc)
    return f"erreur inattendue ({type(exc).__name__})"


def _run_locked(
    convention: Path,
    inboxes: dict[str, Path],
    out_dir: Path,
    audit_log: Path,
    *,
    today: date,
    rules: list[str] | None,
    strict: bool,
    residue: dict[str, Path] | None = None,
    keys: Path | None = None,
) -> CentralResult:
    from pipeline.trust import audit

    # A torn or altered log stops everything before any work: nothing computed, nothing published.
    audit.require_intact(audit_log)

    from pipeline.central.coverage import union
    from pipeline.central.detect.engine import central_k_anonymity
    from pipeline.central.match import link
    from pipeline.central.match.handoff import sign_handoff, write_handoff
    from pipeline.central.report import raise_on_critical, render_report, validate
    from pipeline.shared.leak_scan import scan_frame
    from pipeline.trust.convention import load_convention
    from pipeline.trust.gate import verify_central_inputs
    providers = ordered(inboxes)
    benefits, coverage = benefits_provider(providers), on_side(providers, COVERAGE)
    if not coverage:
        raise PipelineError("aucun fichier d'un fournisseur de couverture maladie (CPAM, MSA)")
    exports = {agency: export_file(inboxes[agency], agency) for agency in providers}
    inputs = {agency: sha256_file(path) for agency, path in exports.items()}
    if residue:
        from pipeline.central.match.residue_gate import residue_file

        inputs |= {f"{agency}_residu": sha256_file(residue_file(path))
                   for agency, path in sorted(residue.items()) if residue_file(path).is_file()}
    params = {
        "convention": str(convention),
        "rules": rules,
        "strict": strict,
        "today": today.isoformat(),
        "version": __version__,
    }
    run_id = run_id_for(inputs, params)
    entry = {
        "event": "central_run",
        "run_id": run_id,
        "inputs": inputs,
        "params": params,
        "versions": {"nonrecours": __version__},
    }

    try:
        with step("Contrôle de la convention, des manifestes et des empreintes de clé"):
            conv = load_convention(convention)
            rule_ids = rules or list(conv.allowed_rules)
            gate = verify_central_inputs(convention, inboxes, rule_ids, today)
            if residue:
                from pipeline.central.match.residue_gate import verify_residue_inputs

                verify_residue_inputs(convention, residue, gate)
    except RefusalError as exc:
        audit.append(audit_log, {**entry, "outcome": "refus", "reason": str(exc)})
        raise
    entry["convention"] = conv.id
    entry["operator"] = ",".join(conv.operators)
    entry["fichiers_reference"] = {**gate.reference_files, "table_parametres": gate.parameter_table}

    warnings: list[str] = []
    recorded: dict | None = None
    try:
        with staged_folder(out_dir) as staging, tempfile.TemporaryDirectory() as work:
            validations = []
            leak = {}
            frames = {agency: pl.read_parquet(path) for agency, path in exports.items()}
            for agency in exports:
                with step(f"Recherche d'identifiants en clair dans le fichier {sigle(agency)}"):
                    leak[agency] = scan_frame(frames[agency], agency=agency)
                    if not leak[agency].get("ok", False):
                        raise RefusalError(
                            f"le fichier pseudonymisé {sigle(agency)} contient des valeurs qui "
                            "ressemblent à des identifiants en clair : "
                            f"{leak[agency].get('findings')}"
                        )
                with step(f"Validation du fichier pseudonymisé {sigle(agency)}"):
                    signed_rows = gate_rows(gate, agency)
                    # a provider following another's contract (the MSA, the CPAM's) is checked
                    # by that contract's suite, its results kept in a folder of its own
                    own = modele(agency) == agency
                    outcome = validate(
                        f"{modele(agency)}_export",
                        frames[agency],
                        staging if own else staging / "fournisseurs" / agency,
                        context={
                            "convention": conv.id,
                            "agency": agency,
                            "allowed_columns": conv.allowed_fields(agency),
                            "expected_rows_min": signed_rows,
                            "expected_rows_max": signed_rows,
                        },
                    )
                    raise_on_critical(outcome)
                    validations.append(outcome)

            # the coverage side: one export, or the union of the coverage providers' exports
            covered = union(exports, coverage, Path(work))
            with step("Appariement (passes déterministes puis Fellegi–Sunter)"):
                linked = link(exports[benefits], covered, staging, residue=residue)
            warnings += list(linked.stats["residue"].get("avertissements", []))
            links = pl.read_parquet(staging / "links.parquet")
            outcome = validate(
                "links",
                links,
                staging,
                context={
                    "caf_rows": frames[benefits].height,
                    "cpam_rows": sum(frames[a].height for a in coverage),
                    "caf_handles": frames[benefits]["handle"],
                    "cpam_handles": pl.concat([frames[a]["handle"] for a in coverage]),
                },
            )
            raise_on_critical(outcome)
            validations.append(outcome)

            # contract 6: the sums for the detecting operator and the CAF's link list
            with step("Sommes masquées pour l'opérateur de détection, liens pour la CAF"):
                handoff = write_handoff(benefits, exports[benefits], covered,
                                        staging / "links.parquet", staging / HANDOFF_DIR)
                if handoff and keys is not None:
                    sign_handoff(handoff, conv, gate, keys)
                elif handoff:
                    warnings.append("sommes masquées non signées (pas de --keys de l'opérateur "
                                    "d'appariement) : l'opérateur de détection les refusera")

            # contract 6: the rules run at the detecting operator, on its own files
            with step("k-anonymat de ce que l'opérateur d'appariement détient"):
                write_text(staging / K_FILE, json.dumps(
                    central_k_anonymity(exports[benefits], covered, links),
                    ensure_ascii=False, indent=2, sort_keys=True) + "\n")

            # The run's entry is written BEFORE publication and holds the digests of every
            # result; the report (rendered next) prints the head AFTER this entry, so the
            # report cannot be in the entry: it is bound to it by that head instead.
            outputs = {p.name: sha256_file(p) for p in sorted(staging.iterdir())
                       if p.is_file() and not p.name.endswith(MEASUREMENTS)}
            outputs |= {f"{HANDOFF_DIR}/{p.name}": sha256_file(p) for p in handoff.values()}
            recorded = audit.append(
                audit_log, {**entry, "outcome": "succes", "outputs": outputs,
                            "warnings": warnings}
            )
            fault_point("audit-appended", out_dir)
            status = audit.verify(audit_log)
            audit_status = {
                **status.to_dict(),
                "entries": recorded["seq"],
                "head": audit.head_of(recorded),
            }
            agency_leakage = {a: read_json(inboxes[a] / f"{a}.leakage.json") for a in providers}
            if residue:  # the attacks each agency ran on its residue, received with it
                from pipeline.central.match.residue_gate import residue_leakage_file

                for a, path in sorted(residue.items()):
                    found = residue_leakage_file(path, a)
                    if a in agency_leakage and found.is_file():
                        agency_leakage[a]["residu"] = read_json(found)
            facts = collect_facts(
                staging,
                gate=gate,
                leak=leak,
                agency_leakage=agency_leakage,
                validations=validations,
                audit_status=audit_status,
                run_id=run_id,
                today=today,
                warnings=warnings,
                role="appariement",
            )
            with step("Rapport de validation"):
                render_report(staging, facts)
            reports = {p.name: sha256_file(p) for p in sorted(staging.iterdir())
                       if p.is_file() and p.name not in outputs}
            write_text(
                staging / "run.json",
                json.dumps(
                    {
                        "run_id": run_id,
                        "convention": conv.id,
                        "today": today.isoformat(),
                        "outputs": {**outputs, **reports},
                        "audit_head": audit_status["head"],
                    },
                    indent=2,
                    sort_keys=True,
                )
                + "\n",
            )
    except Exception as exc:
        audit.append(audit_log, {
            **entry, "outcome": "echec",
            "phase": "publication" if recorded else "calcul", "reason": audit_reason(exc),
        })
        raise

    for w in warnings:
        warn(w)
    info(f"Résultats de l'appariement : {out_dir} ({links.height} liens ; la détection est "
         "faite par l'opérateur de détection)")
    if not QUIET:  # one unwrapped line: the head is copied from it
        console.print(f"Journal d'audit : {audit_log}, {audit_status['entries']} entrées, tête "
                      f"{audit_status['head']} (à conserver hors du serveur ; vérification : "
                      "« audit verify --head »)", soft_wrap=True)
    return CentralResult(out_dir=out_dir, run_id=run_id, links=links.height,
                         warnings=warnings, audit_head=audit_status["head"])


def gate_rows(gate: object, agency: str) -> int | None:
    """Row count of an agency's file as signed in its manifest (bounds the link rate)."""
    manifest = gate.to_dict().get("manifests", {}).get(agency) or {}
    return manifest.get("rows")
