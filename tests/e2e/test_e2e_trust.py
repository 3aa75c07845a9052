"""The whole chain records which files decided what ran, and keeps agency stats private."""

from __future__ import annotations

import json

from pipeline.common.files import sha256_file
from pipeline.trust.reference import ROOT, current_hashes

RULES = "pipeline/shared/rules.yaml"


def test_manifests_audit_and_report_record_the_reference_hashes(chain_run) -> None:
    expected = current_hashes()
    assert expected[RULES] == sha256_file(ROOT / RULES)
    for agency in ("caf", "cpam"):
        manifest = json.loads((chain_run.out / agency / "export" / f"{agency}.manifest.json")
                              .read_text("utf-8"))
        assert manifest["fichiers_reference"] == expected
    entries = [json.loads(line) for line in
               (chain_run.out / "audit.jsonl").read_text("utf-8").splitlines() if line]
    run = [e for e in entries if e.get("event") == "central_run"][-1]
    recorded = run["fichiers_reference"]
    assert {k: v for k, v in recorded.items() if k != "table_parametres"} == expected
    assert recorded["table_parametres"]["fichier"] == "pipeline/shared/parameters/css.yaml"
    html = (chain_run.out / "central" / "report.html").read_text("utf-8")
    assert expected[RULES] in html and RULES in html


def test_reidentify_stats_are_owner_only_and_suppressed(chain_run) -> None:
    for agency in ("caf", "cpam"):
        path = chain_run.out / agency / "listes" / "reidentify_stats.json"
        assert path.stat().st_mode & 0o077 == 0, path
        per = json.loads(path.read_text("utf-8"))["par_quartier"]
        assert all(not isinstance(v, int) or v == 0 or v >= 11 for v in per.values()), per
