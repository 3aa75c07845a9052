"""Non-identifying attributes of the export: role, the linkage attributes, and the features the
rules need (pipeline/shared/features.yaml), computed here from the exact data that stays here.

Exact resources, ceilings, ages, benefits lists and CSS dates never leave: the CAF sends its
household's position relative to the CSS ceilings of the reference date (for its own R.861-2 /
R.861-3 composition), a coarse household type and benefit flags; the CPAM sends each person's CSS
status at the reference date. Below, the exact age is still computed, but only to derive the
dependants' rank and the CSS household (features input), never exported.

Birth dates never leave, and neither does the exact age: detection needs only whether a person is
a minor and the person's rank in the household in the order of art. R.861-3 CSS (allocataire,
spouse, then dependants from the oldest to the youngest), both computed here from the exact
dates. An exact age would let a central attacker align the birth-year-salted name tokens within
each birth year against public first-name statistics by year (measured: 6 to 10 % of first names
recovered); without it the tokens can only be aligned over the whole file (under 1 %). Likewise
`a_charge_css` says whether a person belongs to the CSS household of art. R.861-2 CSS (the
allocataire, the spouse, and dependants under 25), computed here from the exact age. The quartier
comes from the territory table (IRIS -> quartier); an IRIS missing from it becomes
HORS_TERRITOIRE and is counted.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.common.errors import InputError
from pipeline.common.tables import rank_in_sorted_groups
from pipeline.shared import features as feats
from pipeline.shared.css_params import dependant_age_limit
from pipeline.shared.providers import AGENCIES
from pipeline.shared.separation import FACTORS, PADS

HORS_TERRITOIRE = "HORS_TERRITOIRE"

# Export columns per agency, in the order of docs/CONTRACTS.md ("Pseudonymised export").
STRUCTURE = ["handle", "foyer", "opposition"]
# Contract 3 (data minimisation, docs/CONTRACTS.md): no plain attribute besides the features and
# the reference date. Role (beyond the CAF's `adulte` feature), sex, NIR status, commune and
# quartier stay at the agency: sex and the NIR status travel only inside person-unique tokens
# (tokens.yaml), the quartier is applied at re-identification, the contact person chosen there.
# What an opposed person's household keeps besides handle, foyer and opposition (docs/CONTRACTS.md
# "Opposition"): what the centre needs to link its members to the other agency's records and
# exclude those households too. Every row: the NIR token. Adult rows (the only ones whose link
# excludes another household: a child's CPAM group is its parent's): also the whole-value
# name + birth date tokens of the deterministic pass, for adults without a usable NIR on one
# side. No attribute, no comparison token (name parts, phonetic codes, date parts).
OPPOSITION_TOKENS = ("tok_nir",)
OPPOSITION_ADULT_TOKENS = ("tok_nom_dob", "tok_nomusage_dob")
ADULT_ROLES = ("DEM", "CJT", "ASSURE")


def export_attributes(agency: str, columns: list[str]) -> list[str]:
    """The attribute columns an export of `agency` carries, given the frame's columns."""
    return [*feats.load_catalogue().names(agency, columns), "date_reference"]


# The attribute columns each export carries when its extract has no optional column (territory
# bootstrap, conventions): the catalogue's mandatory features and the reference date.
ATTRIBUTES = {agency: export_attributes(agency, []) for agency in AGENCIES}


# Date-typed columns an export may legitimately carry (anything else dated is a leak).
ALLOWED_DATE_COLUMNS = frozenset({"date_reference"})


def age_expr(birth: str = "date_naissance", ref: str = "date_reference") -> pl.Expr:
    """Full years at the reference date (a birthday on the reference date counts)."""
    b, r = pl.col(birth), pl.col(ref)
    before = (r.dt.month() < b.dt.month()) | (
        (r.dt.month() == b.dt.month()) & (r.dt.day() < b.dt.day())
    )
    return (r.dt.year() - b.dt.year() - before.cast(pl.Int32)).cast(pl.Int16)


ROLE_ORDER = {"DEM": 0, "CJT": 1}  # then dependants (ENF, APC)


def css_member_expr(age: str = "age") -> pl.Expr:
    """In the CSS household (art. R.861-2 CSS): allocataire and spouse always, a dependant (ENF,
    APC) only under the age limit of css.yaml; an unknown age counts (never drops a member)."""
    limit = dependant_age_limit()
    return (
        pl.col("role").is_in(["DEM", "CJT"]).fill_null(False)
        | pl.col(age).is_null()
        | (pl.col(age) < limit)
    )


def household_rank(frame: pl.DataFrame, group: str = "matricule",
                   seniority: pl.Expr | None = None, tiebreak: str = "line") -> pl.Series:
    """Rank in the household as art. R.861-3 CSS orders it (1 = the allocataire), per row.

    Allocataire, spouse, then dependants from the oldest to the youngest (`seniority` sorts the
    oldest first: the birth date at the agency); between two dependants of the same seniority
    the one living there full time takes the earlier rank (it carries the full increment);
    unknown seniority comes last; `tiebreak` breaks any remaining tie (rows sharing a null
    `group` form one household, as a window over `group` would).

    One sort of the whole frame by (group, order keys), each row's rank being its distance to
    its household's first sorted row, scattered back: a window sorting within each of 300,000
    households cost ~9x more on 1M rows, for the same ranks.
    """
    seniority = pl.col("date_naissance") if seniority is None else seniority
    role_order = pl.col("role").replace_strict(ROLE_ORDER, default=2, return_dtype=pl.Int8)
    alternating = pl.col("residence_alternee").fill_null(False)
    keys = ["_g", "_role", "_seniority", "_alternating", "_tiebreak"]
    ordered = frame.select(
        pl.col(group).alias("_g"), role_order.alias("_role"), seniority.alias("_seniority"),
        alternating.alias("_alternating"), pl.col(tiebreak).alias("_tiebreak"),
    ).with_row_index("_row").sort(keys, nulls_last=True)
    return rank_in_sorted_groups(ordered, frame.height, "rang_foyer", pl.Int16)


def export_age_fields(frame: pl.DataFrame, group: str, seniority: pl.Expr, tiebreak: str,
                      age: str = "age") -> pl.DataFrame:
    """Replace an exact `age` column by what the export carries (`mineur`, `rang_foyer`)."""
    return frame.with_columns(
        mineur=pl.col(age) < 18,
        rang_foyer=household_rank(frame, group, seniority, tiebreak),
        a_charge_css=css_member_expr(age),
    ).drop(age)


def read_territory(path: Path) -> pl.DataFrame:
    """`code_iris;...;quartier;...` -> (code_iris, quartier); refuses a malformed table."""
    try:
        table = pl.read_csv(path, separator=";", infer_schema=False, encoding="utf8-lossy")
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(path, f"table du territoire illisible ({type(exc).__name__})") from exc
    for col in ("code_iris", "quartier"):
        if col not in table.columns:
            raise InputError(path, "colonne obligatoire absente", line=1, column=col)
    table = table.select(pl.col("code_iris").str.strip_chars(),
                         pl.col("quartier").str.strip_chars())
    dup = table.with_row_index("i").filter(pl.col("code_iris").is_duplicated())
    if dup.height:
        raise InputError(path, "code IRIS en double", line=int(dup["i"][1]) + 2, column="code_iris")
    return table


def add_attributes(df: pl.DataFrame, agency: str, territory: pl.DataFrame | None) -> pl.DataFrame:
    """Add role, date_reference, age and (CAF) quartier to an ingested extract.

    An NIR the ingest found invalid leaves as `absent` (docs/CONTRACTS.md): the central side
    learns nothing about the bad value, only that no NIR token is available.
    """
    out = df.with_columns(
        role=pl.col("role" if agency == "caf" else "qualite"),
        date_reference=pl.col("date_extraction"),
        sexe=pl.col("sexe").cast(pl.Int8),
        nir_statut=pl.col("nir_statut").replace("invalide", "absent"),
    ).with_columns(age=age_expr())
    out = out.with_columns(mineur=pl.col("age") < 18)
    if agency == "caf":
        out = out.with_columns(rang_foyer=household_rank(out), a_charge_css=css_member_expr())
        if territory is None:
            out = out.with_columns(quartier=pl.lit(None, dtype=pl.String))
        else:
            out = out.join(territory.rename({"quartier": "_q"}), on="code_iris", how="left",
                           maintain_order="left").with_columns(
                quartier=pl.coalesce("_q", pl.lit(HORS_TERRITOIRE))).drop("_q")
    return out


def local_place(frame: pl.DataFrame, agency: str, group: str = "foyer") -> list[pl.Series]:
    """What the handles table keeps to place each household at re-identification (contract 3:
    no geography leaves): the CAF household's quartier, as contract 2 exported it (the first
    localised member's in R.861-3 rank order), row-aligned with `frame`. The CPAM places a
    person by its own commune. `group`: the household column (the foyer handle, or any column
    in one-to-one with it). One sort by (household, rank) and a join back, not a window
    sorting each household (~3x the CPU on 1M rows)."""
    if agency != "caf" or "quartier" not in frame.columns:
        return []
    first = feats.in_rank_order(frame, group, ["quartier"]).group_by(group).agg(
        feats.first_in_order("quartier"))
    return [frame.select(group).join(first, on=group, how="left",
                                     maintain_order="left")["quartier"]]


def add_features(frame: pl.DataFrame, agency: str, group: str = "foyer") -> pl.DataFrame:
    """The features of features.yaml, computed from the exact data (after the handles: by foyer).

    `group`: the household column (the foyer handle, or any column in one-to-one with it, such
    as an integer household number: cheaper to group on). The CSS table is the one in force at
    the extract's reference date; without a confirmed one the most recent earlier table is
    applied with the loud warning (as the detection does).
    """
    if agency == "cpam":
        return feats.cpam_features(frame)
    sel = feats.selection_for(frame)
    if sel.warning:
        from pipeline.common.progress import warn

        warn(sel.warning)
    return feats.caf_features(frame, sel, group)


def minimal_opposition(export: pl.DataFrame, roles: pl.Series | None = None) -> pl.DataFrame:
    """An opposed person's household leaves as handle, foyer, opposition and its linkage tokens
    (and its masked sums' pads or factors, pipeline/shared/separation.py).

    Every row of the household is flagged and emptied (attributes, features, comparison tokens;
    children's name and date tokens): the centre can still link its members by NIR (adults also
    by name + birth date) to the other agency's records and exclude those households too, and
    learns nothing else about the household. `roles`: the rows' roles, aligned with `export`
    (kept at the agency since contract 3; default: the export's own `role` column, if any).
    """
    # The household flag is a window over every row: computed once (not once per column), and
    # not at all in the usual export where nobody is opposed (then no household is either).
    flag = export["opposition"].fill_null(False)
    if not flag.any():
        return export.with_columns(opposition=flag)
    household = export.select(pl.col("opposition").fill_null(False).any().over("foyer"))
    household = household.to_series()
    if roles is None and "role" in export.columns:
        roles = export["role"]
    adult = roles.is_in(ADULT_ROLES).fill_null(False) if roles is not None \
        else pl.repeat(False, export.height, eager=True)
    # the masked sums' pads and factors are uniform residues, no attribute: L's sums and the
    # CAF's shares must cover the same persons, opposed or not (pipeline/shared/separation.py)
    kept = (*STRUCTURE, *OPPOSITION_TOKENS, *PADS, *FACTORS)
    emptied = [c for c in export.columns if c not in kept]
    empty_all, empty_child = pl.lit(household), pl.lit(household & ~adult)
    return export.with_columns(
        [pl.when(empty_child if c in OPPOSITION_ADULT_TOKENS else empty_all).then(None)
         .otherwise(pl.col(c)).alias(c) for c in emptied]
    ).with_columns(opposition=household)
