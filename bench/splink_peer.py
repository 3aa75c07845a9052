"""The plaintext peer of the linkage bench: Splink 5 (DuckDB) on the same fields as our tokens.

Splink reads the INGESTED plaintext of both agencies (ingested.parquet, after the same
normalisation as our chain: upper case, accents, dates parsed), keyed by the same handles, so it
is scored against exactly the same truth. Fields: NIR, parent NIR (CAF DEM / CJT vs CPAM ouvrant
droit, children only), birth name and CAF usage name, first given name, birth date, sex, commune.
A field empty on either side for every row is left out. Decision: match probability >= 0.5, then
greedy one-to-one by descending weight (the same rule as ours).
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl

FIELDS = ["nir", "nir_p1", "nir_p2", "nom", "nom_usage", "prenom1", "dob", "sexe", "commune"]


def _caf_plain(work: Path) -> pl.DataFrame:
    df = pl.read_parquet(work / "caf" / "ingested.parquet")
    parents = df.filter(pl.col("role").is_in(["DEM", "CJT"]) & pl.col("nir").is_not_null()) \
        .group_by("matricule").agg(
            nir_p1=pl.col("nir").filter(pl.col("role") == "DEM").first(),
            nir_p2=pl.col("nir").filter(pl.col("role") == "CJT").first())
    child = pl.col("role").is_in(["ENF", "APC"])
    return df.join(parents, on="matricule", how="left").select(
        "line", "nir", pl.when(child).then("nir_p1").alias("nir_p1"),
        pl.when(child).then("nir_p2").alias("nir_p2"), nom="nom_naissance",
        nom_usage="nom_usage", prenom1="prenom1", dob=pl.col("date_naissance").cast(pl.String),
        sexe=pl.col("sexe").cast(pl.String), commune="code_commune")


def _cpam_plain(work: Path) -> pl.DataFrame:
    df = pl.read_parquet(work / "cpam" / "ingested.parquet")
    return df.select(
        "line", "nir",
        nir_p1=pl.when(pl.col("qualite") == "ENFANT").then("nir_ouvrant_droit"),
        nir_p2=pl.lit(None, pl.String), nom="nom", nom_usage=pl.lit(None, pl.String),
        prenom1="prenom1", dob=pl.col("date_naissance").cast(pl.String),
        sexe=pl.col("sexe").cast(pl.String), commune="code_commune")


def plaintext(work: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Both agencies' ingested plaintext, one row per handle, columns `unique_id` + FIELDS."""
    out = []
    for agency, fn in (("caf", _caf_plain), ("cpam", _cpam_plain)):
        h = pl.read_parquet(work / agency / "handles.parquet").select("line", "handle")
        out.append(fn(work).join(h, on="line").select(pl.col("handle").alias("unique_id"),
                                                      *FIELDS))
    return out[0], out[1]


def _present(a: pl.DataFrame, b: pl.DataFrame, col: str) -> bool:
    return a[col].null_count() < a.height and b[col].null_count() < b.height


def _settings(a: pl.DataFrame, b: pl.DataFrame) -> object:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    comps, rules = [], []
    if _present(a, b, "nir"):
        comps.append(cl.ExactMatch("nir"))
        rules.append(block_on("nir"))
    if _present(a, b, "nir_p1"):
        comps.append(cl.CustomComparison(output_column_name="nir_parent", comparison_levels=[
            cll.And(cll.NullLevel("nir_p1"), cll.NullLevel("nir_p2")),
            cll.CustomLevel("nir_p1_l = nir_p1_r OR nir_p2_l = nir_p1_r",
                            "NIR d'un parent identique"),
            cll.ElseLevel()]))
        rules += ["l.nir_p1 = r.nir_p1", "l.nir_p2 = r.nir_p1"]
    usage = a["nom_usage"].null_count() < a.height  # CAF usage name vs CPAM name
    comps.append(cl.CustomComparison(output_column_name="nom", comparison_levels=[
        cll.NullLevel("nom"), cll.ExactMatchLevel("nom"),
        *([cll.CustomLevel("nom_usage_l = nom_r", "nom d'usage = nom")] if usage else []),
        cll.JaroWinklerLevel("nom", 0.92), cll.JaroWinklerLevel("nom", 0.8), cll.ElseLevel()]))
    comps.append(cl.NameComparison("prenom1"))
    comps.append(cl.DateOfBirthComparison("dob", input_is_string=True,
                                          datetime_format="%Y-%m-%d"))
    for col in ("sexe", "commune"):
        if _present(a, b, col):
            comps.append(cl.ExactMatch(col))
    rules += [block_on("dob"), block_on("nom"), block_on("prenom1", "substr(dob, 1, 4)")]
    if usage:
        rules.append("l.nom_usage = r.nom")
    if _present(a, b, "commune"):
        rules.append(block_on("prenom1", "commune"))
    return SettingsCreator(link_type="link_only", unique_id_column_name="unique_id",
                           comparisons=comps, blocking_rules_to_generate_predictions=rules,
                           retain_intermediate_calculation_columns=False)


def one_to_one(pairs: pl.DataFrame) -> pl.DataFrame:
    """Greedy one-to-one by descending weight (bench code: a few thousand rows)."""
    pairs = pairs.sort(["match_weight", "caf_handle", "cpam_handle"],
                       descending=[True, False, False])
    used_l: set[str] = set()
    used_r: set[str] = set()
    keep = []
    for left, right in pairs.select("caf_handle", "cpam_handle").iter_rows():
        if left not in used_l and right not in used_r:
            used_l.add(left)
            used_r.add(right)
            keep.append((left, right))
    return pl.DataFrame(keep, schema=["caf_handle", "cpam_handle"], orient="row")


def run(work: Path, seed: int) -> tuple[pl.DataFrame, dict[str, object]]:
    """Splink on the plaintext under `work`; returns its one-to-one links and facts."""
    import logging

    import splink
    from splink import DuckDBAPI, Linker, block_on

    logging.getLogger("splink").setLevel(logging.ERROR)  # training chatter, not results
    a, b = plaintext(work)
    t0 = time.perf_counter()
    db = DuckDBAPI()
    linker = Linker([db.register(a.to_pandas(), dataset_display_name="caf"),
                     db.register(b.to_pandas(), dataset_display_name="cpam")],
                    _settings(a, b), log_level=None)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("nom", "prenom1", "dob")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=seed)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("nom"))
    pred = pl.from_pandas(linker.inference.predict(threshold_match_probability=0.5)
                          .as_pandas_dataframe()[["source_dataset_l", "unique_id_l",
                                                  "unique_id_r", "match_weight"]])
    # link_only: l is always the first dataset in name order ("caf" < "cpam")
    assert pred.height == 0 or set(pred["source_dataset_l"].unique()) == {"caf"}
    pred = pred.rename({"unique_id_l": "caf_handle", "unique_id_r": "cpam_handle"})
    links = one_to_one(pred)
    return links, {"seconds": round(time.perf_counter() - t0, 2),
                   "pairs_over_0_5": pred.height, "version": splink.__version__,
                   "fields": [c for c in FIELDS if _present(a, b, c)
                              or (c == "nom_usage" and a[c].null_count() < a.height)]}
