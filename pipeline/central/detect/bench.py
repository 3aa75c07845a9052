"""Timing harness: random contract-shaped inputs of a given size through `detect`.

`python -m pipeline.central.detect.bench --households 100000` builds synthetic exports and links
with
vectorised polars (no real people, no identifiers), runs `detect` and prints the wall times.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.shared.attributes import STRUCTURE, export_age_fields, export_attributes
from pipeline.shared.css_params import select_period
from pipeline.shared.features import caf_features, cpam_features
from pipeline.shared.linkage_model import IDENTIFIER_ROLE, load_config

R = dt.date(2025, 9, 30)


def build(households: int, seed: int, folder: Path) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(seed)
    size = rng.integers(1, 6, households)
    fid = np.repeat(np.arange(households), size)
    pos = (
        pl.DataFrame({"f": fid})
        .with_columns(pl.int_range(pl.len()).over("f").alias("pos"))["pos"]
        .to_numpy()
    )
    n = len(fid)
    role = np.where(pos == 0, "DEM", np.where((pos == 1) & (rng.random(n) < 0.5), "CJT", "ENF"))
    age = np.where(np.isin(role, ["DEM", "CJT"]), rng.integers(18, 90, n), rng.integers(0, 20, n))
    couple = pl.DataFrame({"f": fid, "cjt": role == "CJT"}).group_by("f").agg(pl.col("cjt").any())
    prest = np.array([["RSA"], ["AL"], ["PPA", "AL"], [], ["AAH"], ["AF"]], dtype=object)
    p_idx = rng.integers(0, len(prest), households)[fid]
    ids = pl.DataFrame({"i": np.arange(n), "f": fid})
    caf = ids.select(
        (pl.lit("c") + pl.col("i").cast(pl.String).str.pad_start(31, "0")).alias("handle"),
        (pl.lit("f") + pl.col("f").cast(pl.String).str.pad_start(31, "0")).alias("foyer"),
    ).with_columns(
        pl.Series("opposition", rng.random(n) < 0.002),
        pl.Series("role", role),
        pl.Series("age", age).cast(pl.Int16),
        pl.Series("quartier", np.array(["QN06101M", "QN06102M", "HQ61169A", "HQ61169B"])[fid % 4]),
        pl.Series("code_commune", np.where(fid % 50 == 0, "97411", "61169")),
        pl.Series(
            "situation_familiale",
            np.where(couple.sort("f")["cjt"].to_numpy()[fid], "COUPLE", "ISOLE"),
        ),
        pl.Series("residence_alternee", (role == "ENF") & (rng.random(n) < 0.1)),
        pl.Series("ressources_12m", rng.gamma(2.0, 9000.0, households)[fid]),
        pl.Series("prestations", [list(prest[k]) for k in p_idx], dtype=pl.List(pl.String)),
        pl.lit(R).alias("date_reference"),
    )
    caf = export_age_fields(caf, group="foyer", seniority=-pl.col("age"), tiebreak="handle")
    caf = caf_features(caf, select_period(R))  # the features the CAF computes at source
    linked = rng.random(n) < 0.85
    css_state = rng.integers(0, 4, households)[fid]
    start = np.datetime64(R) - rng.integers(0, 700, n).astype("timedelta64[D]")
    cpam = (
        caf.filter(pl.Series(linked))
        .select(
            (pl.lit("p") + pl.col("handle").str.slice(1)).alias("handle"),
            (pl.lit("g") + pl.col("foyer").str.slice(1)).alias("foyer"),
            "opposition",
            pl.when(pl.col("role") == "ENF")
            .then(pl.lit("ENFANT"))
            .otherwise(pl.lit("ASSURE"))
            .alias("role"),
            "code_commune",
            "date_reference",
        )
        .with_columns(
            pl.Series(
                "css", np.array(["NON", "GRATUITE", "PARTICIPATION", "GRATUITE"])[css_state[linked]]
            ),
            pl.Series("css_debut", start[linked]).cast(pl.Date),
        )
        .with_columns(
            pl.when(pl.col("css") == "NON")
            .then(None)
            .otherwise(pl.col("css_debut"))
            .alias("css_debut"),
            pl.when(pl.col("css") == "NON")
            .then(None)
            .otherwise(pl.col("css_debut").dt.offset_by("1y"))
            .alias("css_fin"),
        )
    )
    cpam = cpam_features(cpam)
    links = cpam.select(
        (pl.lit("c") + pl.col("handle").str.slice(1)).alias("caf_handle"),
        pl.col("handle").alias("cpam_handle"),
        pl.lit(load_config().role_pass(IDENTIFIER_ROLE).name).alias("pass"),
        pl.lit(20.0).alias("match_weight"),
        pl.lit(0.999).alias("match_probability"),
    )
    # what leaves the agencies: the export's columns only (no age, resources or CSS date)
    caf, cpam = (df.select([c for c in (*STRUCTURE, *export_attributes(a, df.columns))
                            if c in df.columns]) for a, df in (("caf", caf), ("cpam", cpam)))
    paths = (folder / "caf.parquet", folder / "cpam.parquet", folder / "links.parquet")
    for df, p in zip((caf, cpam, links), paths, strict=True):
        df.write_parquet(p)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--households", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    from pipeline.central.detect import detect

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = build(args.households, args.seed, Path(tmp))
        t1 = time.perf_counter()
        res = detect(*paths, Path(tmp) / "out")
        t2 = time.perf_counter()
        persons = pl.scan_parquet(paths[0]).select(pl.len()).collect().item()
        print(
            f"households={args.households} persons={persons} build={t1 - t0:.2f}s "
            f"detect={t2 - t1:.2f}s targets={sum(res.counts.values())} counts={res.counts}"
        )
        # k-anonymity on these random (uniform, not territory-shaped) inputs, as detect measured
        k = json.loads(res.stats.read_text(encoding="utf-8"))["k_anonymat"]
        print("k-anonymat " + " ; ".join(
            f"{v}: k=1 {k[v]['part_k1']:.2%}, k<5 {k[v]['part_k_moins_5']:.2%}" for v in k))


if __name__ == "__main__":
    main()
