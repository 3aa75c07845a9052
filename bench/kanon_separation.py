"""k-anonymity of each central party's view under the separated detection, next to the single
operator it replaces (`make bench-kanon-separation`).

One central operator holding both exports and the links can join the CAF households' features
with their linked CPAM persons' statuses and the row structure (household sizes): on the
sample's 2,000 households that joined view misses the targets (k = 1 for under 1 % of
households, k < 5 for under 5 %). Since export contract 6 the chain separates the linking
operator (tokens, structure, no feature) from the detecting operator (features and masked
sums, no structure; Kelman, Bass & Holman 2002; docs/SEPARATION.md). This script runs the
sample chain, rebuilds the exports one operator received before contract 6 (the agencies' own
code on the same rows, key and seed, features included), and measures k on the joined view
they give, on the rules' household view with and without the two counts that reveal the row
structure, and on each party's view under the protocol (run again in-process with the
agencies' key, party by party, and timed). It checks that the engine finds the same
households on the protocol's tables and on the tables in the clear, and that the chain's
detecting operator wrote exactly the targets the engine writes in the clear (SEPARATION_1M=1
adds a timing on the 1 M bench exports with random links). Figures to
bench/results/kanon_separation.json.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NONRECOURS_QUIET", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import polars as pl

from pipeline.agency.pseudonymise import status_masks
from pipeline.agency.pseudonymise.core import export_in_the_clear, load_materials
from pipeline.central.detect import detection_views
from pipeline.central.detect.detection_inputs import DetectionInputs, from_protocol
from pipeline.central.detect.engine import connect, detect
from pipeline.central.detect.inputs import read_inputs
from pipeline.central.detect.predicates import load_checked_rules
from pipeline.central.match.status_sums import insured_opposition, linking_sums
from pipeline.chain import DEMO_HANDLE_SEED
from pipeline.shared import css_params, detector_files, kanonymity
from pipeline.shared.masked_sums import person_bits
from pipeline.shared.providers import AGENCIES, PROVIDERS
from pipeline.shared.separation import DETECTION_OUT

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "kanon_separation.json"
CONVENTION = ROOT / "conventions" / "demo-flers.yaml"
TODAY = dt.date(2026, 11, 22)  # the run's date: the convention is checked against it
# What households.sql derives from the features and the links, that a rule reads; left out:
# the handles, the quartier (applied by the CAF at re-identification), the reference date (one
# value) and the French texts and booleans computed from these columns.
RULE_VIEW = ["type_foyer", "position_plafond_css", "a_rsa", "a_aah", "a_ppa", "aah_taux_plein",
             "trouve_cpam", "css_active", "css_fin_proche", "css_terminee_recente",
             "css_illisible_membre", "opposition"]
# the two counts that give the row structure away: persons linked, household size
STRUCTURE_COUNTS = ("nb_lies", "nb_personnes_dossier")
INSURED_VIEW = ["css_gratuite_active", "lie_caf", "a_minima", "opposition", "situation_caf"]


def shares(frame: pl.DataFrame, columns: list[str] | None = None,
           group: str = "foyer") -> dict[str, float]:
    """k = 1 and k < 5 shares of `frame`'s households (`group`) on `columns` (default: every
    non-token attribute), by kanonymity.export_k."""
    k = kanonymity.export_k(frame, columns, group)
    return {c: k[c] for c in ("part_k1", "part_k_moins_5")}


# What each central party holds under the protocol (docs/SEPARATION.md). The detecting operator:
# the CAF's household file (one row per household, no size), L's « found » flag and linked
# opposition, and the unmasked OR bits (its views: pipeline/central/detect/detection_views.py,
# which the `detecter` command measures too). The linking operator: the exports without
# features (its pads and factors are uniform residues, not attributes).
DETECTOR_VIEW = detection_views.HOUSEHOLD_VIEW
INSURED_D_VIEW = detection_views.INSURED_VIEW
household_view, insured_view = detection_views.household_view, detection_views.insured_view
LINKER_COLUMNS = {"caf": ["handle", "foyer", "adulte", "opposition"],
                  "cpam": ["handle", "foyer", "opposition"]}


def timed(label: str, seconds: dict[str, float], fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    seconds[label] = round(time.perf_counter() - t, 3)
    return out


def run_protocol(caf: pl.DataFrame, cpam: pl.DataFrame, links: pl.DataFrame,
                 secrets: dict[str, bytes], reference: dt.date
                 ) -> tuple[DetectionInputs, dict[str, float]]:
    """Every party's step, in order; returns what the detecting operator reads and the
    timings."""
    benefits, coverage = AGENCIES[0], AGENCIES[1]
    sec: dict[str, float] = {}
    masked = timed("cpam_masques", sec, lambda: status_masks.mask(
        person_bits(cpam), secrets[coverage]))
    insured = timed("cpam_assures", sec, detector_files.insured_rows, cpam)
    rho = timed("caf_facteurs", sec, status_masks.factors, caf["foyer"], secrets[benefits])
    households = timed("caf_fichier_foyers", sec, detector_files.household_rows, caf)
    sums = timed("liaison_sommes", sec, linking_sums, caf, cpam, rho, masked, links)
    opposition = timed("liaison_oppositions", sec, insured_opposition, caf, cpam, links)
    part = timed("caf_parts", sec, status_masks.caf_shares, caf, rho, links, secrets[benefits])
    minima = timed("caf_minima", sec, detector_files.caf_minima, caf, links)
    d = timed("detection_demasquage", sec, from_protocol, households, sums, part, insured,
              minima, opposition, reference)
    return d, sec


def same_hits(protocol_con, clear_con) -> dict[str, dict[str, int]]:
    """Per rule: households (persons, for the reverse rule) found by the engine on the
    protocol's tables, on the exports in the clear, and by one of them only."""
    out = {}
    for rule in load_checked_rules():
        key = "foyer" if rule.vue == "foyers" else "handle"
        query = (f"SELECT {key} FROM {rule.vue} WHERE NOT coalesce(opposition, false) "
                 f"AND ({rule.gate_sql()}) AND coalesce(({rule.predicate_sql()}), false)")
        clear = set(clear_con.sql(query).pl()[key].to_list())
        ours = set(protocol_con.sql(query).pl()[key].to_list())
        out[rule.id] = {"en_clair": len(clear), "protocole": len(ours),
                        "ecarts": len(clear ^ ours)}
    return out


def with_structure(households: pl.DataFrame, caf: pl.DataFrame, links: pl.DataFrame
                   ) -> pl.DataFrame:
    """The engine's household view plus the two counts a linking operator holds: persons
    linked (nb_lies) and household size (nb_personnes_dossier)."""
    counts = (caf.with_columns(_lie=pl.col("handle").is_in(links["caf_handle"].implode()))
              .group_by("foyer").agg(pl.col("_lie").sum().cast(pl.Int64).alias("nb_lies"),
                                     pl.len().cast(pl.Int64).alias("nb_personnes_dossier")))
    return households.join(counts, on="foyer", how="left")


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
                           columns=["handle", "foyer", "statut_css", "opposition",
                                    "css_gratuite_en_cours"])
    rng = np.random.default_rng(0)
    n = int(min(caf.height, cpam.height) * 0.95)
    links = pl.DataFrame({
        "caf_handle": caf["handle"].gather(rng.permutation(caf.height)[:n]),
        "cpam_handle": cpam["handle"].gather(rng.permutation(cpam.height)[:n])})
    t = time.perf_counter()
    d, sec = run_protocol(caf, cpam, links, secrets, caf["date_reference"].drop_nulls()[0])
    return {"lignes_caf": caf.height, "lignes_cpam": cpam.height, "liens": n,
            "foyers": d.households.height, "secondes": sec,
            "secondes_total": round(time.perf_counter() - t, 2)}


def main() -> None:
    benefits, coverage = AGENCIES[0], AGENCIES[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        subprocess.run([sys.executable, "-m", "pipeline", "run", "--dataset",
                        str(ROOT / "sample_data"), "--out", str(out), "--convention",
                        str(CONVENTION), "--today", TODAY.isoformat(), "--remplacer"],
                       check=True, cwd=ROOT)
        # the single-operator reference: the exports as contracts 2-5 sent them (features
        # included) for the same rows, key and seed; the chain itself now runs the protocol
        exports = {a: Path(tmp) / f"{a}.clair.parquet" for a in (benefits, coverage)}
        for a, path in exports.items():
            opposition = ROOT / "sample_data" / "agencies" / a / "opposition.csv"
            export_in_the_clear(
                out / a, a, CONVENTION, TODAY,
                seed=DEMO_HANDLE_SEED + list(PROVIDERS).index(a),
                territory=(ROOT / "sample_data" / "territory" / "iris_quartiers.csv"
                           if a == benefits else None),
                opposition=opposition if opposition.exists() else None).write_parquet(path)
        links = out / "central" / "links.parquet"
        chain_k = json.loads((out / DETECTION_OUT / "detect_stats.json").read_text("utf-8"))[
            "k_anonymat_detection"]
        chain_targets = pl.read_parquet(out / DETECTION_OUT / "targets.parquet")
        inputs = read_inputs(exports[benefits], exports[coverage], links)
        sel = css_params.select_period(inputs.reference_date)
        con = connect(inputs, sel)
        frames = {a: pl.read_parquet(exports[a]) for a in (benefits, coverage)}
        link_frame = pl.read_parquet(links)
        households = with_structure(con.sql("SELECT * FROM foyers").pl(), frames[benefits],
                                    link_frame)
        insured = con.sql("SELECT * FROM assures_cpam").pl()
        joined = kanonymity.joined_k(frames[benefits], frames[coverage], link_frame)
        secrets = {a: load_materials(out / a / "keys", CONVENTION, a, TODAY).secret
                   for a in (benefits, coverage)}
        d, seconds = run_protocol(frames[benefits], frames[coverage], link_frame, secrets,
                                  inputs.reference_date)
        hits = same_hits(connect(d, sel), con)
        detect(exports[benefits], exports[coverage], links, Path(tmp) / "clair")
        same_targets = chain_targets.equals(pl.read_parquet(Path(tmp) / "clair" /
                                                            "targets.parquet"))
    linker = {a: frames[a].select(LINKER_COLUMNS[a]) for a in (benefits, coverage)}
    protocol = {
        "regles_en_clair_et_protocole": hits,
        "vue_operateur_detection": shares(household_view(d), DETECTOR_VIEW),
        "vue_operateur_detection_assures": shares(insured_view(d), INSURED_D_VIEW, "handle"),
        "vue_operateur_liaison": {
            benefits: shares(linker[benefits]),
            coverage: shares(linker[coverage]),
            "jointe": {k: kanonymity.joined_k(linker[benefits], linker[coverage],
                                              link_frame)[k]
                       for k in ("part_k1", "part_k_moins_5")}},
        "colonnes_vue_detection": DETECTOR_VIEW,
        "chaine": {"k_operateur_detection": {v: {k: f[k] for k in ("part_k1", "part_k_moins_5")}
                                             for v, f in chain_k.items()},
                   "cibles_identiques_au_moteur_en_clair": same_targets,
                   "cibles": chain_targets.height},
        "secondes_echantillon": seconds,
    }
    if os.environ.get("SEPARATION_1M"):
        protocol["a_1M"] = timing_1m(secrets)
    views = {"vue_regles_sans_tailles": shares(households, RULE_VIEW)}
    for col in STRUCTURE_COUNTS:
        views[f"vue_regles_avec_{col}"] = shares(households, [*RULE_VIEW, col])
    views["vue_regles_avec_les_deux"] = shares(households, [*RULE_VIEW, *STRUCTURE_COUNTS])
    views["vue_assures_cpam"] = shares(insured, INSURED_VIEW, "handle")
    result = {
        "donnees": "sample_data (make match)",
        "foyers": households.height, "assures": insured.height,
        "objectifs": {"part_k1": kanonymity.TARGET_K1, "part_k_moins_5": kanonymity.TARGET_K_LT5},
        "vue_jointe_un_seul_operateur": {k: joined[k] for k in ("part_k1", "part_k_moins_5")},
        "vue_separee": views,
        "colonnes_vue_regles": RULE_VIEW,
        "colonnes_vue_assures": INSURED_VIEW,
        "sommes_masquees": protocol,
    }
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"{'vue':<36} {'k = 1':>8} {'k < 5':>8}")
    rows = {"jointe (un seul opérateur)": result["vue_jointe_un_seul_operateur"], **views}
    for name, v in rows.items():
        print(f"{name:<36} {v['part_k1']:>8.2%} {v['part_k_moins_5']:>8.2%}")
    prot = {"sommes masquées : opérateur de détection": protocol["vue_operateur_detection"],
            "  même opérateur, règle inverse": protocol["vue_operateur_detection_assures"],
            **{f"sommes masquées : liaison, {a}": v
               for a, v in protocol["vue_operateur_liaison"].items()}}
    for name, v in prot.items():
        print(f"{name:<36} {v['part_k1']:>8.2%} {v['part_k_moins_5']:>8.2%}")
    print("règles (foyers trouvés par le moteur sur les tables en clair / sur celles du "
          "protocole / écarts) :")
    for rule, h in hits.items():
        print(f"  {rule:<36} {h['en_clair']:>5} {h['protocole']:>5} {h['ecarts']:>5}")
    print(f"chaîne (make match) : cibles de l'opérateur de détection identiques à celles du "
          f"moteur en clair : {'oui' if same_targets else 'NON'} ({chain_targets.height} "
          f"cibles) ; k de ses vues : {protocol['chaine']['k_operateur_detection']}")
    print(f"secondes (échantillon) : {seconds}")
    if "a_1M" in protocol:
        print(f"à 1 M : {protocol['a_1M']}")
    print(f"objectifs : k = 1 < {kanonymity.TARGET_K1:.0%}, k < 5 < {kanonymity.TARGET_K_LT5:.0%}"
          f"\n→ {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
