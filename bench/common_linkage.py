"""Bench helpers shared by bench/linkage.py: the real agency chain, truth by handles, scores.

`agency_chain` runs exactly the module APIs the agencies run (ingest -> pseudonymise, with the
demo linkage key of the committed demo convention), so the linkage bench measures the real
tokens, not a stand-in.
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl

from pipeline.common.quality import precision_recall_f1
from pipeline.shared.providers import AGENCIES

ROOT = Path(__file__).resolve().parents[1]
CONVENTION = ROOT / "conventions" / "demo-flers.yaml"


def agency_chain(dataset: Path, work: Path, *, seed: int = 20261122,
                 territory: Path | None = None) -> dict[str, object]:
    """Raw extracts of `dataset`/raw -> ingest -> pseudonymise, per agency, under `work`."""
    from pipeline.agency.ingest import ingest
    from pipeline.agency.pseudonymise.core import pseudonymise
    from pipeline.trust.demo import install_demo_keys

    timings: dict[str, float] = {}
    exports: dict[str, Path] = {}
    for i, agency in enumerate(AGENCIES):
        wd = work / agency
        install_demo_keys(agency, wd / "keys")
        t0 = time.perf_counter()
        ingest(agency, dataset / "raw" / f"{agency}_extract.csv", wd)
        t1 = time.perf_counter()
        terr = territory if agency == "caf" else None
        res = pseudonymise(agency, wd, wd / "keys", CONVENTION, wd / "export", territory=terr,
                           seed=seed + i, sign=False)
        t2 = time.perf_counter()
        exports[agency] = Path(res.export_file)
        timings[f"{agency}_ingest_s"] = round(t1 - t0, 3)
        timings[f"{agency}_pseudonymise_s"] = round(t2 - t1, 3)
    return {"caf": exports["caf"], "cpam": exports["cpam"], "timings": timings}


def residue_exchange(work: Path, requests_dir: Path) -> dict[str, object]:
    """Each agency answers the centre's residue requests (`requests_dir`/residu/demande_*.csv)
    with the module API the `residu` command runs (unsigned: the bench has no transfer)."""
    from pipeline.agency.residue import encode_residue
    from pipeline.shared.bloom import RESIDUE_DIR, RESIDUE_REQUEST

    files: dict[str, Path] = {}
    timings: dict[str, float] = {}
    for agency in AGENCIES:
        t0 = time.perf_counter()
        request = requests_dir / RESIDUE_DIR / RESIDUE_REQUEST.format(provider=agency)
        files[agency] = encode_residue(agency, work / agency, work / agency / "keys", CONVENTION,
                                       request, work / agency / RESIDUE_DIR, sign=False)
        timings[f"{agency}_residu_s"] = round(time.perf_counter() - t0, 3)
    return {"files": files, "timings": timings}


def truth_by_handles(persons_csv: Path, work: Path, out: Path) -> Path:
    """truth/persons.csv (caf_line <-> cpam_line) + each agency's handles.parquet -> handle pairs.

    Rows the ingest rejected have no handle: such a pair cannot be linked and is left out of the
    truth (the ingest's rejection report counts them); `truth_dropped` in the bench says how many.
    """
    persons = pl.read_csv(persons_csv, separator=";", infer_schema_length=0)
    persons = persons.rename({c: c.lstrip("\ufeff") for c in persons.columns})
    pairs = persons.filter(pl.col("caf_line").is_not_null() & pl.col("cpam_line").is_not_null()) \
        .select(pl.col("caf_line").cast(pl.Int64), pl.col("cpam_line").cast(pl.Int64))
    caf = pl.read_parquet(work / "caf" / "handles.parquet").select(
        caf_line=pl.col("line").cast(pl.Int64), caf_handle="handle")
    cpam = pl.read_parquet(work / "cpam" / "handles.parquet").select(
        cpam_line=pl.col("line").cast(pl.Int64), cpam_handle="handle")
    truth = pairs.join(caf, on="caf_line").join(cpam, on="cpam_line")
    truth.select("caf_handle", "cpam_handle").write_parquet(out)
    return out


def scores(links: Path, truth: Path) -> dict[str, float | int]:
    """Person-level precision / recall / F1 of links.parquet against a truth of handle pairs."""
    got = pl.read_parquet(links).select("caf_handle", "cpam_handle")
    ref = pl.read_parquet(truth)
    tp = got.join(ref, on=["caf_handle", "cpam_handle"]).height
    return {"links": got.height, "truth_pairs": ref.height, "true_positives": tp,
            **precision_recall_f1(tp, got.height, ref.height, digits=5)}
