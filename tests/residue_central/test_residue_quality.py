"""Quality of the staged exchange on a small noisy synthetic territory, through the real agency
code (ingest -> pseudonymise -> stage 1 -> encode_residue -> link with the residue): the residue
stage must raise recall and keep the French precision target. Fails if the stage is removed."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipeline.shared.linkage_model import load_config
from pipeline.shared.providers import AGENCIES

ROOT = Path(__file__).resolve().parents[2]
CONVENTION = ROOT / "conventions" / "demo-flers.yaml"
SEED = 20261122


def _truth(dataset: Path, work: Path) -> pl.DataFrame:
    persons = pl.read_csv(dataset / "truth" / "persons.csv", separator=";", infer_schema=False)
    persons = persons.rename({c: c.lstrip("\ufeff") for c in persons.columns})
    pairs = persons.filter(pl.col("caf_line").is_not_null() & pl.col("cpam_line").is_not_null())
    pairs = pairs.select(pl.col("caf_line").cast(pl.Int64), pl.col("cpam_line").cast(pl.Int64))
    caf = pl.read_parquet(work / "caf" / "handles.parquet").select(
        caf_line=pl.col("line").cast(pl.Int64), caf_handle="handle")
    cpam = pl.read_parquet(work / "cpam" / "handles.parquet").select(
        cpam_line=pl.col("line").cast(pl.Int64), cpam_handle="handle")
    return pairs.join(caf, on="caf_line").join(cpam, on="cpam_line").select(
        "caf_handle", "cpam_handle")


def _scores(links: Path, truth: pl.DataFrame) -> tuple[float, float, int]:
    got = pl.read_parquet(links).select("caf_handle", "cpam_handle")
    tp = got.join(truth, on=["caf_handle", "cpam_handle"]).height
    return tp / max(got.height, 1), tp / truth.height, tp


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    from pipeline.agency.ingest.api import ingest
    from pipeline.agency.pseudonymise.core import pseudonymise
    from pipeline.agency.residue import encode_residue
    from pipeline.central.match import link
    from pipeline.central.match.residue import request_path
    from pipeline.shared.bloom import RESIDUE_DIR
    from pipeline.synth import generate
    from pipeline.trust.demo import install_demo_keys

    tmp = tmp_path_factory.mktemp("quality")
    dataset, work = tmp / "ds", tmp / "work"
    generate(600, SEED, noise=5.0, out=dataset, noise_profile="realiste")
    exports = {}
    for i, agency in enumerate(AGENCIES):
        wd = work / agency
        install_demo_keys(agency, wd / "keys")
        ingest(agency, dataset / "raw" / f"{agency}_extract.csv", wd)
        terr = dataset / "territory" / "iris_quartiers.csv"
        res = pseudonymise(agency, wd, wd / "keys", CONVENTION, wd / "export",
                           territory=terr if agency == "caf" and terr.exists() else None,
                           seed=SEED + i, sign=False)
        exports[agency] = Path(res.export_file)
    stage1 = link(exports["caf"], exports["cpam"], work / "etape1")
    residue = {a: encode_residue(a, work / a, work / a / "keys", CONVENTION,
                                 request_path(work / "etape1", a), work / a / RESIDUE_DIR,
                                 sign=False) for a in AGENCIES}
    final = link(exports["caf"], exports["cpam"], work / "central", residue=residue)
    return stage1, final, _truth(dataset, work)


def test_residue_raises_recall(staged):
    stage1, final, truth = staged
    p1, r1, tp1 = _scores(stage1.links, truth)
    p2, r2, tp2 = _scores(final.links, truth)
    name = load_config().residue_pass.name
    by_pass = final.stats["funnel"]["links_by_pass"]
    assert by_pass.get(name, 0) > 0
    assert r2 >= r1 + 0.03, (r1, r2)
    assert tp2 > tp1
    print(f"étape 1 : P {p1:.4f} R {r1:.4f} ; avec le résidu : P {p2:.4f} R {r2:.4f}")
    assert p2 >= 0.995, p2
