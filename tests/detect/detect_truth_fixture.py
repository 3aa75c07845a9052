"""Perfect-link central inputs built from a synthetic dataset's raw extracts and truth.

Acceptance fixture: the links are the truth (persons.csv pairs caf_line with cpam_line), so any
disagreement between `detect` and the truth columns comes from the rules (or from the noise of
the extracts), never from the linkage. The raw files are read with a minimal, lenient reader
(test code only) to keep the test fast and independent of the ingest stage; handles are derived
from line numbers and foyers from a hash, exactly as opaque as the contract requires.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import polars as pl

from pipeline.shared import css_params
from pipeline.shared.attributes import export_age_fields
from pipeline.shared.features import caf_features, cpam_features, first_by_rank

RULES = [
    "monoparent_sous_plafond_sans_css",
    "rsa_sans_css",
    "css_non_renouvelee",
    "sous_plafond_sans_css",
    "aah_isole",
    "a_verifier",
]


def _csv(path: Path, encoding: str = "utf8") -> pl.DataFrame:
    raw = path.read_bytes()
    text = raw.decode("cp1252" if encoding == "cp1252" else "utf-8-sig")
    return pl.read_csv(text.encode(), separator=";", infer_schema=False)


def _md5(expr: pl.Expr) -> pl.Expr:
    return expr.map_elements(lambda s: hashlib.md5(s.encode()).hexdigest(), return_dtype=pl.String)


def _age(birth: pl.Expr, ref: dt.date) -> pl.Expr:
    years = ref.year - birth.dt.year()
    before = (birth.dt.month() > ref.month) | (
        (birth.dt.month() == ref.month) & (birth.dt.day() > ref.day)
    )
    return (years - before.cast(pl.Int32)).cast(pl.Int16)


def build_truth_fixture(dataset: Path, out: Path) -> dict:
    """Write caf/cpam exports + perfect links under `out`; return paths and line maps."""
    meta = json.loads((dataset / "truth" / "meta.json").read_text(encoding="utf-8"))
    ref = dt.date.fromisoformat(meta["reference_date"])
    out.mkdir(parents=True, exist_ok=True)
    terr = _csv(dataset / "territory" / "iris_quartiers.csv").select("code_iris", "quartier")

    caf = _csv(dataset / "raw" / "caf_extract.csv").with_row_index("line", offset=2)
    opp_caf = _csv(dataset / "agencies" / "caf" / "opposition.csv")
    opp_nirs = opp_caf["nir"].drop_nulls().str.slice(0, 13).implode()
    opp_mats = opp_caf.filter(pl.col("nir").is_null())["matricule"].implode()
    caf = caf.join(terr, on="code_iris", how="left").with_columns(
        pl.col("date_naissance").str.to_date("%Y-%m-%d", strict=False).alias("_dob"),
        pl.col("date_extraction").str.to_date("%Y-%m-%d", strict=False).alias("date_reference"),
    )
    caf_export = caf.select(
        pl.format("c{}", pl.col("line").cast(pl.String).str.pad_start(31, "0")).alias("handle"),
        _md5(pl.col("matricule")).alias("foyer"),
        (
            pl.col("nir").str.slice(0, 13).is_in(opp_nirs).fill_null(False)
            | pl.col("matricule").is_in(opp_mats)
        ).alias("opposition"),
        "role",
        _age(pl.col("_dob"), ref).alias("age"),
        pl.col("quartier").fill_null("HORS_TERRITOIRE"),
        "code_commune",
        "situation_familiale",
        (pl.col("residence_alternee") == "O").alias("residence_alternee"),
        pl.col("ressources_12m").str.replace(",", ".").cast(pl.Float64, strict=False),
        pl.col("prestations").str.split(",").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        "date_reference",
        pl.col("line").alias("_line"),
        pl.col("matricule").alias("_matricule"),
        "_dob",
    )
    # what the agency exports instead of the age: minor flag and R.861-3 rank (from birth dates)
    caf_export = export_age_fields(caf_export, group="foyer", seniority=pl.col("_dob"),
                                   tiebreak="_line").drop("_dob")
    # the features the CAF computes at source (the central side reads nothing else)
    caf_export = caf_features(caf_export, css_params.select_period(ref))
    cpam = _csv(dataset / "raw" / "cpam_extract.csv", "cp1252").with_row_index("line", offset=2)
    opp_cpam = _csv(dataset / "agencies" / "cpam" / "opposition.csv")["nir"].str.slice(0, 13)
    d = "%d/%m/%Y"
    cpam_export = cpam.select(
        pl.format("d{}", pl.col("line").cast(pl.String).str.pad_start(31, "0")).alias("handle"),
        _md5(pl.col("nir_ouvrant_droit")).alias("foyer"),
        pl.col("nir_beneficiaire")
        .str.slice(0, 13)
        .is_in(opp_cpam.implode())
        .fill_null(False)
        .alias("opposition"),
        pl.col("qualite").alias("role"),
        "code_commune",
        "css",
        pl.col("css_debut").str.to_date(d, strict=False),
        pl.col("css_fin").str.to_date(d, strict=False),
        pl.col("date_extraction").str.to_date(d, strict=False).alias("date_reference"),
        pl.col("line").alias("_line"),
    )
    cpam_export = cpam_features(cpam_export)
    persons = _csv(dataset / "truth" / "persons.csv").filter(
        pl.col("caf_line").is_not_null() & pl.col("cpam_line").is_not_null()
    )
    links = persons.select(
        pl.format("c{}", pl.col("caf_line").str.pad_start(31, "0")).alias("caf_handle"),
        pl.format("d{}", pl.col("cpam_line").str.pad_start(31, "0")).alias("cpam_handle"),
        pl.lit("nir").alias("pass"),
        pl.lit(30.0).alias("match_weight"),
        pl.lit(1.0).alias("match_probability"),
    )
    paths = {
        "caf": out / "caf.pseudo.parquet",
        "cpam": out / "cpam.pseudo.parquet",
        "links": out / "links.parquet",
    }
    caf_export.drop("_line", "_matricule").write_parquet(paths["caf"])
    # CAF premises: handles table + ingested NIRs (owner-only), for re-identification
    work = out / "caf_work"
    work.mkdir(exist_ok=True)
    handles = caf.select(
        pl.format("c{}", pl.col("line").cast(pl.String).str.pad_start(31, "0")).alias("handle"),
        _md5(pl.col("matricule")).alias("foyer"),
        "line",
        "matricule",
        "role",
        pl.coalesce("nom_usage", "nom_naissance").alias("nom"),
        pl.col("prenoms").str.split(" ").list.first().alias("prenom"),
        "telephone",
        "adresse",
        "code_postal",
        "code_commune",
    ).join(caf_export.select(pl.col("_line").alias("line"), "opposition",
                             # the household's quartier, kept here (contract 3: never exported)
                             first_by_rank("quartier").over("foyer").alias("quartier")),
           on="line")
    handles.write_parquet(work / "handles.parquet")
    # the role picks the contact person at re-identification (contract 3: no role leaves)
    caf.select("line", pl.col("nir").str.slice(0, 13), "role").write_parquet(
        work / "ingested.parquet")
    for f in ("handles.parquet", "ingested.parquet"):
        (work / f).chmod(0o600)
    paths["caf_work"] = work
    cpam_export.drop("_line").write_parquet(paths["cpam"])
    links.write_parquet(paths["links"])
    return {
        **paths,
        "foyer_matricule": caf_export.select(
            "foyer", pl.col("_matricule").alias("matricule")
        ).unique(),
        "cpam_handle_line": cpam_export.select("handle", pl.col("_line").alias("cpam_line")),
        "reference": ref,
    }


def compare(dataset: Path, fixture: dict, targets: pl.DataFrame) -> dict[str, dict]:
    """Per rule: households flagged by detect vs truth (rule & not opposed), as matricule sets."""
    truth = _csv(dataset / "truth" / "households.csv")
    malformed = _csv(dataset / "truth" / "malformed.csv")
    persons = _csv(dataset / "truth" / "persons.csv")
    bad_caf = malformed.filter(pl.col("fichier").str.contains("caf"))["line"].implode()
    bad_cpam = malformed.filter(pl.col("fichier").str.contains("cpam"))["line"].implode()
    touched = set(
        persons.filter(pl.col("caf_line").is_in(bad_caf) | pl.col("cpam_line").is_in(bad_cpam))[
            "matricule"
        ].drop_nulls()
    )
    got = (
        targets.filter(pl.col("agence") == "caf")
        .join(fixture["foyer_matricule"], on="foyer", how="left")
        .explode("regles")
    )
    report: dict[str, dict] = {}
    for rule in RULES:
        expected = (
            set(truth.filter((pl.col(rule) == "1") & (pl.col("opposition") == "0"))["matricule"])
            - touched
        )
        flagged = set(got.filter(pl.col("regles") == rule)["matricule"]) - touched
        report[rule] = {
            "truth": len(expected),
            "detect": len(flagged),
            "missed": sorted(expected - flagged),
            "extra": sorted(flagged - expected),
        }
    rev_truth = _csv(dataset / "truth" / "cpam_reverse.csv")
    # the reverse truth ignores opposition (like every truth column): take out the people whose
    # CAF household has an opposed member, or whose CPAM group has one
    opposed_mat = truth.filter(pl.col("opposition") == "1")["matricule"].implode()
    opposed_lines = persons.filter(pl.col("matricule").is_in(opposed_mat))["cpam_line"].drop_nulls()
    cp = (
        pl.read_parquet(fixture["cpam"])
        .join(fixture["cpam_handle_line"], on="handle")
        .with_columns(pl.col("opposition").any().over("foyer").alias("_grp_opp"))
    )
    opposed_lines = set(opposed_lines) | set(
        cp.filter(pl.col("_grp_opp"))["cpam_line"].cast(pl.String)
    )
    rev_truth = set(rev_truth.filter(pl.col("css_gratuite_sans_minima") == "1")["cpam_line"])
    # and the people whose own line, or whose CAF household, was deliberately malformed
    skip = set(malformed.filter(pl.col("fichier").str.contains("cpam"))["line"]) | set(
        persons.filter(pl.col("matricule").is_in(list(touched)))["cpam_line"].drop_nulls()
    )
    rev_truth -= opposed_lines | skip
    rev_got = (
        set(
            targets.filter(pl.col("agence") == "cpam")
            .join(fixture["cpam_handle_line"], on="handle", how="left")["cpam_line"]
            .cast(pl.String)
        )
        - skip
    )
    report["css_gratuite_sans_minima"] = {
        "truth": len(rev_truth),
        "detect": len(rev_got),
        "missed": sorted(rev_truth - rev_got),
        "extra": sorted(rev_got - rev_truth),
    }
    report["_excluded_households_malformed"] = {"n": len(touched), "matricules": sorted(touched)}
    return report
