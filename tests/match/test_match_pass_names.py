"""Pass names live in pipeline/shared/comparisons.yaml only: renaming every pass (and moving the
identifier pass away from the front) in a copy of it links the same pairs under the new names,
and the links suite accepts them, reading its value set from the catalogue."""

from __future__ import annotations

import polars as pl
import yaml
from match_fixtures import write_exports
from test_match_passes import CAF, CPAM

from pipeline.central.match import link
from pipeline.central.report.render import pass_label, short_pass_label
from pipeline.central.report.validation import validate
from pipeline.shared.linkage_model import DEFAULT_CONFIG, IDENTIFIER_ROLE, load_config
from pipeline.shared.suite_spec import load_suite


def _renamed_config(tmp) -> tuple:
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    for p in raw["passes"]:
        p["name"] = f"{p['name']}_bis"
    ident = next(p for p in raw["passes"] if p.get("role") == IDENTIFIER_ROLE)
    raw["passes"].remove(ident)
    raw["passes"].insert(1, ident)  # no longer the first pass
    raw["probabilistic"]["pass"]["name"] = "fellegi_sunter_bis"
    path = tmp / "renamed.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path, load_config(path)


def test_renamed_passes_run_the_link_and_the_links_suite(tmp_path) -> None:
    caf, cpam = write_exports(tmp_path, CAF, CPAM)
    path, cfg = _renamed_config(tmp_path)
    assert cfg.passes[0].role != IDENTIFIER_ROLE
    assert cfg.role_pass(IDENTIFIER_ROLE).name == "nir_bis"
    renamed = pl.read_parquet(link(caf, cpam, tmp_path / "a", config=path, threads=2).links)
    default = pl.read_parquet(link(caf, cpam, tmp_path / "b", threads=2).links)
    assert set(renamed["pass"]) <= set(cfg.pass_names())
    assert "nir_bis" in set(renamed["pass"])
    pairs = ["caf_handle", "cpam_handle"]
    assert renamed.select(pairs).sort(pairs).equals(default.select(pairs).sort(pairs))
    handles = {"caf_handles": renamed["caf_handle"], "cpam_handles": renamed["cpam_handle"],
               "caf_rows": len(CAF), "cpam_rows": len(CPAM)}
    ok = validate("links", renamed, tmp_path / "v1",
                  context={**handles, "match_passes": cfg.pass_names()})
    assert "passe_connue" not in " ".join(ok.critical_failures), ok.critical_failures
    # Against the packaged catalogue the renamed passes are unknown: the value set is read.
    ko = validate("links", renamed, tmp_path / "v2", context=handles)
    assert any("passe_connue" in f or "passe d'appariement" in f for f in ko.critical_failures)


def test_links_suite_and_report_labels_spell_no_pass_name() -> None:
    cfg = load_config()
    suite = load_suite("links")
    spelled = [e for e in suite.expectations if "value_set" in (e.get("kwargs") or {})
               and set(e["kwargs"]["value_set"]) & set(cfg.pass_names())]
    assert spelled == []
    for p in [*cfg.passes, cfg.probabilistic_pass, cfg.residue_pass]:
        assert (pass_label(p.name), short_pass_label(p.name)) == (p.label, p.short)
