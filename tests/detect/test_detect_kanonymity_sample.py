"""Export contract 3 on the committed sample, run through the whole chain as `make match` does.

What issue 11 asks of the minimised exports, measured on the real files: the k-anonymity targets
(k = 1 for under 1 % of households, k < 5 for under 5 %) met on each export; the joined central
view's honest figures (it misses the targets on 2,000 households: docs/CONTRACTS.md); no
geography, sex, NIR status or role column leaving; the CAF lists still split per quartier with
the figures; linkage and rule precision/recall as before the minimisation.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from pipeline.agency.pseudonymise.core import load_materials
from pipeline.central.detect.engine import connect
from pipeline.central.detect.inputs import read_inputs
from pipeline.evaluate import k_anonymity_figures, linkage_scores, rule_scores
from pipeline.shared import css_params
from pipeline.shared.kanonymity import TARGET_K1, TARGET_K_LT5, export_k, joined_k

ROOT = Path(__file__).resolve().parents[2]
DATASET = ROOT / "sample_data"
CONVENTION = ROOT / "conventions" / "demo-flers.yaml"
# The joined view on the sample, measured with contract 3 (docs/CONTRACTS.md): a ceiling that
# fails if the view regresses, not a target.
JOINED_K1_MAX, JOINED_K_LT5_MAX = 0.065, 0.19
NOT_LEAVING = {"role", "sexe", "nir_statut", "code_commune", "quartier", "code_iris"}

pytestmark = pytest.mark.skipif(not (DATASET / "raw").exists(), reason="sample_data absent")


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kanon_sample") / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--dataset", str(DATASET), "--out", str(out),
         "--convention", str(CONVENTION), "--today", "2026-11-22"],
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


def test_joined_view_honest_figures(sample_run: Path) -> None:
    """Missed on the sample (6.0 % / 18.7 %): the rules need the CAF features and the CSS
    status together; held to what contract 3 measured so that a regression fails."""
    joined = k_anonymity_figures(sample_run)["vue_jointe"]
    assert joined["part_k1"] <= JOINED_K1_MAX and joined["part_k_moins_5"] <= JOINED_K_LT5_MAX
    assert not joined["objectifs_atteints"]  # say so in the report: no silent pass


def test_no_geography_sex_status_or_role_leaves(sample_run: Path) -> None:
    for agency in ("caf", "cpam"):
        export = _export(sample_run, agency)
        assert not set(export.columns) & NOT_LEAVING, agency
        plain = [c for c in export.columns if not c.startswith("tok_")]
        assert "tok_nir_sexe" in export.columns and "tok_nir_certifie" in export.columns
        assert set(plain) <= {"handle", "foyer", "opposition", "date_reference", "type_foyer",
                              "adulte", "position_plafond_css", "a_rsa", "a_aah", "a_ppa",
                              "aah_taux_plein", "statut_css", "css_gratuite_en_cours"}
    targets = pl.read_parquet(sample_run / "central" / "targets.parquet")
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


def test_separated_protocol_meets_the_targets_and_finds_the_same_households(
        sample_run: Path) -> None:
    """docs/SEPARATION.md, not yet run by the chain: the masked household sums run on this
    run's exports and links with the agencies' own key. Each central party's view meets the
    targets the joined view misses, and every rule finds, from the detecting operator's views
    alone, exactly the households (insured persons) the engine finds on the same tables
    derived in the clear (its interim input)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import kanon_separation as sep

    frames = {a: _export(sample_run, a) for a in ("caf", "cpam")}
    links = pl.read_parquet(sample_run / "central" / "links.parquet")
    secrets = {a: load_materials(sample_run / a / "keys", CONVENTION, a,
                                 dt.date(2026, 11, 22)).secret for a in ("caf", "cpam")}
    inputs = read_inputs(sample_run / "transfer" / "caf" / "caf.pseudo.parquet",
                         sample_run / "transfer" / "cpam" / "cpam.pseudo.parquet",
                         sample_run / "central" / "links.parquet")
    d, _ = sep.run_protocol(frames["caf"], frames["cpam"], links, secrets,
                            inputs.reference_date)
    households = sep.household_view(d)
    assert households.height == frames["caf"]["foyer"].n_unique()
    assert not {"nb_lies", "nb_personnes_dossier", "a_ppa", "adulte"} & set(households.columns)
    linker = {a: frames[a].select(sep.LINKER_COLUMNS[a]) for a in ("caf", "cpam")}
    views = [sep.shares(households, sep.DETECTOR_VIEW),
             sep.shares(sep.insured_view(d), sep.INSURED_D_VIEW, "handle"),
             export_k(linker["caf"]), export_k(linker["cpam"]),
             joined_k(linker["caf"], linker["cpam"], links)]
    for k in views:
        assert k["part_k1"] < TARGET_K1 and k["part_k_moins_5"] < TARGET_K_LT5, k
    sel = css_params.select_period(inputs.reference_date)
    hits = sep.same_hits(connect(d, sel), connect(inputs, sel))
    assert len(hits) == 8 and sum(h["en_clair"] > 0 for h in hits.values()) == 8, hits
    assert all(h["ecarts"] == 0 for h in hits.values()), hits
