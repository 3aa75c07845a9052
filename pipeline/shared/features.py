"""Features computed at source: what the rules need, and nothing more (features.yaml).

The agency that holds the data turns exact resources, composition, benefits and CSS dates into
positions relative to the public, dated ceilings of css.yaml and statuses at the reference date.
The central side only ever sees the features; the figures (resources, ceilings, dates) are filled
back into the CCAS lists by the re-identifying agency, from the same computation
(`caf_household_figures`). Side-neutral: imported by pseudonymise, reidentify and the tests, never
importing either side.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from pipeline.common.errors import InputError
from pipeline.common.tables import rank_in_sorted_groups
from pipeline.shared import css_params
from pipeline.shared.providers import AGENCIES

CATALOGUE_PATH = Path(__file__).resolve().parent / "features.yaml"
DTYPES = {"String": pl.String, "Boolean": pl.Boolean}
ADULT_ROLES = ("DEM", "CJT")


@dataclass(frozen=True)
class Feature:
    name: str
    agence: str
    niveau: str
    dtype: pl.DataType
    valeurs: tuple[str, ...] | None
    optionnel: bool
    calcul: str


@dataclass(frozen=True)
class FeatureCatalogue:
    features: dict[str, Feature]
    parametres: dict[str, int]

    def names(self, agency: str, present: list[str] | None = None) -> list[str]:
        """The features `agency` exports (optional ones only when present in `present`)."""
        return [
            f.name
            for f in self.features.values()
            if f.agence == agency and (not f.optionnel or present is None or f.name in present)
        ]

    def schema(self, agency: str) -> dict[str, pl.DataType]:
        return {f.name: f.dtype for f in self.features.values() if f.agence == agency}


@cache
def load_catalogue(path: Path = CATALOGUE_PATH) -> FeatureCatalogue:
    """Read and validate features.yaml (a typo fails before any data is read)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(path, f"catalogue des variables illisible ({type(exc).__name__})") from exc
    features: dict[str, Feature] = {}
    for name, e in (data.get("features") or {}).items():
        if e.get("agence") not in AGENCIES or e.get("niveau") not in ("foyer", "personne"):
            raise InputError(path, f"variable {name} : agence ou niveau inconnu")
        if e.get("type") not in DTYPES or not str(e.get("calcul", "")).strip():
            raise InputError(path, f"variable {name} : type inconnu ou calcul absent")
        values = e.get("valeurs")
        features[name] = Feature(
            name, e["agence"], e["niveau"], DTYPES[e["type"]],
            tuple(values) if values else None, bool(e.get("optionnel", False)),
            " ".join(str(e["calcul"]).split()),
        )
    params = {k: int(v) for k, v in (data.get("parametres") or {}).items()}
    if not features:
        raise InputError(path, "section « features » absente ou vide")
    return FeatureCatalogue(features, params)


UNRANKED = 32767  # where a null rank sorts: after every ranked member


def first_by_rank(col: str, rank: str = "rang_foyer") -> pl.Expr:
    """The dossier-level value: the first non-null one in R.861-3 rank order."""
    return pl.col(col).sort_by(pl.col(rank).fill_null(UNRANKED)).drop_nulls().first()


def in_rank_order(rows: pl.DataFrame, group: str, columns: list[str],
                  rank: str = "rang_foyer") -> pl.DataFrame:
    """`group` and `columns` of `rows`, sorted by household then R.861-3 rank (ties keep the
    rows' order): a grouped `first_in_order` then gives each household's `first_by_rank` value.
    One sort for every column: sorting within each of 300,000 households once per column cost
    ~20x more on 1M rows. Use it for first values only: a float sum over reordered rows could
    differ in its last bit."""
    return rows.select(group, rank, *[c for c in columns if c not in (group, rank)]).sort(
        [pl.col(group), pl.col(rank).fill_null(UNRANKED)], maintain_order=True)


def ordinal_rank(rows: pl.DataFrame, group: str, rank: str = "rang_foyer") -> pl.Series:
    """Int32 `rank` (null: UNRANKED) ranked "ordinal" within each `group` (ties in row order),
    as `rank("ordinal").over(group)` gives it, through one stable sort of the two columns and a
    scatter back: the window cost ~5x the CPU on 1M rows (pipeline/shared/attributes.py's
    household_rank does the same)."""
    ordered = rows.select(pl.col(group).alias("_g"), pl.col(rank).fill_null(UNRANKED).alias("_k")
                          ).with_row_index("_row").sort(["_g", "_k"], maintain_order=True)
    return rank_in_sorted_groups(ordered, rows.height, "rang", pl.Int32)


def first_in_order(col: str) -> pl.Expr:
    """The first non-null value of `col` in the frame's order (see `in_rank_order`)."""
    return pl.col(col).drop_nulls().first()


def caf_household_figures(rows: pl.DataFrame, sel: css_params.ParameterSelection,
                          group: str = "foyer") -> pl.DataFrame:
    """Per CAF household (`group`): CSS household size, CSS resources and both ceilings.

    Rows carry role, rang_foyer, a_charge_css, mineur, residence_alternee, code_commune,
    ressources_12m, prestations and, when the extract has them, aide_logement_mensuelle and
    statut_occupation. The ceiling is the sum over the CSS household's members, ranked as
    art. R.861-3 ranks them, of what each rank adds to the official table (halved for a minor in
    alternating residence); the zone follows the dossier's commune (overseas cells).
    """
    data = css_params.load_parameters()
    factor = float(data.get("household_coefficients", {}).get("alternating_residence_factor", 0.5))
    overseas = list(sel.overseas_departements)
    optional = [pl.lit(None, dtype=t).alias(c) for c, t in
                (("aide_logement_mensuelle", pl.Float64), ("statut_occupation", pl.String))
                if c not in rows.columns]
    r = rows.with_columns(*optional).with_columns(
        pl.col("a_charge_css").fill_null(True).alias("_css"),
        (pl.col("role").eq("ENF") & pl.col("residence_alternee").fill_null(False)
         & pl.col("mineur").fill_null(True)).alias("_alt"),
    )
    first = first_in_order
    dossier = in_rank_order(r, group, [
        "_css", "code_commune", "ressources_12m", "prestations", "aide_logement_mensuelle",
        "statut_occupation"]).group_by(group).agg(
        n=pl.col("_css").sum().cast(pl.Int32),
        zone=pl.when(first("code_commune").str.slice(0, 3).is_in(overseas))
        .then(pl.lit("outre_mer")).otherwise(pl.lit("metropole")),
        ressources_12m=first("ressources_12m"),
        a_al=first("prestations").list.contains("AL").fill_null(False),
        aide_logement_mensuelle=first("aide_logement_mensuelle"),
        statut_occupation=first("statut_occupation"),
    )
    members = r.select(group, "rang_foyer", "_css", "_alt").filter(pl.col("_css"))
    ranked = (
        members.with_columns(rang=ordinal_rank(members, group, "rang_foyer"))
        .join(dossier.select(group, "zone"), on=group, how="left")
        .join(css_params.increments_table(sel), on=["zone", "rang"], how="left")
        .with_columns(_w=pl.when(pl.col("_alt")).then(pl.lit(factor)).otherwise(pl.lit(1.0)))
        .group_by(group)
        .agg(plafond_gratuite=(pl.col("inc_gratuite") * pl.col("_w")).sum(),
             plafond_participation=(pl.col("inc_participation") * pl.col("_w")).sum())
    )
    forfait = css_params.forfait_table(sel).rename({"taille": "n"})
    annual_aid = 12 * pl.col("aide_logement_mensuelle")
    return (
        dossier.join(forfait, on="n", how="left")
        .with_columns(
            forfait_logement=pl.when(pl.col("a_al"))
            .then(pl.min_horizontal("forfait_annuel",
                                    annual_aid.fill_null(pl.col("forfait_annuel"))))
            .when(pl.col("statut_occupation").is_in(["PROPRIETAIRE", "HEBERGE_GRATUIT"]))
            .then(pl.col("forfait_annuel"))
            .otherwise(pl.lit(0.0))
        )
        .with_columns(ressources_css=pl.col("ressources_12m") + pl.col("forfait_logement"))
        .join(ranked, on=group, how="left")
        .select(group, "n", "ressources_12m", "forfait_logement", "ressources_css",
                "plafond_gratuite", "plafond_participation")
    )


def caf_features(rows: pl.DataFrame, sel: css_params.ParameterSelection,
                 group: str = "foyer") -> pl.DataFrame:
    """`rows` with the CAF features of features.yaml added (household level, on every row)."""
    figures = caf_household_figures(rows, sel, group)
    position = (
        pl.when(pl.col("ressources_css").is_null() | pl.col("plafond_gratuite").is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(pl.col("ressources_css") < pl.col("plafond_gratuite"))
        .then(pl.lit("sous_plafond_gratuite"))
        .when(pl.col("ressources_css") <= pl.col("plafond_participation"))
        .then(pl.lit("sous_plafond_participation"))
        .otherwise(pl.lit("au_dessus"))
    )
    in_css = pl.col("a_charge_css").fill_null(True)
    aah = ["aah_taux_plein"] if "aah_taux_plein" in rows.columns else []
    household = in_rank_order(rows, group, [
        "situation_familiale", "role", "a_charge_css", "prestations", *aah]).group_by(group).agg(
        _n=pl.len(),
        _mono=(first_in_order("situation_familiale") == "ISOLE")
        & ((pl.col("role") == "ENF") & in_css).any(),
        _prest=first_in_order("prestations"),
        **{c: first_in_order(c) for c in aah},
    ).with_columns(
        a_rsa=_has_in("_prest", ["RSA", "RSAM"]),
        a_aah=_has_in("_prest", ["AAH"]),
        a_ppa=_has_in("_prest", ["PPA"]),
    ).drop("_prest").join(
        figures.select(group, position_plafond_css=position), on=group, how="left"
    ).with_columns(
        # only where a rule reads it (features.yaml): a lone parent under the free ceiling
        type_foyer=pl.when(pl.col("_n") == 1).then(pl.lit("personne_seule"))
        .when(pl.col("_mono").fill_null(False)
              & (pl.col("position_plafond_css") == "sous_plafond_gratuite"))
        .then(pl.lit("monoparent")).otherwise(pl.lit("autre")),
    ).with_columns(a_aah=_aah_where_read()).drop("_mono", "_n")
    cat = load_catalogue()
    wanted = [c for c in cat.names("caf", household.columns) if c in household.columns]
    return rows.drop([c for c in wanted if c in rows.columns]).join(
        household.select(group, *wanted), on=group, how="left", maintain_order="left"
    ).with_columns(adulte=pl.col("role").is_in(ADULT_ROLES).fill_null(False))


def _aah_where_read() -> pl.Expr:
    """a_aah where a rule can read it, false elsewhere (features.yaml): a person living alone
    without PPA (aah_isole), or a household neither under the contribution ceiling nor on RSA
    (statut_css_a_verifier). tests/detect/test_detect_minimisation.py proves on every
    combination that no rule outcome changes."""
    alone = (pl.col("type_foyer") == "personne_seule") & ~pl.col("a_ppa").fill_null(False)
    under = pl.col("position_plafond_css").is_in(
        ["sous_plafond_gratuite", "sous_plafond_participation"]).fill_null(False)
    read = alone | (~under & ~pl.col("a_rsa").fill_null(False))
    return pl.when(read).then(pl.col("a_aah")).otherwise(pl.lit(False))


def _has_in(col: str, benefits: list[str]) -> pl.Expr:
    """Benefit flag; null when the dossier's benefit list is unknown."""
    return pl.any_horizontal([pl.col(col).list.contains(b) for b in benefits])


def cpam_status_expr(reference: str = "date_reference") -> pl.Expr:
    """`statut_css` of features.yaml at the reference date, from css / css_debut / css_fin."""
    params = load_catalogue().parametres
    soon = params["fenetre_fin_proche_jours"]
    recent = params["fenetre_terminee_recente_jours"]
    r = pl.col(reference)
    readable = pl.col("css").is_in(["GRATUITE", "PARTICIPATION"])
    active = readable & (pl.col("css_debut") <= r) & (r <= pl.col("css_fin"))
    return (
        pl.when(~pl.col("css").is_in(["NON", "GRATUITE", "PARTICIPATION"]).fill_null(False))
        .then(pl.lit("a_verifier"))
        .when(active & (pl.col("css_fin") <= r + pl.duration(days=soon)))
        .then(pl.lit("fin_proche"))
        .when(active).then(pl.lit("en_cours"))
        .when(readable & (pl.col("css_fin") < r)
              & (pl.col("css_fin") >= r - pl.duration(days=recent)))
        .then(pl.lit("terminee_recente"))
        .otherwise(pl.lit("aucune"))
    )


def cpam_features(rows: pl.DataFrame) -> pl.DataFrame:
    """`rows` with the CPAM features of features.yaml added (person level)."""
    r = pl.col("date_reference")
    return rows.with_columns(
        statut_css=cpam_status_expr(),
        css_gratuite_en_cours=(pl.col("role") == "ASSURE") & (pl.col("css") == "GRATUITE")
        & (pl.col("css_debut") <= r) & (r <= pl.col("css_fin")),
    ).with_columns(pl.col("css_gratuite_en_cours").fill_null(False))


def selection_for(rows: pl.DataFrame, *, reference: dt.date | None = None,
                  strict: bool = False) -> css_params.ParameterSelection:
    """The CSS table of the rows' reference date (the one date of the extract)."""
    if reference is None:
        dates = rows["date_reference"].drop_nulls().unique()
        if dates.len() == 0:
            raise InputError("date_reference", "aucune date de référence dans l'extrait")
        reference = dates.max()
    return css_params.select_period(reference, strict=strict)


def describe_catalogue() -> dict[str, Any]:
    """JSON-friendly catalogue (reports, convention tooling)."""
    cat = load_catalogue()
    return {n: {"agence": f.agence, "niveau": f.niveau, "calcul": f.calcul}
            for n, f in cat.features.items()}
