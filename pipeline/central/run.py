"""The central run, under a convention: gate -> checks -> link -> detect -> report -> audit.

The operator only ever holds the two pseudonymised exports and their signed manifests. Nothing
runs before the gate (convention, signatures, manifests, key fingerprints, allowed fields and
rules) has passed; a refusal is recorded in the audit log and nothing else is written. Outputs
are built in a staging folder and renamed into place only when the whole run succeeded, so a
failed run never leaves a half-written result next to a good one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from pipeline import __version__
from pipeline.central.facts import collect_facts, read_json
from pipeline.common.errors import PipelineError, RefusalError
from pipeline.common.files import sha256_file, write_text
from pipeline.common.progress import info, step, warn

AGENCIES = ("caf", "cpam")


@dataclass(frozen=True)
class CentralResult:
    out_dir: Path
    run_id: str
    targets: int
    warnings: list[str]


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
) -> CentralResult:
    from pipeline.detect import detect
    from pipeline.match import link
    from pipeline.pseudonymise.leakage import scan_frame
    from pipeline.report import raise_on_critical, render_report, validate
    from pipeline.trust import audit
    from pipeline.trust.convention import load_convention
    from pipeline.trust.gate import verify_central_inputs

    exports = {agency: export_file(inboxes[agency], agency) for agency in AGENCIES}
    inputs = {agency: sha256_file(path) for agency, path in exports.items()}
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
    except RefusalError as exc:
        audit.append(audit_log, {**entry, "outcome": "refus", "reason": str(exc)})
        raise
    entry["convention"] = conv.id
    entry["operator"] = ",".join(conv.operators)
    entry["fichiers_reference"] = {**gate.reference_files, "table_parametres": gate.parameter_table}

    staging = out_dir.with_name(f".{out_dir.name}.partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    warnings: list[str] = []
    try:
        validations = []
        leak = {}
        frames = {agency: pl.read_parquet(path) for agency, path in exports.items()}
        for agency in exports:
            with step(f"Recherche d'identifiants en clair dans le fichier {agency.upper()}"):
                leak[agency] = scan_frame(frames[agency], agency=agency)
                if not leak[agency].get("ok", False):
                    raise RefusalError(
                        f"le fichier pseudonymisé {agency.upper()} contient des valeurs qui "
                        f"ressemblent à des identifiants en clair : {leak[agency].get('findings')}"
                    )
            with step(f"Validation du fichier pseudonymisé {agency.upper()}"):
                signed_rows = gate_rows(gate, agency)
                outcome = validate(
                    f"pseudo_{agency}",
                    frames[agency],
                    staging,
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

        with step("Appariement (passes déterministes puis Fellegi–Sunter)"):
            link(exports["caf"], exports["cpam"], staging)
        links = pl.read_parquet(staging / "links.parquet")
        outcome = validate(
            "links",
            links,
            staging,
            context={
                "caf_rows": frames["caf"].height,
                "cpam_rows": frames["cpam"].height,
                "caf_handles": frames["caf"]["handle"],
                "cpam_handles": frames["cpam"]["handle"],
            },
        )
        raise_on_critical(outcome)
        validations.append(outcome)

        with step("Détection (catalogue de règles)"):
            detected = detect(
                exports["caf"],
                exports["cpam"],
                staging / "links.parquet",
                staging,
                rules=rule_ids,
                strict=strict,
            )
        targets = pl.read_parquet(staging / "targets.parquet")
        outcome = validate(
            "targets",
            targets,
            staging,
            context={"aggregates": str(staging / "aggregates.csv")},
        )
        raise_on_critical(outcome)
        validations.append(outcome)
        warnings += list(detected.warnings)

        agency_leakage = {a: read_json(inboxes[a] / f"{a}.leakage.json") for a in AGENCIES}
        audit_status = (
            audit.verify(audit_log).to_dict()
            if audit_log.exists()
            else {"ok": True, "entries": 0, "head": "GENESIS"}
        )
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
        )
        with step("Rapport de validation"):
            render_report(staging, facts)
        outputs = {p.name: sha256_file(p) for p in sorted(staging.iterdir()) if p.is_file()}
    except Exception as exc:
        shutil.rmtree(staging, ignore_errors=True)
        audit.append(audit_log, {**entry, "outcome": "echec", "reason": str(exc)})
        raise

    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    audit.append(
        audit_log, {**entry, "outcome": "succes", "outputs": outputs, "warnings": warnings}
    )
    for w in warnings:
        warn(w)
    info(f"Résultats centraux : {out_dir} ({targets.height} foyers à contacter)")
    write_text(
        out_dir / "run.json",
        json.dumps(
            {
                "run_id": run_id,
                "convention": conv.id,
                "today": today.isoformat(),
                "outputs": outputs,
            },
            indent=2,
            sort_keys=True,
        )
        + "\n",
    )
    return CentralResult(out_dir=out_dir, run_id=run_id, targets=targets.height,
                         warnings=warnings)


def gate_rows(gate: object, agency: str) -> int | None:
    """Row count of an agency's file as signed in its manifest (bounds the link rate)."""
    manifest = gate.to_dict().get("manifests", {}).get(agency) or {}
    return manifest.get("rows")
