"""Re-identification at the agency: its own handles -> per-quartier lists for the CCAS.

Runs on the agency's premises with its handles table. It refuses (before writing anything) a
target handle it did not issue, keeps only its own agency's targets, and holds back, as defence
in depth, households with an opposed member and households contacted within `hold_months`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.agency.reidentify import agency_data, places
from pipeline.agency.reidentify.fieldwork import household_facts, territory_names
from pipeline.agency.reidentify.lists import ListHeader, css_table_text, csv_bytes, to_display
from pipeline.agency.reidentify.sheets import xlsx_bytes
from pipeline.common.errors import InputError, PipelineError, RefusalError
from pipeline.common.files import private_dir, write_bytes
from pipeline.common.progress import step, warn
from pipeline.common.tables import read_parquet, write_parquet
from pipeline.shared.agency_stats import write_agency_stats
from pipeline.shared.providers import PROVIDERS, is_benefits, modele

TARGET_COLUMNS = (
    "agence",
    "foyer",
    "handle",
    "quartier",
    "liste",
    "regles",
    "motifs",
    "actions",
    "priorite",
    "date_reference",
)
LIST_PATTERN = re.compile(r"^(cible_.+|a_verifier)\.(xlsx|csv)$")
# Typed columns a list shows when the agency's own data carries them (ingested table; for the
# CAF, the CSS resources and ceilings computed here: the centre never had the figures).
FACT_COLUMNS = ("ressources_12m", "css_debut", "css_fin")
FIGURE_COLUMNS = ("ressources_css", "plafond_gratuite", "plafond_participation")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


@dataclass(frozen=True)
class ReidentifyResult:
    """Files written and the counts (held back by reason, listed per quartier)."""

    out_dir: Path
    files: tuple[Path, ...]
    stats: dict[str, Any]


def _read_targets(path: Path) -> pl.DataFrame:
    df = read_parquet(path, "liste de cibles", required=TARGET_COLUMNS)
    if "avertissement" not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.String).alias("avertissement"))
    return df


def _check_issued(targets: pl.DataFrame, handles: pl.DataFrame, path: Path) -> None:
    """Every handle (and its foyer) must be one this agency issued; else refuse outright."""
    known = targets.join(
        handles.select("handle", pl.col("foyer").alias("_foyer_local")), on="handle", how="left"
    )
    unknown = known.with_row_index("_r").filter(pl.col("_foyer_local").is_null())
    if unknown.height:
        raise RefusalError(
            f"{path} : {unknown.height} handle(s) non émis par cet organisme (première ligne "
            f"{int(unknown['_r'][0]) + 1}) ; liste refusée, rien n'a été écrit"
        )
    mismatch = known.with_row_index("_r").filter(pl.col("_foyer_local") != pl.col("foyer"))
    if mismatch.height:
        raise RefusalError(
            f"{path} : {mismatch.height} cible(s) dont le foyer ne correspond pas au handle "
            f"(première ligne {int(mismatch['_r'][0]) + 1}) ; liste refusée, rien n'a été écrit"
        )


def _safe_name(quartier: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", quartier) or "SANS_QUARTIER"


def _css_description(reference: dt.date | None) -> tuple[str, str | None]:
    """The CSS table the central run applied for this reference date (same css.yaml)."""
    from pipeline.common.errors import RefusalError as _Refusal
    from pipeline.shared import css_params

    if reference is None:
        return "barème CSS : date de référence inconnue", None
    try:
        sel = css_params.select_period(reference)
    except _Refusal as exc:
        return "barème CSS : aucun", str(exc)
    return css_table_text(css_params.describe(sel)), sel.warning


def _rule_legend(agency: str) -> tuple[dict[str, str], list[dict]]:
    """Rule titles (all rules) and this agency's rules for the legend (with `limites` if any)."""
    from pipeline.shared.rules import load_rules

    rules = load_rules()
    legend = [
        {
            "titre": r.titre,
            "motif": " ".join(_PLACEHOLDER.sub("…", r.motif).split()),
            "action": r.action,
            "source": r.source,
            "limites": [str(x) for x in (getattr(r, "limites", None) or ())],
        }
        for r in sorted(rules, key=lambda r: (r.priorite, r.id))
        if r.agence == modele(agency)  # rules name a data contract (an MSA list: the CPAM's)
    ]
    return {r.id: r.titre for r in rules}, legend


def reidentify(
    agency: str,
    targets: Path,
    workdir: Path,
    out_dir: Path,
    *,
    convention: Path | None = None,
    opposition: Path | None = None,
    contacts: Path | None = None,
    hold_months: int = 6,
    territory: Path | None = None,
    run_info: dict | None = None,
) -> ReidentifyResult:
    """Resolve this agency's targets into per-quartier XLSX + CSV lists and an a_verifier list.

    run_info: {"run_date": date or ISO str (header and XLSX timestamps; default today),
    "convention_id": str (when no convention file is given)}.
    """
    if agency not in PROVIDERS:
        raise PipelineError(f"organisme inconnu : « {agency} » ({', '.join(PROVIDERS)})")
    if hold_months < 0:
        raise InputError("--hold-months", "durée de mise en attente négative")
    names = territory_names(territory)
    if agency != "caf":  # the CPAM's lists are per commune (places.py): show its name
        names = ({**names[0], **names[1]}, names[1])
    run_info = dict(run_info or {})
    run_date = run_info.get("run_date") or dt.date.today()
    if isinstance(run_date, str):
        run_date = dt.date.fromisoformat(run_date)
    convention_id = str(run_info.get("convention_id", "non précisée"))
    contact_fields: list[str] | None = None
    if convention is not None:
        from pipeline.trust.convention import load_verified_convention

        conv = load_verified_convention(convention, run_date)
        convention_id = conv.id
        contact_fields = conv.contact_fields(agency)

    with step("Lecture des cibles et de la table des handles"):
        all_targets = _read_targets(Path(targets))
        handles = agency_data.read_handles(Path(workdir), agency)
        mine = all_targets.filter(pl.col("agence") == agency)
        _check_issued(mine, handles, Path(targets))

    refs = mine["date_reference"].drop_nulls().unique()
    reference = refs.max() if refs.len() else None
    if refs.len() > 1:
        raise InputError(targets, "plusieurs dates de référence", column="date_reference")

    # Households to hold back (defence in depth): opposed members, then recent contacts.
    opposed_foyers = handles.filter(pl.col("opposition"))["foyer"].unique()
    counts_opp_list = 0
    if opposition is not None:
        lines = agency_data.opposed_lines(Path(opposition), agency, Path(workdir), handles)
        from_list = handles.filter(pl.col("line").is_in(lines.implode()))["foyer"].unique()
        counts_opp_list = int(
            mine.filter(
                pl.col("foyer").is_in(from_list.implode())
                & ~pl.col("foyer").is_in(opposed_foyers.implode())
            ).height
        )
        opposed_foyers = pl.concat([opposed_foyers, from_list]).unique()
    contacted_foyers = pl.Series("foyer", [], dtype=pl.String)
    contact_rows = 0
    if contacts is not None:
        if reference is None:
            raise InputError(
                targets,
                "date de référence absente : historique de contacts inapplicable",
                column="date_reference",
            )
        lines, contact_rows = agency_data.recently_contacted_lines(
            Path(contacts), Path(workdir), handles, reference, hold_months
        )
        contacted_foyers = handles.filter(pl.col("line").is_in(lines.implode()))["foyer"].unique()

    is_opp = pl.col("foyer").is_in(opposed_foyers.implode())
    is_contacted = pl.col("foyer").is_in(contacted_foyers.implode()) & ~is_opp
    held = {
        "opposition_table_handles": int(
            mine.filter(
                pl.col("foyer").is_in(handles.filter(pl.col("opposition"))["foyer"].implode())
            ).height
        ),
        "opposition_liste": counts_opp_list,
        "contact_recent": int(mine.filter(is_contacted).height),
    }
    # contract 3: the quartier (CPAM: commune) and the CAF contact person come from here
    located = places.localise(mine.filter(~is_opp), agency, Path(workdir), handles)
    kept = located.filter(~is_contacted)

    available = [c for c in handles.columns if c not in ("handle", "foyer", "line", "opposition")]
    fields = available if contact_fields is None else [c for c in contact_fields if c in available]
    contact = handles.select("handle", "line", *fields)
    ingested = agency_data.read_ingested(Path(workdir))
    facts = household_facts(handles, ingested, reference or run_date)
    typed = [c for c in FACT_COLUMNS if c in ingested.columns]
    listed = kept.join(contact, on="handle", how="left").join(facts, on="line", how="left")
    if is_benefits(agency) and "ressources_12m" in ingested.columns:
        figures = agency_data.ceiling_figures(Path(workdir), handles, reference or run_date)
        if figures is not None:
            listed = listed.join(figures, on="foyer", how="left")
            typed += list(FIGURE_COLUMNS)
    sort_cols = ["priorite", *[c for c in ("nom", "prenom") if c in fields], "foyer"]
    listed = listed.sort(sort_cols, nulls_last=True)

    table_text, css_warning = _css_description(reference)
    warning = next(iter(listed["avertissement"].drop_nulls().unique().sort().to_list()), None)
    warning = warning or css_warning
    if warning:
        warn(warning)
        listed = listed.with_columns(pl.lit(warning).alias("avertissement"))
    titles, legend = _rule_legend(agency)
    role_col = next((c for c in ("role", "qualite") if c in handles.columns), None)
    roles = sorted(handles[role_col].drop_nulls().unique().to_list()) if role_col else []
    outputs: dict[str, bytes] = {}
    per_quartier: dict[str, int] = {}
    agency_label = agency.upper()
    for liste, prefix in (("cible", "cible_"), ("a_verifier", "a_verifier")):
        part = listed.filter(pl.col("liste") == liste)
        groups = (
            [(q, part.filter(pl.col("quartier") == q)) for q in sorted(part["quartier"].unique())]
            if liste == "cible"
            # the a_verifier list is a CAF list (households not found at the CPAM)
            else [("", part)]
            if part.height or is_benefits(agency)
            else []
        )
        for quartier, df in groups:
            name = f"{prefix}{_safe_name(quartier)}" if liste == "cible" else prefix
            title = (
                f"{agency_label} — personnes à contacter — quartier {quartier}"
                if liste == "cible"
                else f"{agency_label} — foyers à vérifier (non retrouvés à la CPAM, autre régime "
                "possible ; pas un non-recours établi)"
            )
            header = ListHeader(title, run_date, convention_id, reference, table_text, warning)
            outputs[f"{name}.xlsx"] = xlsx_bytes(
                to_display(df, fields, titles, names, typed=typed, joiner="\n"),
                header,
                roles=roles,
                rules=legend,
            )
            outputs[f"{name}.csv"] = csv_bytes(
                to_display(df, fields, titles, names, typed=typed, joiner=" | ")
            )
            if liste == "cible":
                per_quartier[quartier] = df.height

    stats = {
        "organisme": agency,
        "date_edition": run_date.isoformat(),
        "convention": convention_id,
        "date_reference": reference.isoformat() if reference else None,
        "cibles_lues": all_targets.height,
        "cibles_autre_organisme": all_targets.height - mine.height,
        "cibles_organisme": mine.height,
        "retenues": held,
        "delai_contact_mois": hold_months,
        "lignes_historique_contacts": contact_rows,
        "listees": {
            "cible": int((kept["liste"] == "cible").sum()),
            "a_verifier": int((kept["liste"] == "a_verifier").sum()),
        },
        "par_quartier": per_quartier,
        "champs_contact": fields,
        "avertissement": warning,
    }

    with step("Écriture des listes"):
        out = private_dir(out_dir)
        for old in out.iterdir():
            if LIST_PATTERN.match(old.name) and old.name not in outputs:
                old.unlink()
        written = [
            write_bytes(out / name, data, private=True) for name, data in sorted(outputs.items())
        ]
        # what the feedback step needs: reference, quartier, rules (no contact field)
        written.append(
            write_parquet(
                kept.select("foyer", "handle", "quartier", "liste", "regles", "priorite"),
                out / "listes.parquet",
                sort_by=["liste", "quartier", "foyer"],
                private=True,
            )
        )
        written.append(write_agency_stats(out / "reidentify_stats.json", stats))
        written.append(places.write_local_aggregates(kept, agency, out))
    return ReidentifyResult(out, tuple(written), stats)
