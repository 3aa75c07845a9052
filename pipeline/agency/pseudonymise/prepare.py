"""Canonical token components from an ingested extract (the columns tokens.yaml names).

Both agencies are brought to the same column names and string forms here, so that a token is
computed by the same code on both sides and equal inputs give equal tokens.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipeline.agency.pseudonymise.phonetic import encode_unique, map_back
from pipeline.shared.providers import AGENCIES
from pipeline.shared.token_catalogue import DELETION_MARK


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    s = expr.cast(pl.String).str.strip_chars()
    return pl.when(s.str.len_bytes() > 0).then(s).otherwise(None)


def _two_digits(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Int32).cast(pl.String).str.zfill(2)


# A deletion-variant component is `<name>_del_<NN>` (DELETION_MARK): the prepared column `<name>`
# with its character at position NN (0-based) deleted (tokens.yaml, `variants`).


def deletion_variant(name: pl.Expr, position: int) -> pl.Expr:
    """`name` with the character at `position` deleted (SymSpell's deletion neighbourhood).

    Two spellings one edit apart (substitution, insertion, deletion, adjacent transposition)
    share a deletion at the same or a neighbouring position, or one equals the other's
    deletion. Where no distinct deletion exists (position beyond the name, or the same letter
    as the previous position, whose deletion gives the same string) the variant is a pad,
    "#NN#" + the whole name: never equal to a real deletion, and as unique as the name itself,
    so that neither the name's length nor its doubled letters show as nulls or as equal
    columns within a row. Null stays null.
    """
    n = name.str.len_chars()
    kept = (n > position) & (n > 1)
    if position > 0:
        kept = kept & (name.str.slice(position, 1) != name.str.slice(position - 1, 1))
    deleted = pl.concat_str([name.str.slice(0, position), name.str.slice(position + 1)])
    return pl.when(kept).then(deleted).otherwise(
        pl.concat_str([pl.lit(f"#{position:02d}#"), name]))


def component_expr(component: str) -> pl.Expr:
    """The expression of a token component: a prepared column, or a deletion variant of one."""
    base, mark, pos = component.rpartition(DELETION_MARK)
    if mark and pos.isdigit():
        return deletion_variant(pl.col(base).cast(pl.String), int(pos))
    return pl.col(component).cast(pl.String)


def role_column(agency: str) -> str:
    return "role" if agency == "caf" else "qualite"


def _parent_nirs(df: pl.DataFrame) -> pl.DataFrame:
    """CAF: the DEM's and the CJT's nir of each dossier, on the dossier's ENF/APC rows.

    The first DEM / CJT row with a nir in line order, per dossier: both parents gathered in one
    grouped pass and joined once."""
    if df["line"].is_sorted() and df.height:  # an ingested extract: first = smallest row
        return _parent_nirs_sorted(df)
    child = pl.col("role").is_in(["ENF", "APC"])
    parents = df.filter(pl.col("role").is_in(["DEM", "CJT"]) & pl.col("nir").is_not_null())
    if not df["line"].is_sorted():  # an ingested extract is: no sort needed for "first"
        parents = parents.sort("line")
    first = {name: pl.col("nir").filter(pl.col("role") == role).first().alias(name)
             for role, name in (("DEM", "nir_parent1"), ("CJT", "nir_parent2"))}
    table = parents.group_by("matricule").agg(*first.values())
    out = df.drop([c for c in first if c in df.columns]).join(
        table, on="matricule", how="left", maintain_order="left")
    return out.with_columns([pl.when(child).then(pl.col(c)).alias(c) for c in first])


# A parent NIR component and where its values come from: the `nir` of the row this column
# names (added by `_parent_nirs_sorted`, null where there is no parent): tokens.py then reuses
# the nir's digests instead of hashing ~300,000 parent NIRs again.
PARENT_ROWS = {"nir_parent1": ("nir", "_ligne_parent1"), "nir_parent2": ("nir", "_ligne_parent2")}


def _parent_nirs_sorted(df: pl.DataFrame) -> pl.DataFrame:
    """`_parent_nirs` of a frame in line order, in numpy: dossier numbers as categorical codes
    (only compared for equality), each dossier's first DEM / CJT row with a nir (the smallest
    row index), gathered onto the ENF/APC rows. Same columns as the grouped pass and join, for
    less CPU (no string join of 1M rows). A null dossier number matches nothing, as in the
    join."""
    codes = df["matricule"].cast(pl.String).cast(pl.Categorical).to_physical()
    known = codes.is_not_null().to_numpy()
    code = codes.fill_null(0).to_numpy().astype(np.intp)
    role, nir = df["role"], df["nir"]
    has_nir = nir.is_not_null().to_numpy() & known
    child = role.is_in(["ENF", "APC"]).fill_null(False).to_numpy() & known
    out = []
    for parent, name in (("DEM", "nir_parent1"), ("CJT", "nir_parent2")):
        rows = np.flatnonzero((role == parent).fill_null(False).to_numpy() & has_nir)
        first = np.full(codes.len() and int(code.max()) + 1, -1, dtype=np.int64)
        dossier, at = np.unique(code[rows], return_index=True)  # rows ascending: the first
        first[dossier] = rows[at]
        source = np.where(child, first[code], -1)
        index = pl.Series(PARENT_ROWS[name][1], source).set(pl.Series(source < 0), None)
        out += [nir.gather(index).alias(name), index]
    return df.drop([c for c in ("nir_parent1", "nir_parent2") if c in df.columns]).with_columns(
        out)


def _distinct_map(values: pl.Series, fn: pl.Expr) -> pl.Series:
    """`fn` (an expression of pl.col("v")) computed once per distinct value, mapped back."""
    uniq = values.drop_nulls().unique()
    mapped = pl.DataFrame({"v": uniq}).select(fn).to_series()
    return map_back(values, uniq, mapped)


DATE_KEYS = ["date_naissance", "naiss_annee", "naiss_mois", "naiss_jour"]
# The prepared columns, in the order they follow the extract's own columns.
COMPONENT_ORDER = ["nir", "nir_certifie", "nom", "nom_usage", "prenom1", "prenom1_init",
                   "prenom2", "prenoms", "dob", "annee", "mois", "jour", "dob_swap", "sexe",
                   "code_commune"]


def _date_components(df: pl.DataFrame) -> list[pl.Series]:
    """dob, annee, mois, jour and dob_swap of every row: formatted once per distinct birth
    date (~30,000 among 1M people) and joined back, rather than five string columns built
    row by row."""
    annee = pl.col("naiss_annee").cast(pl.Int32).cast(pl.String).str.zfill(4)
    mois, jour = _two_digits("naiss_mois"), _two_digits("naiss_jour")
    keys = df.select(DATE_KEYS)
    packed = _date_key(keys)
    if packed is not None:  # one integer per row: a cheaper distinct and map back
        keys = keys.with_columns(_k=packed)
    table = (keys.unique() if packed is None else keys.unique("_k", keep="any")).with_columns(
        dob=pl.col("date_naissance").dt.to_string("%Y-%m-%d"),
        annee=annee,
        mois=mois,
        jour=jour,
        dob_swap=pl.when(
            (pl.col("naiss_jour") <= 12) & (pl.col("naiss_jour") != pl.col("naiss_mois"))
        ).then(pl.concat_str([annee, jour, mois], separator="-")),
    )
    if packed is None:
        return keys.join(table, on=DATE_KEYS, how="left", maintain_order="left",
                         nulls_equal=True).drop(DATE_KEYS).get_columns()
    index = packed.replace_strict(table["_k"], pl.int_range(table.height, eager=True,
                                                            dtype=pl.UInt32))
    return [table[c].gather(index) for c in ("dob", "annee", "mois", "jour", "dob_swap")]


def _date_key(keys: pl.DataFrame) -> pl.Series | None:
    """The four birth-date keys packed in one Int64, equal exactly when all four are (a null
    is its own value), or None when a part is out of the packed range (then the caller groups
    on the four columns): day count + 2^31 + 1 on 33 bits, year + 1 on 14, month + 1 and
    day + 1 on 7 each (0 for a null)."""
    widths = {"naiss_annee": 14, "naiss_mois": 7, "naiss_jour": 7}
    bounds = keys.select([f(c).alias(f"{c}{f.__name__}") for c in widths
                          for f in (pl.min, pl.max)]).row(0)
    for i, bits in enumerate(widths.values()):
        low, high = bounds[2 * i], bounds[2 * i + 1]
        if low is not None and (low < -1 or high > 2**bits - 2):
            return None
    key = (pl.col("date_naissance").cast(pl.Int64) + 2**31 + 1).fill_null(0)
    for c, bits in widths.items():
        key = key * 2**bits + (pl.col(c).cast(pl.Int64) + 1).fill_null(0)
    return keys.select(key.alias("_k")).to_series()


def prepare_components(df: pl.DataFrame, agency: str) -> pl.DataFrame:
    """Return `df` plus the canonical component columns (all strings) of tokens.yaml."""
    if agency not in AGENCIES:
        raise ValueError(f"unknown agency {agency!r}")
    out = df.with_columns(
        *_date_components(df),
        nir=_blank_to_null(pl.col("nir")),
        nom=_blank_to_null(pl.col("nom_naissance" if agency == "caf" else "nom")),
        nom_usage=(
            _blank_to_null(pl.col("nom_usage")) if agency == "caf"
            else pl.lit(None, dtype=pl.String)
        ),
        prenom1=_blank_to_null(pl.col("prenom1")),
        prenom2=_distinct_map(df["prenoms"].cast(pl.String),
                              pl.col("v").str.extract(r"^\s*\S+\s+(\S+)", 1)),
        prenoms=_blank_to_null(pl.col("prenoms")),
        sexe=pl.col("sexe").cast(pl.Int8),
        code_commune=_blank_to_null(pl.col("code_commune")),
    ).with_columns(  # from the cleaned columns above (computed once)
        nir_certifie=pl.when(pl.col("nir_statut") == "certifie").then(pl.col("nir")),
        prenom1_init=pl.col("prenom1").str.slice(0, 1),
    )
    out = out.select(*df.columns, *[c for c in COMPONENT_ORDER if c not in df.columns])
    if agency == "caf":
        out = _parent_nirs(out)
    else:
        out = out.with_columns(nir_ouvrant_droit=_blank_to_null(pl.col("nir_ouvrant_droit")))
    return out.with_columns(
        nom_phon=encode_unique(out["nom"]),
        nom_usage_phon=encode_unique(out["nom_usage"]),
        prenom1_phon=encode_unique(out["prenom1"]),
    )
