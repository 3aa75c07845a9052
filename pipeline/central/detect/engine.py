"""Central detection: household view -> rule hits -> targets, aggregates, stats.

One core, `run_rules`, on the detecting operator's tables (detection_inputs.DetectionInputs):
prepare the views, compute the hits, fold them into targets, write targets.parquet,
aggregates.csv and detect_stats.json. Two paths feed it: `detect` (the single central operator:
exports and links in the clear, the tables derived by `in_clear`; it alone adds what needs
them: the household-size check, the links per pass, the k of the joined view) and
`separated.run_detection` (the `detecter` command: the parties' files, `from_protocol`).

All the row work happens in the engine (pipeline/central/engines: DuckDB, Spark) over the loaded
tables; Python only assembles SQL from the validated catalogue (rules.yaml) and the .sql files
of pipeline/central/detect/sql, and writes the outputs deterministically.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.central.detect.detection_inputs import DetectionInputs, in_clear
from pipeline.central.detect.inputs import CentralInputs, read_inputs
from pipeline.central.detect.predicates import load_checked_rules
from pipeline.central.engines import EngineSettings, current_settings, open_engine
from pipeline.central.engines.base import Engine, Table, sql_text
from pipeline.common.errors import InputError, RefusalError
from pipeline.common.files import write_text
from pipeline.common.progress import step, warn
from pipeline.common.tables import write_parquet
from pipeline.shared import css_params, kanonymity
from pipeline.shared.aggregates import write_aggregates
from pipeline.shared.features import load_catalogue
from pipeline.shared.providers import AGENCIES
from pipeline.shared.rules import SQL_MACROS, Rule

PACKAGE = "pipeline.central.detect"
TARGET_SORT = ["agence", "liste", "priorite", "quartier", "foyer"]
# Detection reads one row per household: two DuckDB threads are plenty and leave the rest free.
DETECT_THREADS = 2


@dataclass(frozen=True)
class DetectResult:
    """Where the outputs are, and the figures a caller (central run, report) needs."""

    targets: Path
    aggregates: Path
    stats: Path
    reference_date: dt.date
    counts: dict[str, int]
    warnings: tuple[str, ...]


def _sql(engine: Engine, name: str, /, **params: Table | str) -> str:
    return engine.sql(PACKAGE, name, **params)


def _statements(text: str) -> list[str]:
    return [s for s in (part.strip() for part in text.split(";")) if s and not all(
        line.lstrip().startswith("--") for line in s.splitlines())]


def prepare(engine: Engine, inputs: CentralInputs | DetectionInputs,
            sel: css_params.ParameterSelection) -> dict[str, Table]:
    """Load the detecting operator's tables (detection_inputs.py: from the parties' files, or
    derived in the clear from the exports) and the parameters; build the views `foyers` and
    `assures_cpam` (the names rules.yaml's `vue` uses)."""
    if isinstance(inputs, CentralInputs):
        inputs = in_clear(inputs)
    windows = load_catalogue().parametres
    run_params = pl.DataFrame(
        {
            "date_reference": [sel.reference_date],
            "fenetre_fin_proche_jours": [windows["fenetre_fin_proche_jours"]],
            "fenetre_terminee_recente_jours": [windows["fenetre_terminee_recente_jours"]],
        }
    )
    t = {name: engine.load_frame(name, df) for name, df in (
        ("households", inputs.households), ("bits", inputs.bits), ("insured", inputs.insured),
        ("insured_caf", inputs.insured_caf), ("run_params", run_params))}
    # French formatting functions of the reason templates (rules.py; Spark: sql/spark/macros.sql)
    macros = SQL_MACROS if engine.dialect == "duckdb" else sql_text(PACKAGE, "macros",
                                                                    engine.dialect)
    for statement in _statements(macros):
        engine.execute(statement)
    t["foyers"] = engine.run(PACKAGE, "households", "foyers", households=t["households"],
                             bits=t["bits"], run_params=t["run_params"])
    t["assures_cpam"] = engine.run(PACKAGE, "assures_cpam", "assures_cpam",
                                   insured=t["insured"], insured_caf=t["insured_caf"],
                                   run_params=t["run_params"])
    return t


def connect(inputs: CentralInputs | DetectionInputs,
            sel: css_params.ParameterSelection) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection holding the detecting operator's tables, the parameter tables and the
    household views (pipeline/central/detect/predicates.py binds every rule predicate against
    it)."""
    from pipeline.central.engines.duckdb_engine import DuckDBEngine

    engine = DuckDBEngine(EngineSettings(threads=DETECT_THREADS))
    prepare(engine, inputs, sel)
    return engine.con


def _hits_sql(engine: Engine, rule: Rule, columns: set[str], overrides: dict[str, int]) -> str:
    def lit(s: str) -> str:
        return "'" + s.replace("'", "''") + "'"

    return _sql(engine, "rule_hits", agence=lit(rule.agence), liste=lit(rule.liste),
                regle=lit(rule.id), motif=rule.motif_sql(columns), action=lit(rule.action),
                priorite=str(rule.priorite), view=rule.vue, gate=rule.gate_sql(),
                predicate=rule.predicate_sql(overrides))


def select_rules(all_rules: list[Rule], wanted: list[str] | None) -> list[Rule]:
    if wanted is None:
        return all_rules
    known = {r.id for r in all_rules}
    unknown = sorted(set(wanted) - known)
    if unknown:
        raise RefusalError(
            f"règle(s) inconnue(s) : {', '.join(unknown)} ; connues : {', '.join(sorted(known))}"
        )
    return [r for r in all_rules if r.id in set(wanted)]


def compute_hits(
    engine: Engine, rules: list[Rule], overrides: dict[str, dict[str, int]]
) -> tuple[Table, pl.DataFrame]:
    """One row per (household, rule) met; empty frame with the right schema when none."""
    parts = [_hits_sql(engine, r, set(engine.columns(Table(r.vue))), overrides.get(r.id, {}))
             for r in rules]
    if not parts:
        parts = [_sql(engine, "no_hits")]
    hits = engine.create("hits", "\nUNION ALL\n".join(parts))
    return hits, engine.collect(_sql(engine, "hits_sorted", hits=hits))


def build_targets(engine: Engine, hits: Table, run_params: Table,
                  warning: str | None) -> pl.DataFrame:
    """Fold the hits into one row per household and agency (contract "Targets")."""
    df = engine.collect(_sql(engine, "targets", hits=hits, run_params=run_params))
    return df.with_columns(pl.lit(warning, dtype=pl.String).alias("avertissement"))


def _stats(
    engine: Engine,
    t: dict[str, Table],
    sel: css_params.ParameterSelection,
    rules: list[Rule],
    skipped: list[Rule],
    targets: pl.DataFrame,
    overrides: dict[str, dict[str, int]],
    warnings: list[str],
) -> dict[str, Any]:
    """The figures of detect_stats.json every detection path knows (what D holds: no link)."""
    f = engine.collect(_sql(engine, "household_counts", foyers=t["foyers"])).row(0, named=True)
    a = engine.collect(_sql(engine, "insured_counts", assures_cpam=t["assures_cpam"])).row(
        0, named=True)
    per_rule = engine.collect(_sql(engine, "hits_per_rule", hits=t["hits"]))
    counts = {r.id: 0 for r in rules}
    counts.update(dict(zip(per_rule["regle"].to_list(), per_rule["n"].to_list(), strict=True)))
    return {
        "date_reference": sel.reference_date.isoformat(),
        "parametres_css": css_params.describe(sel),
        "avertissements": warnings,
        "regles_appliquees": [
            {
                "id": r.id,
                "parametres": {**r.parametres, **overrides.get(r.id, {})},
                "foyers": counts[r.id],
            }
            for r in rules
        ],
        "regles_non_applicables": [
            {
                "id": r.id,
                "motif": f"hors période d'effet ({r.du.isoformat()} → "
                f"{r.au.isoformat() if r.au else '…'})",
            }
            for r in skipped
        ],
        "foyers": f,
        "assures": a,
        "cibles": {
            "total": targets.height,
            "par_liste": {
                k: int(targets.filter(pl.col("liste") == k).height) for k in ("cible", "a_verifier")
            },
            "par_agence": {
                k: int(targets.filter(pl.col("agence") == k).height) for k in AGENCIES
            },
        },
    }


def links_per_pass(links: pl.DataFrame) -> dict[str, int]:
    """Links per linkage pass (detect_stats.json `liens_par_passe`: the linking operator's)."""
    by_pass = links.group_by("pass").len().sort("pass")
    return dict(zip(by_pass["pass"].to_list(), by_pass["len"].to_list(), strict=True))


def central_k_anonymity(caf_export: Path, cpam_export: Path, links: pl.DataFrame) -> dict:
    """k-anonymity of what the operator holds: each export's non-token attributes and the joined
    view through the links (pipeline/shared/kanonymity.py)."""
    frames = {}
    for agency, path in (("caf", caf_export), ("cpam", cpam_export)):
        cols = [c for c in pl.read_parquet_schema(path) if not c.startswith("tok_")]
        frames[agency] = pl.read_parquet(path, columns=cols)
    return {
        "caf": kanonymity.export_k(frames["caf"]),
        "cpam": kanonymity.export_k(frames["cpam"]),
        "vue_jointe": kanonymity.joined_k(frames["caf"], frames["cpam"], links),
    }


def select_period(reference_date: dt.date, strict: bool,
                  warnings: tuple[str, ...] = ()) -> tuple[css_params.ParameterSelection,
                                                          list[str]]:
    """The CSS table of the reference date (refused with `strict` when not confirmed) and the
    run's warnings, the table's first."""
    sel = css_params.select_period(reference_date, strict=strict)
    out = list(warnings)
    if sel.warning:
        out.insert(0, sel.warning)
        warn(sel.warning)
    return sel, out


def run_rules(
    inputs: DetectionInputs,
    out_dir: Path,
    catalogue: list[Rule],
    sel: css_params.ParameterSelection,
    warnings: list[str],
    *,
    engine: EngineSettings | None = None,
    extra_stats: dict[str, Any] | None = None,
) -> DetectResult:
    """The core every detection path shares, on the detecting operator's tables: prepare the
    views, compute the hits of the rules in force, fold them into targets, write
    targets.parquet, aggregates.csv and detect_stats.json (with `extra_stats` merged in)."""
    out_dir = Path(out_dir)
    applicable = [r for r in catalogue if r.applies_on(sel.reference_date)]
    skipped = [r for r in catalogue if not r.applies_on(sel.reference_date)]
    overrides: dict[str, dict[str, int]] = {}
    settings = engine or current_settings()
    if settings.name == "duckdb" and settings.threads is None:
        settings = dataclasses.replace(settings, threads=DETECT_THREADS)
    eng = open_engine(settings)
    try:
        with step(f"Règles de détection ({settings.name})"):
            t = prepare(eng, inputs, sel)
            t["hits"], hits = compute_hits(eng, applicable, overrides)
            targets = build_targets(eng, t["hits"], t["run_params"], sel.warning)
        with step("Écriture des cibles, agrégats et statistiques"):
            targets_path = write_parquet(targets, out_dir / "targets.parquet",
                                         sort_by=TARGET_SORT)
            quartiers = eng.collect(_sql(eng, "quartiers", foyers=t["foyers"]))["quartier"]
            aggregates_path = write_aggregates(hits, applicable, quartiers.to_list(),
                                               out_dir / "aggregates.csv")
            stats = {**_stats(eng, t, sel, applicable, skipped, targets, overrides, warnings),
                     **(extra_stats or {})}
            stats_path = write_text(
                out_dir / "detect_stats.json",
                json.dumps(stats, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
            )
    finally:
        eng.close()
    counts = {d["id"]: d["foyers"] for d in stats["regles_appliquees"]}
    return DetectResult(
        targets_path, aggregates_path, stats_path, sel.reference_date, counts, tuple(warnings)
    )


def detect(
    caf_export: Path,
    cpam_export: Path,
    links: Path,
    out_dir: Path,
    *,
    rules: list[str] | None = None,
    strict: bool = False,
    renewal_window_days: int | None = None,
    engine: EngineSettings | None = None,
) -> DetectResult:
    """Run the rule catalogue over the linked households and write targets, aggregates, stats.

    The single central operator's path: the exports and the links in the clear, the detecting
    operator's tables derived from them (detection_inputs.in_clear); the separated path
    (separated.py) runs the same core on the parties' files. Opposed households are never
    targets; a reference date without a confirmed CSS table is refused with `strict`, else
    applied with a warning repeated on every output. `engine` (default: the settings in force)
    chooses the engine the rules run on.
    """
    window = load_catalogue().parametres["fenetre_fin_proche_jours"]
    if renewal_window_days is not None and renewal_window_days != window:
        # the CPAM computed statut_css with its window: the centre cannot move it
        raise RefusalError(
            f"fenêtre de renouvellement de {renewal_window_days} jours demandée, mais le statut "
            f"CSS est calculé par la CPAM avec {window} jours (pipeline/shared/features.yaml) : "
            "changez-la là, à la source"
        )
    catalogue = select_rules(load_checked_rules(), rules)
    with step("Lecture des fichiers pseudonymisés et des liens"):
        inputs = read_inputs(Path(caf_export), Path(cpam_export), Path(links))
    sel, warnings = select_period(inputs.reference_date, strict, inputs.warnings)
    # the household size is structure: only the exports in the clear show it (under the
    # separated detection the CAF checks it, and D never sees a size)
    sizes = inputs.caf.group_by("foyer").len()["len"]
    if sizes.len() and int(sizes.max()) > css_params.MAX_RANK:
        raise InputError(
            caf_export, f"foyer de plus de {css_params.MAX_RANK} personnes", column="foyer"
        )
    extra = {"liens_par_passe": links_per_pass(inputs.links),
             "k_anonymat": central_k_anonymity(caf_export, cpam_export, inputs.links)}
    return run_rules(in_clear(inputs), out_dir, catalogue, sel, warnings, engine=engine,
                     extra_stats=extra)
