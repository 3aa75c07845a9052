"""Central detection: linked household view -> rule hits -> targets, aggregates, stats.

All the row work happens in DuckDB over the registered exports; Python only assembles SQL from
the validated catalogue (rules.yaml) and writes the outputs deterministically.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.common.errors import InputError, RefusalError
from pipeline.common.files import write_text
from pipeline.common.progress import step, warn
from pipeline.common.tables import write_parquet
from pipeline.detect import css_params
from pipeline.detect.aggregates import write_aggregates
from pipeline.detect.inputs import CentralInputs, read_inputs
from pipeline.detect.rules import SQL_MACROS, Rule, load_rules
from pipeline.shared import kanonymity
from pipeline.shared.features import load_catalogue
from pipeline.shared.providers import AGENCIES

SQL_FILES = ("members.sql", "household_view.sql")
TARGET_SORT = ["agence", "liste", "priorite", "quartier", "foyer"]


@dataclass(frozen=True)
class DetectResult:
    """Where the outputs are, and the figures a caller (central run, report) needs."""

    targets: Path
    aggregates: Path
    stats: Path
    reference_date: dt.date
    counts: dict[str, int]
    warnings: tuple[str, ...]


def sql_text(name: str) -> str:
    return (resources.files("pipeline.detect") / "sql" / name).read_text(encoding="utf-8")


def connect(inputs: CentralInputs, sel: css_params.ParameterSelection) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the inputs, the parameter tables and the household views."""
    con = duckdb.connect(":memory:")
    con.execute("SET threads TO 2")
    con.execute("SET enable_progress_bar = false")
    windows = load_catalogue().parametres
    tables = {
        "caf": inputs.caf,
        "cpam": inputs.cpam,
        "links": inputs.links,
        "run_params": pl.DataFrame(
            {
                "date_reference": [sel.reference_date],
                "fenetre_fin_proche_jours": [windows["fenetre_fin_proche_jours"]],
                "fenetre_terminee_recente_jours": [windows["fenetre_terminee_recente_jours"]],
            }
        ),
    }
    for name, df in tables.items():
        # plain (non-view) Arrow strings: DuckDB scans them faster
        con.register(name, df.to_arrow(compat_level=pl.CompatLevel.oldest()))
    con.execute(SQL_MACROS)
    for name in SQL_FILES:
        con.execute(sql_text(name))
    return con


def _view_columns(con: duckdb.DuckDBPyConnection, view: str) -> set[str]:
    return {row[0] for row in con.execute(f"DESCRIBE {view}").fetchall()}


def _hits_sql(rule: Rule, columns: set[str], overrides: dict[str, int]) -> str:
    def lit(s: str) -> str:
        return "'" + s.replace("'", "''") + "'"

    return f"""
        SELECT {lit(rule.agence)} AS agence, foyer, handle, quartier, {lit(rule.liste)} AS liste,
               {lit(rule.id)} AS regle, {rule.motif_sql(columns)} AS motif,
               {lit(rule.action)} AS action, {rule.priorite}::INTEGER AS priorite
        FROM {rule.vue}
        WHERE NOT coalesce(opposition, false) AND ({rule.gate_sql()})
          AND coalesce(({rule.predicate_sql(overrides)}), false)"""


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
    con: duckdb.DuckDBPyConnection, rules: list[Rule], overrides: dict[str, dict[str, int]]
) -> pl.DataFrame:
    """One row per (household, rule) met; empty frame with the right schema when none."""
    parts = [_hits_sql(r, _view_columns(con, r.vue), overrides.get(r.id, {})) for r in rules]
    if not parts:
        parts = [
            "SELECT NULL::VARCHAR agence, NULL::VARCHAR foyer, NULL::VARCHAR handle, "
            "NULL::VARCHAR quartier, NULL::VARCHAR liste, NULL::VARCHAR regle, "
            "NULL::VARCHAR motif, NULL::VARCHAR action, NULL::INTEGER priorite WHERE false"
        ]
    con.execute("CREATE OR REPLACE TEMP TABLE hits AS " + "\nUNION ALL\n".join(parts))
    return con.sql("SELECT * FROM hits ORDER BY agence, foyer, priorite, regle").pl()


def build_targets(con: duckdb.DuckDBPyConnection, warning: str | None) -> pl.DataFrame:
    """Fold the hits into one row per household and agency (contract "Targets")."""
    df = con.sql(
        """
        SELECT agence, foyer, min(handle) AS handle, min(quartier) AS quartier,
               CASE WHEN bool_or(liste = 'cible') THEN 'cible' ELSE 'a_verifier' END AS liste,
               list(regle ORDER BY priorite, regle) AS regles,
               list(motif ORDER BY priorite, regle) AS motifs,
               list(action ORDER BY priorite, regle) AS actions,
               min(priorite)::INTEGER AS priorite,
               (SELECT date_reference FROM run_params) AS date_reference
        FROM hits GROUP BY agence, foyer
        """
    ).pl()
    return df.with_columns(pl.lit(warning, dtype=pl.String).alias("avertissement"))


def _stats(
    con: duckdb.DuckDBPyConnection,
    inputs: CentralInputs,
    sel: css_params.ParameterSelection,
    rules: list[Rule],
    skipped: list[Rule],
    targets: pl.DataFrame,
    overrides: dict[str, dict[str, int]],
    warnings: list[str],
) -> dict[str, Any]:
    f = (
        con.sql(
            """SELECT count(*) AS foyers_caf,
                  count(*) FILTER (WHERE opposition) AS foyers_exclus_opposition,
                  count(*) FILTER (WHERE NOT opposition AND trouve_cpam) AS foyers_trouves_cpam,
                  count(*) FILTER (WHERE NOT opposition AND NOT trouve_cpam)
                      AS foyers_non_trouves_cpam,
                  count(*) FILTER (WHERE NOT opposition AND position_plafond_css IS NULL)
                      AS foyers_ressources_inconnues,
                  count(*) FILTER (WHERE NOT opposition AND css_active) AS foyers_css_active,
                  count(*) FILTER (WHERE NOT opposition AND css_a_verifier)
                      AS foyers_statut_css_illisible
           FROM foyers"""
        )
        .pl()
        .row(0, named=True)
    )
    a = (
        con.sql(
            """SELECT count(*) AS assures_cpam,
                      count(*) FILTER (WHERE opposition) AS assures_exclus_opposition
               FROM assures_cpam"""
        )
        .pl()
        .row(0, named=True)
    )
    per_rule = con.sql("SELECT regle, count(*) AS n FROM hits GROUP BY regle").pl()
    counts = {r.id: 0 for r in rules}
    counts.update(dict(zip(per_rule["regle"].to_list(), per_rule["n"].to_list(), strict=True)))
    by_pass = inputs.links.group_by("pass").len().sort("pass")
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
        "liens_par_passe": dict(
            zip(by_pass["pass"].to_list(), by_pass["len"].to_list(), strict=True)
        ),
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


def detect(
    caf_export: Path,
    cpam_export: Path,
    links: Path,
    out_dir: Path,
    *,
    rules: list[str] | None = None,
    strict: bool = False,
    renewal_window_days: int | None = None,
) -> DetectResult:
    """Run the rule catalogue over the linked households and write targets, aggregates, stats.

    Opposed households are never targets; a reference date without a confirmed CSS table is
    refused with `strict`, else applied with a warning repeated on every output.
    """
    window = load_catalogue().parametres["fenetre_fin_proche_jours"]
    if renewal_window_days is not None and renewal_window_days != window:
        # the CPAM computed statut_css with its window: the centre cannot move it
        raise RefusalError(
            f"fenêtre de renouvellement de {renewal_window_days} jours demandée, mais le statut "
            f"CSS est calculé par la CPAM avec {window} jours (pipeline/shared/features.yaml) : "
            "changez-la là, à la source"
        )
    out_dir = Path(out_dir)
    catalogue = select_rules(load_rules(), rules)
    with step("Lecture des fichiers pseudonymisés et des liens"):
        inputs = read_inputs(Path(caf_export), Path(cpam_export), Path(links))
    sel = css_params.select_period(inputs.reference_date, strict=strict)
    warnings = list(inputs.warnings)
    if sel.warning:
        warnings.insert(0, sel.warning)
        warn(sel.warning)
    sizes = inputs.caf.group_by("foyer").len()["len"]
    if sizes.len() and int(sizes.max()) > css_params.MAX_RANK:
        raise InputError(
            caf_export, f"foyer de plus de {css_params.MAX_RANK} personnes", column="foyer"
        )
    applicable = [r for r in catalogue if r.applies_on(sel.reference_date)]
    skipped = [r for r in catalogue if not r.applies_on(sel.reference_date)]
    overrides: dict[str, dict[str, int]] = {}
    with step("Règles de détection (DuckDB)"):
        con = connect(inputs, sel)
        hits = compute_hits(con, applicable, overrides)
        targets = build_targets(con, sel.warning)
    with step("Écriture des cibles, agrégats et statistiques"):
        targets_path = write_parquet(targets, out_dir / "targets.parquet", sort_by=TARGET_SORT)
        quartiers = con.sql("SELECT DISTINCT quartier FROM foyers").pl()["quartier"].to_list()
        aggregates_path = write_aggregates(hits, applicable, quartiers, out_dir / "aggregates.csv")
        stats = _stats(con, inputs, sel, applicable, skipped, targets, overrides, warnings)
        stats["k_anonymat"] = central_k_anonymity(caf_export, cpam_export, inputs.links)
        stats_path = write_text(
            out_dir / "detect_stats.json",
            json.dumps(stats, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
        )
    con.close()
    counts = {d["id"]: d["foyers"] for d in stats["regles_appliquees"]}
    return DetectResult(
        targets_path, aggregates_path, stats_path, sel.reference_date, counts, tuple(warnings)
    )
