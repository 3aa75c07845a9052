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

import numpy as np
import polars as pl

from pipeline.agency.pseudonymise import status_masks
from pipeline.agency.pseudonymise.core import load_materials
from pipeline.central.detect.engine import connect
from pipeline.central.detect.inputs import read_inputs
from pipeline.central.detect.status_bits import unmask
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


# What each central party holds under the protocol. The detecting operator: the CAF's household
# features (one row per household, no size), the linking operator's « found » flag and the
# unmasked OR bits (null for a household without any link). The linking operator: the exports
# without features (its pads and factors are uniform residues, not attributes).
CAF_HOUSEHOLD = ["type_foyer", "position_plafond_css", "a_rsa", "a_aah", "a_ppa",
                 "aah_taux_plein", "opposition"]
DETECTOR_VIEW = [*CAF_HOUSEHOLD, "trouve_cpam", *[f"bit_{b}" for b in status_masks.BITS]]
LINKER_COLUMNS = {"caf": ["handle", "foyer", "adulte", "opposition"],
                  "cpam": ["handle", "foyer", "opposition"]}


def timed(label: str, seconds: dict[str, float], fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    seconds[label] = round(time.perf_counter() - t, 3)
    return out


def run_protocol(caf: pl.DataFrame, cpam: pl.DataFrame, links: pl.DataFrame,
                 secrets: dict[str, bytes]) -> tuple[pl.DataFrame, dict[str, float]]:
    """Every party's step, in order; returns the detecting operator's bits and the timings."""
    benefits, coverage = AGENCIES[0], AGENCIES[1]
    sec: dict[str, float] = {}
    masked = timed("cpam_masques", sec, lambda: status_masks.mask(
        status_masks.person_bits(cpam), secrets[coverage]))
    rho = timed("caf_facteurs", sec, status_masks.factors, caf["foyer"], secrets[benefits])
    sums = timed("liaison_sommes", sec, linking_sums, caf, rho, masked, links)
    part = timed("caf_parts", sec, status_masks.caf_shares, caf, rho, links, secrets[benefits])
    bits = timed("detection_demasquage", sec, unmask, sums, part)
    return bits, sec


def found(caf: pl.DataFrame, links: pl.DataFrame) -> pl.DataFrame:
    """The linking operator's flag: an adult of the household is linked (foyer, trouve_cpam)."""
    linked = pl.col("handle").is_in(links["caf_handle"].implode())
    return caf.group_by("foyer").agg(
        (pl.col("adulte").fill_null(False) & linked).any().alias("trouve_cpam"))


def detector_view(caf: pl.DataFrame, links: pl.DataFrame, bits: pl.DataFrame) -> pl.DataFrame:
    """One row per CAF household, the columns the detecting operator would hold, with the
    design's minimisations (docs/SEPARATION.md): a household the CAF knows opposed leaves its
    flag only; the CSS bits reach D for found households only (no rule reads them elsewhere),
    the opposition bit for every linked household; a_ppa is sent only where aah_isole reads it
    (a lone AAH recipient), the reverse rule getting a_minima per linked CPAM handle instead."""
    features = caf.with_columns([pl.lit(None, dtype=pl.Boolean).alias(c) for c in CAF_HOUSEHOLD
                                 if c not in caf.columns])
    households = features.group_by("foyer").agg(pl.col(c).first() for c in CAF_HOUSEHOLD)
    view = (households.join(found(caf, links), on="foyer")
            .join(bits.rename({b: f"bit_{b}" for b in status_masks.BITS}), on="foyer",
                  how="left"))
    css = [f"bit_{b}" for b in status_masks.BITS if b != "opposition"]
    lone_aah = pl.col("a_aah") & (pl.col("type_foyer") == "personne_seule")
    opposed = pl.col("opposition").fill_null(False)
    return view.with_columns(
        [pl.when(pl.col("trouve_cpam")).then(pl.col(c)).alias(c) for c in css]
    ).with_columns(
        a_ppa=pl.when(lone_aah.fill_null(False)).then(pl.col("a_ppa"))
        .otherwise(pl.col("a_ppa") & False),
    ).with_columns(
        [pl.when(~opposed).then(pl.col(c)).alias(c)
         for c in DETECTOR_VIEW if c != "opposition"])


def same_as_engine(view: pl.DataFrame, households: pl.DataFrame) -> dict[str, int]:
    """Households where a column the rules read differs from today's engine (in the clear),
    where a rule reads it: the opposition everywhere, the rest outside the households the CAF
    knows opposed, the CSS columns for found households only."""
    b = {x: pl.col(f"bit_{x}").fill_null(False) for x in status_masks.BITS}
    derived = view.select(
        "foyer", "a_ppa", "a_aah", "type_foyer", "trouve_cpam",
        css_active=b["css_active"],
        css_fin_proche=b["css_active"] & ~b["css_en_cours"],
        css_terminee_recente=b["css_terminee_recente"],
        css_illisible_membre=b["css_illisible"],
        opposition_caf=pl.col("opposition").fill_null(False),
        opposition=pl.col("opposition").fill_null(False) | b["opposition"])
    both = derived.join(households, on="foyer", suffix="_moteur")
    assert both.height == households.height == view.height
    kept = ~pl.col("opposition_caf")
    read_by = {"opposition": pl.lit(True), "trouve_cpam": kept,
               "a_ppa": kept & pl.col("a_aah") & (pl.col("type_foyer") == "personne_seule")}
    found_kept = kept & pl.col("trouve_cpam")
    return {c: both.filter(read_by.get(c, found_kept).fill_null(False)
                           & (pl.col(c) != pl.col(f"{c}_moteur").fill_null(False))).height
            for c in ("opposition", "trouve_cpam", "a_ppa", "css_active", "css_fin_proche",
                      "css_terminee_recente", "css_illisible_membre")}


def timing_1m(secrets: dict[str, bytes]) -> dict[str, object]:
    """The protocol on the 1 M bench exports, with a random one-to-one link of 95 % of the
    CPAM rows (the cost depends on the row and link counts, not on which pairs are linked)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import scale  # the scale bench's cached exports, only when asked

    folder, _ = scale.cached_exports(1_000_000)
    benefits, coverage = AGENCIES[0], AGENCIES[1]
    caf = pl.read_parquet(folder / f"{benefits}.pseudo.parquet",
                          columns=["handle", "foyer", "adulte"])
    cpam = pl.read_parquet(folder / f"{coverage}.pseudo.parquet",
                           columns=["handle", "statut_css", "opposition"])
    rng = np.random.default_rng(0)
    n = int(min(caf.height, cpam.height) * 0.95)
    links = pl.DataFrame({
        "caf_handle": caf["handle"].gather(rng.permutation(caf.height)[:n]),
        "cpam_handle": cpam["handle"].gather(rng.permutation(cpam.height)[:n])})
    t = time.perf_counter()
    bits, sec = run_protocol(caf, cpam, links, secrets)
    return {"lignes_caf": caf.height, "lignes_cpam": cpam.height, "liens": n,
            "foyers_lies": bits.height, "secondes": sec,
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
    bits, seconds = run_protocol(frames[benefits], frames[coverage], link_frame, secrets)
    view = detector_view(frames[benefits], link_frame, bits)
    differences = same_as_engine(view, households)
    linker = {a: frames[a].select(LINKER_COLUMNS[a]) for a in (benefits, coverage)}
    protocol = {
        "ecarts_avec_le_moteur": differences,
        "vue_operateur_detection": shares(view, DETECTOR_VIEW),
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
            **{f"sommes masquées : liaison, {a}": v
               for a, v in protocol["vue_operateur_liaison"].items()}}
    for name, v in prot.items():
        print(f"{name:<36} {v['part_k1']:>8.2%} {v['part_k_moins_5']:>8.2%}")
    print(f"écarts avec le moteur en clair : {differences}")
    print(f"secondes (échantillon) : {seconds}")
    if "a_1M" in protocol:
        print(f"à 1 M : {protocol['a_1M']}")
    print(f"objectifs : k = 1 < {kanonymity.TARGET_K1:.0%}, k < 5 < {kanonymity.TARGET_K_LT5:.0%}"
          f"\n→ {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
