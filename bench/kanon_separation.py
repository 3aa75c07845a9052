"""k-anonymity of a separated detection view (`make bench-kanon-separation`), issue 11's open path.

Today the central operator holds both exports and the links, so it can join the CAF households'
features with their linked CPAM persons' statuses and the row structure (household sizes): on
the sample's 2,000 households that joined view misses the targets (k = 1 for under 1 % of
households, k < 5 for under 5 %). The separation principle of record linkage (Kelman, Bass &
Holman 2002: the unit that links sees identifiers, never content; the unit that analyses sees
content, never identifiers) would give the detecting operator only the household view the rules
read: one row per CAF household (pipeline/central/detect/sql/households.sql), without the
identifiers and without the row structure. This script runs the sample chain, builds that view
with the detection code, and measures k on it, with and without the two counts that reveal the
row structure, next to the joined view as measured today (pipeline/shared/kanonymity.py).
Figures to bench/results/kanon_separation.json. Nothing here changes the protocol.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("NONRECOURS_QUIET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl

from pipeline.central.detect.engine import connect
from pipeline.central.detect.inputs import read_inputs
from pipeline.shared import css_params, kanonymity
from pipeline.shared.providers import AGENCIES

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "kanon_separation.json"
CONVENTION = ROOT / "conventions" / "demo-flers.yaml"
# What households.sql derives from the features and the links, that a rule reads; left out:
# the handles, the quartier (applied by the CAF at re-identification), the reference date (one
# value) and the French texts and booleans computed from these columns.
RULE_VIEW = ["type_foyer", "position_plafond_css", "a_rsa", "a_aah", "a_ppa", "aah_taux_plein",
             "trouve_cpam", "css_active", "css_fin_proche", "css_terminee_recente",
             "css_illisible_membre", "opposition"]
# the two counts that give the row structure away: persons linked, household size
STRUCTURE_COUNTS = ("nb_lies", "nb_personnes_dossier")
INSURED_VIEW = ["css_gratuite_active", "lie_caf", "a_minima", "opposition", "situation_caf"]


def shares(frame: pl.DataFrame, columns: list[str]) -> dict[str, float]:
    """Share of rows whose combination of `columns` is held by 1 row, and by fewer than 5."""
    k = frame.join(frame.group_by(columns).len(), on=columns, how="left",
                   nulls_equal=True)["len"]
    return {"part_k1": round(float((k == 1).mean()), 5),
            "part_k_moins_5": round(float((k < 5).mean()), 5)}


def main() -> None:
    benefits, coverage = AGENCIES[0], AGENCIES[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        subprocess.run([sys.executable, "-m", "pipeline", "run", "--dataset",
                        str(ROOT / "sample_data"), "--out", str(out), "--convention",
                        str(CONVENTION), "--remplacer"], check=True, cwd=ROOT)
        exports = {a: out / a / "export" / f"{a}.pseudo.parquet" for a in (benefits, coverage)}
        links = out / "central" / "links.parquet"
        inputs = read_inputs(exports[benefits], exports[coverage], links)
        con = connect(inputs, css_params.select_period(inputs.reference_date))
        households = con.sql("SELECT * FROM foyers").pl()
        insured = con.sql("SELECT * FROM assures_cpam").pl()
        joined = kanonymity.joined_k(pl.read_parquet(exports[benefits]),
                                     pl.read_parquet(exports[coverage]),
                                     pl.read_parquet(links))
    views = {"vue_regles_sans_tailles": shares(households, RULE_VIEW)}
    for col in STRUCTURE_COUNTS:
        views[f"vue_regles_avec_{col}"] = shares(households, [*RULE_VIEW, col])
    views["vue_regles_avec_les_deux"] = shares(households, [*RULE_VIEW, *STRUCTURE_COUNTS])
    views["vue_assures_cpam"] = shares(insured, INSURED_VIEW)
    result = {
        "donnees": "sample_data (make match)",
        "foyers": households.height, "assures": insured.height,
        "objectifs": {"part_k1": kanonymity.TARGET_K1, "part_k_moins_5": kanonymity.TARGET_K_LT5},
        "vue_jointe_actuelle": {k: joined[k] for k in ("part_k1", "part_k_moins_5")},
        "vue_separee": views,
        "colonnes_vue_regles": RULE_VIEW,
        "colonnes_vue_assures": INSURED_VIEW,
    }
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"{'vue':<36} {'k = 1':>8} {'k < 5':>8}")
    rows = {"jointe (aujourd'hui)": result["vue_jointe_actuelle"], **views}
    for name, v in rows.items():
        print(f"{name:<36} {v['part_k1']:>8.2%} {v['part_k_moins_5']:>8.2%}")
    print(f"objectifs : k = 1 < {kanonymity.TARGET_K1:.0%}, k < 5 < {kanonymity.TARGET_K_LT5:.0%}"
          f"\n→ {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
