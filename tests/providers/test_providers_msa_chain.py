"""A third provider through the whole chain: the MSA, on the coverage side next to the CPAM.

One synthetic territory generated with `synth --msa` (a share of the households absent from the
CPAM are insured at the MSA), demo keys and a three-provider demo convention built for it, then
every command of the chain (`pipeline.chain.stages`, the commands `make match` runs) in-process.
The MSA's people are "not found at the CPAM" households: the checks below hold only if they are
linked to the CAF through the MSA, if the rules read their MSA cover, and if the MSA re-identifies
the targets it holds (and only those).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from pipeline.evaluate import handle_lines, prf, read_truth, rule_scores
from pipeline.shared.separation import DETECTION_OUT

HOUSEHOLDS = 600
SEED = 1414
TODAY = "2026-11-22"
PROVIDERS3 = ["caf", "cpam", "msa"]


@dataclass(frozen=True)
class Run:
    dataset: Path
    out: Path
    convention: Path


@pytest.fixture(scope="module")
def msa_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    import contextlib
    import io
    import sys

    from pipeline.chain import TRANSFERS, stages
    from pipeline.cli import main
    from pipeline.synth.generate import generate
    from pipeline.trust.demo import build

    base = tmp_path_factory.mktemp("msa")
    dataset, out = base / "data", base / "out"
    generate(households=HOUSEHOLDS, seed=SEED, out=dataset, msa=True)
    convention = base / "demo-msa.yaml"
    build(dataset / "keys", convention, PROVIDERS3)
    for stage in stages(dataset, out, convention, seed=SEED, today=TODAY):
        if stage.side in TRANSFERS:
            TRANSFERS[stage.side](out)
            continue
        argv, sys.argv = sys.argv, ["nonrecours", *stage.argv]
        log = io.StringIO()
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                main()
        except SystemExit as exc:
            assert not exc.code, f"{stage.name} : code {exc.code}\n{log.getvalue()[-3000:]}"
        finally:
            sys.argv = argv
    return Run(dataset, out, convention)


def test_the_chain_runs_every_step_for_the_three_providers(msa_run: Run) -> None:
    from pipeline.chain import stages

    chain = stages(msa_run.dataset, msa_run.out, msa_run.convention)
    assert {s.side for s in chain} == {*PROVIDERS3, "central", "transfer", "transfer_residue",
                                       "detection", "transfer_detection"}
    detecting = next(s for s in chain if s.side == "detection").argv
    assert f"msa={msa_run.out / 'transfer' / 'detection' / 'msa'}" in detecting
    central = next(s for s in chain if s.side == "central" and s.argv[0] == "match").argv
    assert "--fournisseur" in central and f"msa={msa_run.out / 'transfer' / 'msa'}" in central
    for agency in PROVIDERS3:
        assert (msa_run.out / "transfer" / agency / f"{agency}.pseudo.parquet").is_file()
        assert (msa_run.out / agency / "listes" / "reidentify_stats.json").is_file()


def test_msa_people_are_households_not_found_at_the_cpam(msa_run: Run) -> None:
    truth = msa_run.dataset / "truth"
    persons = read_truth(truth / "persons.csv")
    households = read_truth(truth / "households.csv")
    at_msa = persons.filter(pl.col("msa_line").is_not_null())
    assert at_msa.height > 50
    assert at_msa["cpam_line"].is_null().all()  # nobody is in both coverage files
    flags = households.join(at_msa.select("matricule").unique(), on="matricule", how="semi")
    assert (flags["a_cpam"] == 0).all() and (flags["a_msa"] == 1).all()


def test_caf_people_are_linked_through_the_msa(msa_run: Run) -> None:
    out, truth = msa_run.out, msa_run.dataset / "truth"
    pair = ["caf_line", "msa_line"]
    true_pairs = (read_truth(truth / "persons.csv").drop_nulls(pair)
                  .select(pl.col(pair).cast(pl.Int64)))
    msa = handle_lines(out, "msa").rename({"msa_handle": "cpam_handle"})
    links = (pl.read_parquet(out / "central" / "links.parquet")
             .join(handle_lines(out, "caf"), on="caf_handle", how="left")
             .join(msa, on="cpam_handle", how="inner"))  # the links landing on an MSA person
    scores = prf(links.select(pair), true_pairs)
    assert scores["predicted"] > 50, scores
    assert scores["precision"] >= 0.98 and scores["recall"] >= 0.9, scores


def test_rules_see_the_msa_cover(msa_run: Run) -> None:
    """Households insured at the MSA are found on the coverage side: their CSS (at the MSA)
    decides the CAF rules, and they are not sent to the « à vérifier » list."""
    out, truth = msa_run.out, msa_run.dataset / "truth"
    households = read_truth(truth / "households.csv").filter(pl.col("opposition") == 0)
    at_msa = households.filter(pl.col("a_msa") == 1)
    assert at_msa.height > 20
    # the truth itself: MSA households are never « à vérifier », some meet a CAF rule
    assert at_msa["a_verifier"].sum() == 0
    assert at_msa["sous_plafond_sans_css"].sum() > 0
    scores = rule_scores(out, truth)
    # (a_verifier: about twenty households at this size, one missed link costs 5 %)
    for rule, floor in (("sous_plafond_sans_css", 0.95), ("rsa_sans_css", 0.95),
                        ("a_verifier", 0.85)):
        assert scores[rule]["precision"] >= floor and scores[rule]["recall"] >= 0.9, (rule, scores)
    targets = pl.read_parquet(out / DETECTION_OUT / "targets.parquet").filter(
        pl.col("agence") == "caf")
    caf = pl.read_parquet(out / "caf" / "handles.parquet").select(
        "foyer", pl.col("matricule").cast(pl.Int64)).unique()
    listed = targets.join(caf, on="foyer").join(at_msa.select("matricule", "sous_plafond_sans_css"),
                                                on="matricule")
    assert listed.filter(pl.col("liste") == "a_verifier").height == 0
    hits = listed.filter(pl.col("regles").list.contains("sous_plafond_sans_css"))
    assert hits.height >= 0.9 * at_msa["sous_plafond_sans_css"].sum()
    stats = json.loads((out / DETECTION_OUT / "detect_stats.json").read_text("utf-8"))
    found = stats["foyers"]["foyers_trouves_cpam"]  # found on the coverage side: CPAM or MSA
    assert found >= (households["a_cpam"] + households["a_msa"]).sum() * 0.97


def test_the_msa_reidentifies_its_own_targets(msa_run: Run) -> None:
    out, truth = msa_run.out, msa_run.dataset / "truth"
    targets = pl.read_parquet(out / DETECTION_OUT / "targets.parquet")
    mine = targets.filter(pl.col("agence") == "msa")
    assert mine.height > 0
    msa = pl.read_parquet(out / "msa" / "handles.parquet")
    cpam = pl.read_parquet(out / "cpam" / "handles.parquet")
    assert mine["handle"].is_in(msa["handle"].implode()).all()
    assert not targets.filter(pl.col("agence") == "cpam")["handle"].is_in(
        msa["handle"].implode()).any()
    assert not mine["handle"].is_in(cpam["handle"].implode()).any()
    # the reverse rule on the MSA side, against its ground truth
    reverse = read_truth(truth / "msa_reverse.csv")
    predicted = (mine.filter(pl.col("regles").list.contains("css_gratuite_sans_minima"))
                 .select(msa_handle="handle").join(handle_lines(out, "msa"), on="msa_handle"))
    scores = prf(predicted.select("msa_line"),
                 reverse.select(pl.col("msa_line").cast(pl.Int64)))
    assert scores["precision"] >= 0.9 and scores["recall"] >= 0.8, scores
    stats = json.loads((out / "msa" / "listes" / "reidentify_stats.json").read_text("utf-8"))
    rows = sum(pl.read_csv(p, separator=";").height
               for p in (out / "msa" / "listes").glob("cible_*.csv"))
    assert rows > 0 and stats["organisme"] == "msa"
    central = json.loads((out / DETECTION_OUT / "detect_stats.json").read_text("utf-8"))
    assert central["cibles"]["par_agence"]["msa"] == mine.height
