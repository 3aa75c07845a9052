"""What the Bloom-filter residue alone can add to stage 1 (`make bench-bloom-residue`).

For each case of the linkage bench (FEBRL4, FEBRL3, pseudopeople, the project's synthetic data
with the realiste profile at 1x, 3x, 5x noise; 3,000 households, seed 20261122, built as
bench/linkage.py builds them), or each dataset folder given (raw/ + truth/persons.csv):
the real agency chain (ingest, pseudonymise), the current central stage 1 (exact keys +
Fellegi-Sunter, pipeline.central.match.link), then the residue exchange as the agencies run it:
the handles stage 1 left unlinked (clerical pairs included) are written as requests, each agency
encodes them with `pipeline.agency.residue.encode_residue` (unsigned), and this script compares
every residue pair by Hamming similarity and keeps mutual best matches above a threshold. No
household context, no EM: a floor for what the centre's residue stage (its own code) can do.
Prints, per threshold, the residue links' precision and the whole linkage's precision, recall
and F1 against the truth, next to Splink's F1 from bench/results/linkage.json (same cases);
writes bench/results/bloom_residue.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NONRECOURS_QUIET", "1")

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common_linkage import CONVENTION, agency_chain, truth_by_handles

from pipeline.agency.pseudonymise.prepare import prepare_components
from pipeline.agency.residue import encode_residue
from pipeline.common.quality import precision_recall_f1
from pipeline.shared import bloom
from pipeline.shared.providers import AGENCIES

RESULT = Path(__file__).parent / "results" / "bloom_residue.json"
LINKAGE = Path(__file__).parent / "results" / "linkage.json"
SEED, HOUSEHOLDS = 20261122, 3000
THRESHOLDS = (0.54, 0.56, 0.58, 0.60, 0.62, 0.64, 0.66, 0.68, 0.70, 0.72, 0.75, 0.80)
ROW_BLOCK = 256


def similarity_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len a, len b) float32 similarity, 1 - Hamming / bits, in row blocks."""
    ua, ub = a.view(np.uint64), b.view(np.uint64)
    bits = 64 * a.shape[1]
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.float32)
    for s in range(0, a.shape[0], ROW_BLOCK):
        x = ua[s:s + ROW_BLOCK, None, :] ^ ub[None, :, :]
        out[s:s + ROW_BLOCK] = 1.0 - np.bitwise_count(x).sum(axis=2) / bits
    return out


def mutual_best(sim: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) each the other's best (first in order on ties) with sim >= threshold."""
    if sim.size == 0:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    best_j = sim.argmax(axis=1)
    best_i = sim.argmax(axis=0)
    i = np.arange(sim.shape[0])
    keep = (best_i[best_j] == i) & (sim[i, best_j] >= threshold)
    return i[keep], best_j[keep]


def _lines(work: Path, agency: str, handles: pl.Series) -> pl.DataFrame:
    h = pl.read_parquet(work / agency / "handles.parquet").select("handle", "line")
    return pl.DataFrame({"handle": handles}).join(h, on="handle", how="left")


def run_case(ds: Path, tmp: Path, variants: dict[str, bloom.BloomParams]) -> dict:
    from pipeline.central.match import link

    work = tmp / f"{ds.name}_work"
    chain = agency_chain(ds, work)
    truth = truth_by_handles(ds / "truth" / "persons.csv", work, work / "truth.parquet")
    res = link(chain["caf"], chain["cpam"], work / "central", truth=truth)
    links = pl.read_parquet(res.links).select("caf_handle", "cpam_handle")
    ref = pl.read_parquet(truth)
    requests, residue = {}, {}
    t0 = time.perf_counter()
    for agency, side in zip(AGENCIES, ("caf_handle", "cpam_handle"), strict=True):
        export = pl.read_parquet(work / agency / "export" / f"{agency}.pseudo.parquet")
        free = (export.filter(~pl.col("opposition"))
                .join(links.select(pl.col(side).alias("handle")), on="handle", how="anti")
                ["handle"].sort())
        req = work / "residu" / bloom.RESIDUE_REQUEST.format(provider=agency)
        req.parent.mkdir(parents=True, exist_ok=True)
        pl.DataFrame({"handle": free}).write_csv(req)
        requests[agency] = free.len()
        residue[agency] = pl.read_parquet(encode_residue(
            agency, work / agency, work / agency / "keys", CONVENTION, req,
            work / agency / "residu", sign=False))
    encode_s = round(time.perf_counter() - t0, 3)
    stage1 = precision_recall_f1(links.join(ref, on=["caf_handle", "cpam_handle"]).height,
                                 links.height, ref.height, digits=5)
    truth_in_residue = ref.join(residue["caf"].select(pl.col("handle").alias("caf_handle")),
                                on="caf_handle").join(
        residue["cpam"].select(pl.col("handle").alias("cpam_handle")), on="cpam_handle").height
    out = {"dataset": ds.name, "stage1": {"links": links.height, **stage1},
           "residue_rows": requests, "true_pairs_in_residue": truth_in_residue,
           "encode_s": encode_s, "variants": {}}
    ingested = {a: pl.read_parquet(work / a / "ingested.parquet") for a in AGENCIES}
    for name, p in variants.items():
        lanes = {}
        for agency in AGENCIES:
            if name == "bloom.yaml":
                lanes[agency] = residue[agency].select(bloom.LANES).to_numpy()
                continue
            rows = _lines(work, agency, residue[agency]["handle"]).join(
                ingested[agency], on="line", how="left")
            comp = prepare_components(rows, agency).select(
                [pl.col(c).cast(pl.String) for c in p.components])
            lanes[agency] = bloom.encode_array(comp, _secret(work), p=p)
        sim = similarity_matrix(lanes["caf"], lanes["cpam"])
        rows_out = []
        for th in THRESHOLDS:
            i, j = mutual_best(sim, th)
            extra = pl.DataFrame({"caf_handle": residue["caf"]["handle"].gather(i),
                                  "cpam_handle": residue["cpam"]["handle"].gather(j)})
            tp_res = extra.join(ref, on=["caf_handle", "cpam_handle"]).height
            allk = pl.concat([links, extra])
            tp = allk.join(ref, on=["caf_handle", "cpam_handle"]).height
            rows_out.append({"seuil": th, "liens_residu": extra.height, "vrais_residu": tp_res,
                             **precision_recall_f1(tp, allk.height, ref.height, digits=5)})
        best = max(rows_out, key=lambda r: r["f1"])
        out["variants"][name] = {"par_seuil": rows_out, "meilleur": best}
        print(f"{ds.name:14s} {name:22s} étape 1 F1 {stage1['f1']:.5f} -> {best['f1']:.5f} "
              f"(seuil {best['seuil']}, +{best['vrais_residu']}/{best['liens_residu']} liens, "
              f"{truth_in_residue} vraies paires dans le résidu {requests})")
    return out


def _secret(work: Path) -> bytes:
    from pipeline.trust.convention import load_convention
    from pipeline.trust.keys import load_linkage_key

    conv = load_convention(CONVENTION)
    return load_linkage_key(work / "caf" / "keys", conv.id, convention=conv).secret


def build_cases(root: Path, names: list[str]) -> list[Path]:
    """The linkage bench's cases, written under `root` (one folder per case name)."""
    import linkage_data

    from pipeline.synth import generate

    out = []
    for name in names:
        ds = root / name
        if name in ("febrl4", "febrl3"):
            getattr(linkage_data, name)(ds)
        elif name == "pseudopeople":
            linkage_data.census(ds)
        elif name.startswith("synth_realiste_"):
            noise = float(name.removeprefix("synth_realiste_").removesuffix("x"))
            generate(HOUSEHOLDS, SEED, noise=noise, out=ds, noise_profile="realiste")
        else:
            raise SystemExit(f"cas inconnu : {name}")
        out.append(ds)
    return out


def splink_f1() -> dict[str, float]:
    if not LINKAGE.exists():
        return {}
    return {c["case"]: c["splink"]["f1"] for c in json.loads(LINKAGE.read_text())["cases"]}


def main() -> None:
    from bloom_separation import variants as all_variants

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("datasets", type=Path, nargs="*", help="dataset folders (default: the cases)")
    ap.add_argument("--cases", default="febrl4,febrl3,pseudopeople,synth_realiste_1x,"
                    "synth_realiste_3x,synth_realiste_5x")
    ap.add_argument("--variants", default="bloom.yaml",
                    help="names of bench/bloom_separation.py variants separated by ;, or all")
    ap.add_argument("--out", type=Path, default=RESULT)
    args = ap.parse_args()
    known = all_variants()
    names = list(known) if args.variants == "all" else args.variants.split(";")
    variants = {n: known[n] for n in names}
    reference = splink_f1()
    with tempfile.TemporaryDirectory() as tmp:
        datasets = args.datasets or build_cases(Path(tmp) / "data", args.cases.split(","))
        cases = [run_case(ds, Path(tmp), variants) for ds in datasets]
    for case in cases:
        case["splink_f1"] = reference.get(case["dataset"])
        best = case["variants"][names[0]]["meilleur"]["f1"]
        if case["splink_f1"] is not None:
            ref = case["splink_f1"]
            print(f"{case['dataset']:20s} {names[0]} : F1 {best:.5f}, Splink {ref:.5f}, "
                  f"écart {best - ref:+.5f}")
    result = {"cases": cases, "charge": os.getloadavg(),
              "note": "résidu par meilleur appariement mutuel au-dessus du seuil, sans contexte "
                      "du foyer ni EM : un plancher pour l'étape résidu de l'opérateur"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", "utf-8")


if __name__ == "__main__":
    main()
