"""Throughput benchmark: `python -m pipeline.agency.ingest.bench --rows 1000000`.

Synthesises a CAF-like extract in a temporary folder (invented people, rows repeated with varied
matricules, names, dates and NIRs, plus a few malformed rows), ingests it and prints rows/s.
Nothing is kept: the folder is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import polars as pl

from pipeline.agency.ingest.api import ingest

HEADER = (
    "matricule;role;nir;nom_naissance;nom_usage;prenoms;date_naissance;sexe;telephone;adresse;"
    "code_postal;code_commune;code_iris;situation_familiale;residence_alternee;ressources_12m;"
    "prestations;date_extraction"
)
_NAMES = ["Lefèvre", "Martin", "D'Artagnan", "Dupont épouse Moreau", "Nguyen", "Le Goff",
          "Bénard-Petit", "Durand"]
_FIRST = ["Anne-Sophie, Marie", "Paul", "Léa", "Jean Pierre", "Zoé", "Hélène"]


def synthesise(path: Path, rows: int, seed: int = 7) -> Path:
    """Write a `rows`-line CAF-like extract with polars (vectorised, seeded).

    NIRs agree with the row's sex and birth date (DEM/CJT only, as at the CAF), so the benchmark
    does not drown in warnings that real files would not have.
    """
    role = pl.Series(["DEM", "CJT", "ENF", "ENF"])
    names, first = pl.Series(_NAMES), pl.Series(_FIRST)
    # Households of four (DEM, CJT, two ENF) that pass the layout's consistency rules:
    # dossier-level values per dossier, children born 20+ years after the parents.
    df = pl.DataFrame({"i": pl.int_range(0, rows, eager=True)}).with_columns(
        k=(pl.col("i") * 2654435761 + seed) % 1_000_003,
        d=((pl.col("i") // 4) * 2654435761 + seed) % 1_000_003,
    ).with_columns(
        sexe=1 + pl.col("k") % 2,
        annee=1940 + pl.col("d") % 50 + pl.when(pl.col("i") % 4 >= 2).then(
            20 + pl.col("i") % 4).otherwise(0),
        mois=1 + pl.col("k") % 12,
        jour=1 + pl.col("k") % 29,
        role=pl.col("i").mod(4).map_batches(lambda s: role.gather(s), return_dtype=pl.String),
    )
    two = lambda e: e.cast(pl.String).str.zfill(2)  # noqa: E731
    body = pl.concat_str([
        pl.col("sexe").cast(pl.String), two(pl.col("annee") % 100), two(pl.col("mois")),
        pl.lit("61169"), (1 + pl.col("k") % 998).cast(pl.String).str.zfill(3)])
    key = 97 - body.cast(pl.Int64) % 97
    df = df.select(
        matricule=(pl.col("i") // 4).cast(pl.String).str.zfill(7),
        role="role",
        nir=pl.when(pl.col("role").is_in(["DEM", "CJT"])).then(
            pl.concat_str([body, two(key)])).otherwise(pl.lit("")),
        nom_naissance=pl.col("k").mod(len(names)).map_batches(
            lambda s: names.gather(s), return_dtype=pl.String),
        nom_usage=pl.lit(""),
        prenoms=pl.col("k").mod(len(first)).map_batches(
            lambda s: first.gather(s), return_dtype=pl.String),
        date_naissance=pl.concat_str(
            [pl.col("annee").cast(pl.String), two(pl.col("mois")), two(pl.col("jour"))],
            separator="-"),
        sexe=pl.col("sexe").cast(pl.String),
        telephone=pl.concat_str([pl.lit("06"), (pl.col("k") % 100_000_000).cast(pl.String)
                                 .str.zfill(8)]),
        adresse=pl.concat_str([(1 + pl.col("k") % 200).cast(pl.String),
                               pl.lit(" allée des Tilleuls")]),
        code_postal=pl.lit("61100"),
        code_commune=pl.lit("61169"),
        code_iris=pl.lit("611690101"),
        situation_familiale=pl.lit("COUPLE"),
        residence_alternee=pl.when(pl.col("i") % 4 >= 2).then(pl.lit("N")).otherwise(pl.lit("")),
        ressources_12m=pl.concat_str([(pl.col("d") % 30000).cast(pl.String), pl.lit("50")],
                                     separator=","),
        prestations=pl.lit("AF,AL"),
        date_extraction=pl.lit("2025-06-30"),
    )
    with open(path, "w", encoding="utf-8") as f:
        f.write(HEADER + "\n")
        df.write_csv(f, separator=";", include_header=False, quote_style="never")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = synthesise(Path(tmp) / "caf.csv", args.rows)
        size = src.stat().st_size / 1e6
        t0, c0 = time.perf_counter(), time.process_time()
        result = ingest("caf", src, Path(tmp) / "out")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    load = os.getloadavg()[0]
    print(f"{result.rows_read} lignes ({size:.0f} Mo) : {wall:.2f} s réelles "
          f"({result.rows_read / wall:,.0f} lignes/s), {cpu:.2f} s CPU tous fils confondus, "
          f"charge machine {load:.1f} ; acceptées {result.rows_accepted}, rejetées "
          f"{result.rows_rejected}, en quarantaine {result.rows_quarantined}, valeurs ignorées "
          f"{result.values_ignored}, "
          f"avertissements {result.warnings_count}")


if __name__ == "__main__":
    main()
