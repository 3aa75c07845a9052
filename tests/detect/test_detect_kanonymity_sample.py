"""Export contract 6 on the committed sample, run through the whole chain as `make match` does.

What issue 11 asks, measured on the real files of the chain: the k-anonymity targets (k = 1 for
under 1 % of households, k < 5 for under 5 %) met by each view a central operator holds — the
linking operator's two exports and their join through the links, the detecting operator's
household and insured views; no feature, geography, sex, NIR status or role in the linking
operator's exports, nothing but the contract's columns in the detecting operator's files; the
CAF lists still split per quartier with the figures; linkage and rule precision/recall as
before; and the detecting operator's targets exactly those the engine finds on the same
persons in the clear (the single-operator design it replaces).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from pipeline.agency.pseudonymise.core import export_in_the_clear
from pipeline.central.detect.engine import detect
from pipeline.central.facts import K_VIEWS
from pipeline.chain import DEMO_HANDLE_SEED
from pipeline.evaluate import k_anonymity_figures, linkage_scores, rule_scores
from pipeline.shared import separation
from pipeline.shared.kanonymity import TARGET_K1, TARGET_K_LT5, export_k
from pipeline.shared.providers import PROVIDERS

ROOT = Path(__file__).resolve().parents[2]
DATASET = ROOT / "sample_data"
CONVENTION = ROOT / "conventions" / "demo-flers.yaml"
TODAY = "2026-11-22"
NOT_LEAVING = {"role", "sexe", "nir_statut", "code_commune", "quartier", "code_iris"}
# every view a central operator holds (pipeline/evaluate.py k_anonymity_figures)
CENTRAL_VIEWS = ("caf", "cpam", "vue_jointe", "vue_foyers", "vue_assures")

pytestmark = pytest.mark.skipif(not (DATASET / "raw").exists(), reason="sample_data absent")


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kanon_sample") / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--dataset", str(DATASET), "--out", str(out),
         "--convention", str(CONVENTION), "--today", TODAY],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return out


def _export(out: Path, agency: str) -> pl.DataFrame:
    return pl.read_parquet(out / "transfer" / agency / f"{agency}.pseudo.parquet")


def test_each_export_meets_the_k_targets(sample_run: Path) -> None:
    figures = k_anonymity_figures(sample_run)
    for agency in ("caf", "cpam"):
        k = export_k(_export(sample_run, agency))
        assert k == figures[agency]  # the run's report quotes the same measure
        assert k["foyers"] > 1000
        assert k["part_k1"] < TARGET_K1 and k["part_k_moins_5"] < TARGET_K_LT5, (agency, k)
        assert k["objectifs_atteints"]


def test_every_central_view_meets_the_targets(sample_run: Path) -> None:
    """The joined view missed them under one operator (5.9 % / 18.6 % on this sample); each
    operator's view meets them now, and each run's report says so."""
    figures = k_anonymity_figures(sample_run)
    for view in CENTRAL_VIEWS:
        k = figures[view]
        assert k["part_k1"] < TARGET_K1 and k["part_k_moins_5"] < TARGET_K_LT5, (view, k)
        assert k["objectifs_atteints"], view
    assert figures["vue_foyers"]["foyers"] == _export(sample_run, "caf")["foyer"].n_unique()
    for folder, views in (("central", ["vue_jointe"]),
                          (separation.DETECTION_OUT, ["vue_foyers", "vue_assures"])):
        report = json.loads((sample_run / folder / "report.json").read_text("utf-8"))
        quoted = {row["agency"] for row in report["facts"]["leakage"]}
        assert {K_VIEWS[v] for v in views} <= quoted, quoted


def test_no_feature_geography_sex_status_or_role_leaves(sample_run: Path) -> None:
    for agency in ("caf", "cpam"):
        export = _export(sample_run, agency)
        assert not set(export.columns) & NOT_LEAVING, agency
        plain = [c for c in export.columns if not c.startswith("tok_")]
        assert "tok_nir_sexe" in export.columns and "tok_nir_certifie" in export.columns
        benefits = agency == "caf"
        assert set(plain) == {"handle", "foyer", "opposition",
                              *(separation.LINKER_ATTRIBUTES if benefits else ()),
                              *separation.linker_fields(benefits)}, agency
        detection = pl.read_parquet(sample_run / "transfer" / separation.DETECTION_DIR / agency
                                    / separation.DETECTION_FILE.format(provider=agency))
        assert detection.columns == separation.detection_fields(benefits)
    targets = pl.read_parquet(sample_run / separation.DETECTION_OUT / "targets.parquet")
    assert targets["quartier"].unique().to_list() == ["NON_LOCALISE"]  # the centre cannot place


def test_caf_lists_split_per_quartier_with_figures(sample_run: Path) -> None:
    listes = sample_run / "caf" / "listes"
    territory = pl.read_csv(DATASET / "territory" / "iris_quartiers.csv", separator=";",
                            infer_schema=False)
    quartiers = set(territory["quartier"]) | {"HORS_TERRITOIRE"}
    files = sorted(p.stem.removeprefix("cible_") for p in listes.glob("cible_*.csv"))
    assert len(files) >= 5 and set(files) <= quartiers
    stats = json.loads((listes / "reidentify_stats.json").read_text("utf-8"))
    listed = pl.read_parquet(listes / "listes.parquet").filter(pl.col("liste") == "cible")
    assert set(listed["quartier"]) == set(files)
    per = dict(listed.group_by("quartier").len().iter_rows())
    shown = {q: v for q, v in stats["par_quartier"].items() if q != "Total" and isinstance(v, int)}
    assert shown and all(per[q] == v for q, v in shown.items())  # small cells hidden, not wrong
    one = pl.read_csv(listes / f"cible_{files[0]}.csv", separator=";", infer_schema=False)
    assert any("ressources" in c.lower() for c in one.columns)
    assert any("plafond" in c.lower() for c in one.columns)
    agg = listes / "agregats_quartiers.csv"
    assert agg.stat().st_mode & 0o077 == 0
    header = agg.read_text("utf-8-sig").splitlines()[0].split(";")
    assert set(files) <= set(header[2:-1]) <= quartiers


def test_detection_precision_recall_unchanged(sample_run: Path) -> None:
    """Before contract 3 (`make evaluate`, 2,000 households): person links P 1.0000 R 0.9942;
    every rule P >= 0.989."""
    truth = DATASET / "truth"
    links = linkage_scores(sample_run, truth)
    assert links["precision"] == 1.0 and links["recall"] >= 0.9942, links
    for rule, s in rule_scores(sample_run, truth).items():
        if s.get("truth"):
            assert s["precision"] >= 0.989, (rule, s)


def _in_the_clear(out: Path, agency: str, tmp: Path) -> Path:
    """The agency's export as contracts 2-5 sent it, features included: the same ingested rows,
    key, seed and opposition list as the chain's run, with no allow-list."""
    opposition = DATASET / "agencies" / agency / "opposition.csv"
    export = export_in_the_clear(
        out / agency, agency, CONVENTION, dt.date.fromisoformat(TODAY),
        seed=DEMO_HANDLE_SEED + list(PROVIDERS).index(agency),
        territory=DATASET / "territory" / "iris_quartiers.csv" if agency == "caf" else None,
        opposition=opposition if opposition.exists() else None)
    path = tmp / f"{agency}.parquet"
    export.write_parquet(path)
    return path


def test_detecting_operator_finds_what_one_operator_found_in_the_clear(
        sample_run: Path, tmp_path: Path) -> None:
    """The chain's detecting operator, from its files alone (masked sums, household file,
    insured perimeter, the CAF's parts), writes exactly the targets the engine writes from both
    exports in the clear and the same links: same households, same rules, same order."""
    clear = {a: _in_the_clear(sample_run, a, tmp_path) for a in ("caf", "cpam")}
    handles = pl.read_parquet(clear["caf"], columns=["handle"])["handle"]
    assert handles.sort().equals(_export(sample_run, "caf")["handle"].sort())  # same persons
    detect(clear["caf"], clear["cpam"], sample_run / "central" / "links.parquet",
           tmp_path / "clair")
    expected = pl.read_parquet(tmp_path / "clair" / "targets.parquet")
    got = pl.read_parquet(sample_run / separation.DETECTION_OUT / "targets.parquet")
    assert got.height > 500
    assert got.equals(expected)
    per_rule = got.explode("regles")["regles"].value_counts()
    assert per_rule.height == 8  # every rule finds someone on the sample
