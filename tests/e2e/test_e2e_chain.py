"""The whole chain on fresh data: links and flagged households against the ground truth."""

from __future__ import annotations

import json

import polars as pl

from pipeline.evaluate import linkage_scores, rule_scores
from pipeline.shared.separation import (
    DETECTION_AUDIT,
    DETECTION_DIR,
    DETECTION_OUT,
    HANDOFF_DIR,
    OPPOSITION_FILE,
    SHARES_DIR,
    SUMS_FILE,
)


def test_linkage_precision_and_recall_against_truth(chain_run):
    scores = linkage_scores(chain_run.out, chain_run.dataset / "truth")
    assert scores["truth"] > 500, scores
    assert scores["precision"] >= 0.995, scores
    assert scores["recall"] >= 0.98, scores


def test_flagged_households_match_truth(chain_run):
    scores = rule_scores(chain_run.out, chain_run.dataset / "truth")
    flers = scores["monoparent_sous_plafond_sans_css"]
    assert flers["truth"] > 0, "the generator must produce Flers-rule households"
    for rule, s in scores.items():
        if s["truth"] == 0 and s["predicted"] == 0:
            continue
        assert s["precision"] >= 0.9, (rule, s)
        assert s["recall"] >= 0.9, (rule, s)


def test_targets_are_one_row_per_household_keyed_by_handles(chain_run):
    targets = pl.read_parquet(chain_run.out / DETECTION_OUT / "targets.parquet")
    assert targets.height > 0
    assert targets.select(["agence", "foyer"]).is_duplicated().sum() == 0
    assert targets["handle"].str.contains(r"^[0-9a-f]{32}$").all()
    assert set(targets["liste"].unique()) <= {"cible", "a_verifier"}
    assert (targets["regles"].list.len() > 0).all()


def test_lists_written_per_quartier_for_the_ccas(chain_run):
    listes = chain_run.out / "caf" / "listes"
    xlsx = sorted(listes.rglob("*.xlsx"))
    csv = sorted(listes.rglob("*.csv"))
    assert xlsx and csv, f"no lists in {listes}"
    header = csv[0].read_bytes().decode("utf-8-sig").splitlines()
    assert any("Motif" in line or "motif" in line for line in header[:15]), header[:15]


def test_audit_log_records_the_run_and_verifies(chain_run):
    import json

    from pipeline.trust import audit

    log = chain_run.out / "audit.jsonl"
    status = audit.verify(log)
    assert status.ok, status
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["outcome"] == "succes"
    assert last["operator"] == "operateur"
    # the second central step of the staged exchange: the exports and the two residues
    assert set(last["inputs"]) == {"caf", "cpam", "caf_residu", "cpam_residu"}
    assert "links.parquet" in last["outputs"] and "targets.parquet" not in last["outputs"]
    assert f"{HANDOFF_DIR}/{SUMS_FILE}" in last["outputs"]
    # the detecting operator's own log: its inputs are the files it received, never a link
    log = chain_run.out / DETECTION_AUDIT
    assert audit.verify(log).ok
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["outcome"] == "succes" and entry["operator"] == "detection"
    assert "targets.parquet" in entry["outputs"]
    assert entry["inputs"]["liaison_sommes"] == last["outputs"][f"{HANDOFF_DIR}/{SUMS_FILE}"]
    assert not any("pseudo" in k or "liens" in k or "links" in k for k in entry["inputs"])


def test_central_rerun_is_byte_identical(chain_run, tmp_path, monkeypatch):
    """Same inputs, key and seed: both central operators' outputs are byte-identical on a
    rerun. The reports print the audit head after the run's entry, so each rerun uses its log
    as the chain's last step found it and the same pinned clock as the chain (`run --today`
    sets SOURCE_DATE_EPOCH)."""
    from datetime import date

    from pipeline.central.detect.separated import run_detection
    from pipeline.central.run import run_central
    from pipeline.chain import pinned_clock

    for name, value in pinned_clock(chain_run.today).items():
        monkeypatch.setenv(name, value)

    transfer = chain_run.out / "transfer"
    rerun = tmp_path / "central"
    # the log as the chain's second central step found it (after its first step's entry)
    lines = (chain_run.out / "audit.jsonl").read_text(encoding="utf-8").splitlines(True)
    (tmp_path / "audit.jsonl").write_text("".join(lines[:-1]), encoding="utf-8")
    run_central(
        chain_run.convention,
        {"caf": transfer / "caf", "cpam": transfer / "cpam"},
        rerun,
        tmp_path / "audit.jsonl",
        today=date.fromisoformat(chain_run.today),
        residue={"caf": transfer / "residu" / "caf", "cpam": transfer / "residu" / "cpam"},
        keys=chain_run.out / "operateur" / "keys",
    )
    first = chain_run.out / "central"
    for name in ("links.parquet", "clerical_review.parquet", f"{HANDOFF_DIR}/{SUMS_FILE}",
                 f"{HANDOFF_DIR}/{OPPOSITION_FILE}", "report.html", "report.json"):
        assert (rerun / name).read_bytes() == (first / name).read_bytes(), name

    inbox = transfer / DETECTION_DIR
    lines = (chain_run.out / DETECTION_AUDIT).read_text(encoding="utf-8").splitlines(True)
    (tmp_path / "detection.jsonl").write_text("".join(lines[:-1]), encoding="utf-8")
    run_detection(chain_run.convention, {a: inbox / a for a in ("caf", "cpam")},
                  inbox / HANDOFF_DIR, inbox / SHARES_DIR, tmp_path / "detection",
                  tmp_path / "detection.jsonl", today=date.fromisoformat(chain_run.today))
    first = chain_run.out / DETECTION_OUT
    for name in ("targets.parquet", "aggregates.csv", "detect_stats.json", "report.html",
                 "report.json"):
        assert (tmp_path / "detection" / name).read_bytes() == (first / name).read_bytes(), name


def test_report_shows_the_attacks_on_each_residue(chain_run):
    """The auditor reads, per agency, the attacks the agency ran on its residue's Bloom filters
    next to the prior / chance, from the leakage file received with the residue."""
    facts = json.loads((chain_run.out / "central" / "report.json").read_text("utf-8"))["facts"]
    received = chain_run.out / "transfer" / "residu"
    checked = []
    for leak in facts["leakage"]:
        shown = {k: v for k, v in leak["details"].items() if k.startswith("résidu")}
        if not (received / leak["agency"]).is_dir():  # the joined view: no residue of its own
            assert not shown
            continue
        checked.append(leak["agency"])
        sent = json.loads((received / leak["agency"] / f"{leak['agency']}.residu.leakage.json")
                          .read_text("utf-8"))
        attacks = sent["attaques"]
        assert len(shown) == 5, leak["agency"]
        graph = next(v for k, v in shown.items() if "appariement de graphes" in k)
        assert graph == attacks["reidentifies_graphe"]
        year = next(k for k in shown if "année de naissance" in k)
        assert f"a priori {attacks['prior_annee'] * 100:.2f}".replace(".", ",") in year
    assert checked == ["caf", "cpam"]
    html = (chain_run.out / "central" / "report.html").read_text("utf-8")
    assert "résidu (filtres de Bloom" in html


def test_recall_outside_opposed_households(chain_run):
    """An opposed household leaves without name or date tokens: its members are mostly not
    linked, by design. The evaluation says so apart, and the other households' recall is the
    one the linkage answers for."""
    scores = linkage_scores(chain_run.out, chain_run.dataset / "truth")
    assert scores["true_pairs_in_opposed_households"] > 0
    assert scores["recall_outside_opposition"] > scores["recall"]
    assert scores["recall_outside_opposition"] >= 0.999
