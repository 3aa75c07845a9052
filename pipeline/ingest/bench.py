"""Throughput benchmark: `python -m pipeline.ingest.bench --rows 1000000`.

Synthesises a CAF-like extract in a temporary folder (invented people, rows repeated with varied
matricules, names, dates and NIRs, plus a few malformed rows), ingests it and prints rows/s.
Nothing is kept: the folder is deleted at the end.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl

from pipeline.ingest.api import ingest
from pipeline.ingest.normalise.nir import nir_key

HEADER = (
    "matricule;role;nir;nom_naissance;nom_usage;prenoms;date_naissance;sexe;telephone;adresse;"
    "code_postal;code_commune;code_iris;situation_familiale;residence_alternee;ressources_12m;"
    "prestations;date_extraction"
)
_NAMES = ["Lefèvre", "Martin", "D'Artagnan", "Dupont épouse Moreau", "Nguyen", "Le Goff",
          "Bénard-Petit", "INCONNU"]
_FIRST = ["Anne-Sophie, Marie", "Paul", "Léa", "Jean Pierre", "Zoé", "Hélène"]


def synthesise(path: Path, rows: int, seed: int = 7) -> Path:
    """Write a `rows`-line CAF-like extract with polars (vectorised, seeded)."""
    i = pl.int_range(0, rows, eager=True)
    df = pl.DataFrame({"i": i}).with_columns(
        k=(pl.col("i") * 2654435761 + seed) % 1_000_003,
    )
    bodies = [f"{s}{y:02d}{m:02d}61{c:03d}{o:03d}" for s, y, m, c, o in
              [(1 + n % 2, 40 + n % 60, 1 + n % 12, 1 + n % 998, 1 + (n * 7) % 998)
               for n in range(997)]]
    nirs = [b + f"{nir_key(b):02d}" for b in bodies] + [""] * 3  # 1000 NIRs, some empty
    role = pl.Series(["DEM", "CJT", "ENF", "ENF"])
    df = df.select(
        matricule=(pl.col("i") // 4).cast(pl.String).str.zfill(7),
        role=pl.col("i").mod(4).map_batches(lambda s: role.gather(s), return_dtype=pl.String),
        nir=pl.col("k").mod(1000).map_batches(lambda s: pl.Series(nirs).gather(s),
                                              return_dtype=pl.String),
        nom_naissance=pl.col("k").mod(len(_NAMES)).map_batches(
            lambda s: pl.Series(_NAMES).gather(s), return_dtype=pl.String),
        nom_usage=pl.lit(""),
        prenoms=pl.col("k").mod(len(_FIRST)).map_batches(
            lambda s: pl.Series(_FIRST).gather(s), return_dtype=pl.String),
        date_naissance=pl.concat_str([
            (1940 + pl.col("k") % 80).cast(pl.String),
            (1 + pl.col("k") % 12).cast(pl.String).str.zfill(2),
            (1 + pl.col("k") % 29).cast(pl.String).str.zfill(2)], separator="-"),
        sexe=(1 + pl.col("k") % 2).cast(pl.String),
        telephone=pl.lit("06 12 34 56 78"),
        adresse=pl.lit("3 allée des Tilleuls"),
        code_postal=pl.lit("61100"),
        code_commune=pl.lit("61169"),
        code_iris=pl.lit("611690101"),
        situation_familiale=pl.lit("COUPLE"),
        residence_alternee=pl.when(pl.col("i") % 4 >= 2).then(pl.lit("N")).otherwise(pl.lit("")),
        ressources_12m=pl.concat_str([(pl.col("k") % 30000).cast(pl.String), pl.lit("50")],
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
        t0 = time.perf_counter()
        result = ingest("caf", src, Path(tmp) / "out")
        dt = time.perf_counter() - t0
    print(f"{result.rows_read} lignes ({size:.0f} Mo) en {dt:.2f} s : "
          f"{result.rows_read / dt:,.0f} lignes/s ; acceptées {result.rows_accepted}, "
          f"rejetées {result.rows_rejected}, valeurs ignorées {result.values_ignored}")


if __name__ == "__main__":
    main()
