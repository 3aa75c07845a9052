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
It then runs the masked household sums (pipeline/shared/masked_sums.py, docs/SEPARATION.md)
with the agencies' own linkage key: the CPAM's pads, the CAF's factors, the linking operator's
sums, the CAF's shares and the detecting operator's unmasking. It checks that the detecting
operator's bits equal the ones today's engine computes in the clear, measures k on what each
central party would then hold (the detecting operator's household view, the linking operator's
exports without features and their join), and times each party (SEPARATION_1M=1 adds a timing
on the 1 M bench exports with random links). Figures to bench/results/kanon_separation.json.
The production chain does not run the protocol yet (issue 11).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NONRECOURS_QUIET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb
import numpy as np
import polars as pl

from pipeline.agency.pseudonymise import detector_files, status_masks
from pipeline.agency.pseudonymise.core import load_materials
from pipeline.central.detect.engine import connect
from pipeline.central.detect.inputs import read_inputs
from pipeline.central.detect.predicates import load_checked_rules
from pipeline.central.detect.status_bits import household_view, insured_view
from pipeline.central.match.status_sums import linking_sums
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


# What each central party holds under the protocol (docs/SEPARATION.md). The detecting operator:
# the CAF's household file (one row per household, no size), L's « found » flag and the
# unmasked OR bits. The linking operator: the exports without features (its pads and factors
# are uniform residues, not attributes).
DETECTOR_VIEW = [*detector_files.FEATURES, "opposition", "trouve_cpam",
                 *[f"bit_{b}" for b in status_masks.BITS]]
INSURED_D_VIEW = ["css_gratuite_active", "lie_caf", "a_minima", "opposition"]
LINKER_COLUMNS = {"caf": ["handle", "foyer", "adulte", "opposition"],
                  "cpam": ["handle", "foyer", "opposition"]}


def timed(label: str, seconds: dict[str, float], fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    seconds[label] = round(time.perf_counter() - t, 3)
    return out


def run_protocol(caf: pl.DataFrame, cpam: pl.DataFrame, links: pl.DataFrame,
                 secrets: dict[str, bytes]
                 ) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, float]]:
    """Every party's step, in order; returns the detecting operator's household view, its
    reverse-rule view and the timings."""
    benefits, coverage = AGENCIES[0], AGENCIES[1]
    sec: dict[str, float] = {}
    masked = timed("cpam_masques", sec, lambda: status_masks.mask(
        status_masks.person_bits(cpam), secrets[coverage]))
    rho = timed("caf_facteurs", sec, status_masks.factors, caf["foyer"], secrets[benefits])
    households = timed("caf_fichier_foyers", sec, detector_files.household_rows, caf)
    sums = timed("liaison_sommes", sec, linking_sums, caf, rho, masked, links)
    part = timed("caf_parts", sec, status_masks.caf_shares, caf, rho, links, secrets[benefits])
    view = timed("detection_vue", sec, household_view, households, sums, part)
    insured = timed("cpam_assures", sec, detector_files.insured_rows, cpam)
    minima = timed("caf_minima_lies", sec, detector_files.linked_minima, caf, links)
    insured_v = timed("detection_vue_assures", sec, insured_view, insured, minima)
    return view, insured_v, sec


def rule_relation(view: pl.DataFrame) -> pl.DataFrame:
    """The columns the foyers rules read (households.sql's names), from D's view alone."""
    b = {x: pl.col(f"bit_{x}").fill_null(False) for x in status_masks.BITS}
    position = pl.col("position_plafond_css")
    return view.select(
        "foyer", "type_foyer", "a_rsa", "a_aah", "aah_taux_plein",
        a_ppa=pl.lit(False),  # not sent: false wherever personne_seule is left (detector_files)
        sous_plafond_gratuite=position == "sous_plafond_gratuite",
        sous_plafond_participation=position.is_in(
            ["sous_plafond_gratuite", "sous_plafond_participation"]),
        trouve_cpam=pl.col("trouve_cpam").fill_null(False),
        css_active=b["css_active"],
        css_fin_proche=b["css_active"] & ~b["css_en_cours"],
        css_terminee_recente=b["css_terminee_recente"],
        css_a_verifier=~b["css_active"] & b["css_illisible"],
        opposition=pl.col("opposition").fill_null(False) | b["opposition"])


def same_hits(view: pl.DataFrame, insured: pl.DataFrame, con) -> dict[str, dict[str, int]]:
    """Per rule: households (persons, for the reverse rule) found by today's engine, by D's
    views, and by one of them only."""
    d = duckdb.connect()
    d.register("foyers", rule_relation(view).to_arrow())
    d.register("assures_cpam", insured.to_arrow())
    out = {}
    for rule in load_checked_rules():
        key = "foyer" if rule.vue == "foyers" else "handle"
        query = (f"SELECT {key} FROM {rule.vue} WHERE NOT coalesce(opposition, false) "
                 f"AND ({rule.gate_sql()}) AND coalesce(({rule.predicate_sql()}), false)")
        engine = set(con.sql(query).pl()[key].to_list())
        ours = set(d.sql(query).pl()[key].to_list())
        out[rule.id] = {"moteur": len(engine), "vue_d": len(ours), "ecarts": len(engine ^ ours)}
    d.close()
    return out


def timing_1m(secrets: dict[str, bytes]) -> dict[str, object]:
    """The protocol on the 1 M bench exports, with a random one-to-one link of 95 % of the
    CPAM rows (the cost depends on the row and link counts, not on which pairs are linked)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import scale  # the scale bench's cached exports, only when asked

    folder, _ = scale.cached_exports(1_000_000)
    benefits, coverage = AGENCIES[0], AGENCIES[1]
    caf = pl.read_parquet(folder / f"{benefits}.pseudo.parquet",
                          columns=["handle", "foyer", "adulte", "opposition", "type_foyer",
                                   "position_plafond_css", "a_rsa", "a_aah", "a_ppa",
                                   "date_reference"])
    cpam = pl.read_parquet(folder / f"{coverage}.pseudo.parquet",
                           columns=["handle", "statut_css", "opposition",
                                   "css_gratuite_en_cours"])
    rng = np.random.default_rng(0)
    n = int(min(caf.height, cpam.height) * 0.95)
    links = pl.DataFrame({
        "caf_handle": caf["handle"].gather(rng.permutation(caf.height)[:n]),
        "cpam_handle": cpam["handle"].gather(rng.permutation(cpam.height)[:n])})
    t = time.perf_counter()
    view, _, sec = run_protocol(caf, cpam, links, secrets)
    return {"lignes_caf": caf.height, "lignes_cpam": cpam.height, "liens": n,
            "foyers": view.height, "secondes": sec,
            "secondes_total": round(time.perf_counter() - t, 2)}


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
        frames = {a: pl.read_parquet(exports[a]) for a in (benefits, coverage)}
        link_frame = pl.read_parquet(links)
        joined = kanonymity.joined_k(frames[benefits], frames[coverage], link_frame)
        secrets = {a: load_materials(out / a / "keys", CONVENTION, a).secret
                   for a in (benefits, coverage)}
        view, insured_d, seconds = run_protocol(frames[benefits], frames[coverage], link_frame,
                                                secrets)
        hits = same_hits(view, insured_d, con)
    linker = {a: frames[a].select(LINKER_COLUMNS[a]) for a in (benefits, coverage)}
    protocol = {
        "regles_moteur_et_vue_d": hits,
        "vue_operateur_detection": shares(view, DETECTOR_VIEW),
        "vue_operateur_detection_assures": shares(insured_d, INSURED_D_VIEW),
        "vue_operateur_liaison": {
            benefits: {k: kanonymity.export_k(linker[benefits])[k]
                       for k in ("part_k1", "part_k_moins_5")},
            coverage: {k: kanonymity.export_k(linker[coverage])[k]
                       for k in ("part_k1", "part_k_moins_5")},
            "jointe": {k: kanonymity.joined_k(linker[benefits], linker[coverage],
                                              link_frame)[k]
                       for k in ("part_k1", "part_k_moins_5")}},
        "colonnes_vue_detection": DETECTOR_VIEW,
        "secondes_echantillon": seconds,
    }
    if os.environ.get("SEPARATION_1M"):
        protocol["a_1M"] = timing_1m(secrets)
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
        "sommes_masquees": protocol,
    }
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"{'vue':<36} {'k = 1':>8} {'k < 5':>8}")
    rows = {"jointe (aujourd'hui)": result["vue_jointe_actuelle"], **views}
    for name, v in rows.items():
        print(f"{name:<36} {v['part_k1']:>8.2%} {v['part_k_moins_5']:>8.2%}")
    prot = {"sommes masquées : opérateur de détection": protocol["vue_operateur_detection"],
            "  même opérateur, règle inverse": protocol["vue_operateur_detection_assures"],
            **{f"sommes masquées : liaison, {a}": v
               for a, v in protocol["vue_operateur_liaison"].items()}}
    for name, v in prot.items():
        print(f"{name:<36} {v['part_k1']:>8.2%} {v['part_k_moins_5']:>8.2%}")
    print("règles (foyers trouvés par le moteur en clair / par la vue de l'opérateur de "
          "détection / écarts) :")
    for rule, h in hits.items():
        print(f"  {rule:<36} {h['moteur']:>5} {h['vue_d']:>5} {h['ecarts']:>5}")
    print(f"secondes (échantillon) : {seconds}")
    if "a_1M" in protocol:
        print(f"à 1 M : {protocol['a_1M']}")
    print(f"objectifs : k = 1 < {kanonymity.TARGET_K1:.0%}, k < 5 < {kanonymity.TARGET_K_LT5:.0%}"
          f"\n→ {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
