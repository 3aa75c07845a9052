"""Separation and speed of the residue encoding (pipeline/shared/bloom.py): `make bench-bloom`.

On a dataset with ground truth (default: sample_data, ingested into a temporary folder), encodes
both agencies' rows and prints the similarity distributions of
- the true CAF x CPAM pairs, all and those the exact keys cannot link (names or date differ),
- controlled perturbations of CAF rows against themselves (one surname typo, wrong birth year,
  names swapped, a typo + a wrong year, birth date blank, two typos),
- random CAF x CPAM pairs (strangers),
for bloom.yaml and a few variants (diffusion t, positions per q-gram and per date part), then
times the encoding of 100,000 synthetic rows. Writes bench/results/bloom_separation.json.
The key is a fixed stand-in (the distributions do not depend on which key).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NONRECOURS_QUIET", "1")

import numpy as np
import polars as pl

from pipeline.agency.pseudonymise.prepare import prepare_components
from pipeline.agency.pseudonymise.synthetic import ingested as synthetic_ingested
from pipeline.shared import bloom
from pipeline.shared.providers import AGENCIES

KEY = bytes(range(32))
RESULT = Path(__file__).parent / "results" / "bloom_separation.json"
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95)


def _ingest(dataset: Path, tmp: Path) -> dict[str, pl.DataFrame]:
    from pipeline.agency.ingest.api import ingest

    out = {}
    for agency in AGENCIES:
        ingest(agency, dataset / "raw" / f"{agency}_extract.csv", tmp / agency)
        out[agency] = pl.read_parquet(tmp / agency / "ingested.parquet")
    return out


def _typo(s: pl.Series, rng: np.random.Generator) -> pl.Series:
    """One substitution at a random position of each value (vectorised)."""
    n = s.len()
    lens = s.str.len_chars().fill_null(1).to_numpy()
    pos = (rng.random(n) * np.maximum(lens, 1)).astype(np.int64)
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))[rng.integers(0, 26, n)]
    f = pl.DataFrame({"s": s, "p": pos, "c": letters})
    return f.select(pl.concat_str([pl.col("s").str.slice(0, pl.col("p")), pl.col("c"),
                                   pl.col("s").str.slice(pl.col("p") + 1)])).to_series()


def perturbations(comp: pl.DataFrame, rng: np.random.Generator) -> dict[str, pl.DataFrame]:
    year = (comp["annee"].cast(pl.Int32) + rng.integers(1, 6, comp.height)).cast(pl.String)
    return {
        "faute_nom": comp.with_columns(nom=_typo(comp["nom"], rng)),
        "annee_fausse": comp.with_columns(annee=year),
        "noms_inverses": comp.with_columns(nom=comp["prenom1"], prenom1=comp["nom"]),
        "faute_et_annee": comp.with_columns(nom=_typo(comp["nom"], rng), annee=year),
        "deux_fautes": comp.with_columns(nom=_typo(comp["nom"], rng),
                                         prenom1=_typo(comp["prenom1"], rng)),
        "date_vide": comp.with_columns(jour=None, mois=None, annee=None),
        "jour_mois_faux": comp.with_columns(
            jour=pl.lit("28"), mois=pl.lit("02")),
    }


def _q(x: np.ndarray) -> dict[str, float]:
    out = {f"p{int(q * 100):02d}": round(float(np.quantile(x, q)), 4) for q in QUANTILES}
    out["n"] = int(x.size)
    return out


def measure(p: bloom.BloomParams, caf_p: pl.DataFrame, cpam_p: pl.DataFrame,
            pairs: pl.DataFrame, hard: np.ndarray, rng_seed: int,
            hardened: bool = True) -> dict:
    """Distributions under parameters `p` (pairs: caf row i, cpam row j of true pairs)."""
    caf = caf_p.select([pl.col(c).cast(pl.String) for c in p.components])
    cpam = cpam_p.select([pl.col(c).cast(pl.String) for c in p.components])
    a = bloom.encode_array(caf, KEY, hardened=hardened, p=p)
    b = bloom.encode_array(cpam, KEY, hardened=hardened, p=p)
    rng = np.random.default_rng(rng_seed)
    ri = rng.integers(0, caf.height, 50_000)
    rj = rng.integers(0, cpam.height, 50_000)
    rand = bloom.similarity(a[ri], b[rj], hardened=hardened)
    true = bloom.similarity(a[pairs["i"].to_numpy()], b[pairs["j"].to_numpy()],
                            hardened=hardened)
    hi = float(np.quantile(rand, 0.999))
    out = {"aleatoires": {**_q(rand), "p99.9": round(hi, 4), "max": round(float(rand.max()), 4)},
           "vraies_paires": _q(true), "vraies_hors_cles_exactes": _q(true[hard]),
           "part_vraies_hors_cles_au_dessus_p99.9_aleatoires":
               round(float((true[hard] > hi).mean()), 4) if hard.any() else None}
    out["lsh"] = lsh_rates(a, b, pairs, hard, ri, rj)
    rng = np.random.default_rng(rng_seed + 1)
    for name, variant in perturbations(caf, rng).items():
        v = bloom.encode_array(variant, KEY, hardened=hardened, p=p)
        s = bloom.similarity(a, v, hardened=hardened)
        out[name] = {**_q(s), "au_dessus_p99.9_aleatoires": round(float((s > hi).mean()), 4)}
    return out


def _bands(x: np.ndarray, w: int) -> np.ndarray:
    """(rows, bands) uint64 band values, bands laid out as pipeline.shared.bloom.lsh_bands."""
    u = x.view(np.uint64)
    per = 64 // w
    return np.stack([(u[:, lane] >> np.uint64(k * w)) & np.uint64((1 << w) - 1)
                     for lane in range(u.shape[1]) for k in range(per)], axis=1)


def lsh_rates(a: np.ndarray, b: np.ndarray, pairs: pl.DataFrame, hard: np.ndarray,
              ri: np.ndarray, rj: np.ndarray) -> dict:
    """Share of hard true pairs / random pairs that agree on at least one band, per width."""
    out = {}
    for w in (10, 12, 14, 16):
        ba, bb = _bands(a, w), _bands(b, w)
        true = (ba[pairs["i"].to_numpy()] == bb[pairs["j"].to_numpy()]).any(axis=1)
        rand = (ba[ri] == bb[rj]).any(axis=1)
        out[f"bits_par_bande={w}"] = {
            "bandes": ba.shape[1],
            "rappel_vraies_hors_cles": round(float(true[hard].mean()), 4),
            "part_paires_aleatoires_candidates": round(float(rand.mean()), 5)}
    return out


def variants() -> dict[str, bloom.BloomParams]:
    base = bloom.PARAMS

    def items(nom: int, date: int) -> tuple[bloom.ItemSpec, ...]:
        return tuple(dataclasses.replace(
            it, hashes=nom if it.kind == "qgrams" else (date if it.label != "sexe"
                                                        else it.hashes))
            for it in base.items)

    out = {"bloom.yaml": base}
    for t in (1, 2, 3, 5):
        out[f"t={t}"] = dataclasses.replace(base, t=t)
    out["équilibré" if not base.balance else "non équilibré"] = dataclasses.replace(
        base, balance=not base.balance)
    for nom, date in ((6, 12), (15, 30), (10, 10), (10, 30)):
        out[f"q-gramme={nom},date={date}"] = dataclasses.replace(base, items=items(nom, date))
    for k in (6, 20):
        out[f"sexe:{k}"] = dataclasses.replace(base, items=tuple(
            dataclasses.replace(it, hashes=k) if it.label == "sexe" else it
            for it in base.items))
    present = {c for it in base.items for c in it.components}
    for extra, kind, label, k in (("code_commune", "value", "commune", 20),
                                  ("code_commune", "value", "commune", 10),
                                  ("prenom2", "qgrams", "nom", 10)):
        if extra in present:  # already in bloom.yaml: the variant is without it
            out[f"-{extra}"] = dataclasses.replace(base, items=tuple(
                it for it in base.items if extra not in it.components))
            continue
        out[f"+{extra}:{k}"] = dataclasses.replace(base, items=(*base.items, bloom.ItemSpec(
            label, kind, (extra,), k)))
    return out


def speed(rows: int) -> dict:
    """Encoding alone (components -> lanes), then the whole agency step (`encode_residue`:
    read handles and extract, select, prepare, encode, identifier scan, write; unsigned) with
    every row requested, on `rows` synthetic CAF rows pseudonymised under the demo convention."""
    from pipeline.agency.pseudonymise.core import pseudonymise
    from pipeline.agency.residue import encode_residue
    from pipeline.common.tables import write_parquet
    from pipeline.trust.demo import install_demo_keys

    df = synthetic_ingested("caf", rows, seed=3)
    comp = bloom.components_of(prepare_components(df, "caf"))
    t0 = time.perf_counter()
    bloom.encode(comp, KEY)
    dt_ = time.perf_counter() - t0
    out = {"lignes": rows, "secondes": round(dt_, 3), "lignes_par_seconde": round(rows / dt_)}
    root = Path(__file__).resolve().parents[1]
    convention = root / "conventions" / "demo-flers.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "caf"
        work.mkdir(mode=0o700)
        write_parquet(df, work / "ingested.parquet", sort_by=["line"], private=True)
        install_demo_keys("caf", work / "keys", source=root / "sample_data" / "keys")
        pseudonymise("caf", work, work / "keys", convention, work / "export", seed=1,
                     sign=False)
        handles = pl.read_parquet(work / "handles.parquet").filter(~pl.col("opposition"))
        request = Path(tmp) / "demande_caf.csv"
        handles.select("handle").sort("handle").write_csv(request)
        t0 = time.perf_counter()
        encode_residue("caf", work, work / "keys", convention, request, Path(tmp) / "r",
                       sign=False)
        step_s = time.perf_counter() - t0
    out["etape_residu"] = {"lignes": handles.height, "secondes": round(step_s, 3),
                           "lignes_par_seconde": round(handles.height / step_s)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", type=Path, default=Path("sample_data"))
    ap.add_argument("--speed-rows", type=int, default=100_000, help="0: no speed run")
    ap.add_argument("--out", type=Path, default=RESULT)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ing = _ingest(args.dataset, Path(tmp))
    caf_p = prepare_components(ing["caf"], "caf").with_row_index("i")
    cpam_p = prepare_components(ing["cpam"], "cpam").with_row_index("j")
    truth = pl.read_csv(args.dataset / "truth" / "persons.csv", separator=";",
                        schema_overrides={"caf_line": pl.Int64, "cpam_line": pl.Int64})
    pairs = (truth.drop_nulls(["caf_line", "cpam_line"])
             .join(caf_p.select("i", pl.col("line").cast(pl.Int64).alias("caf_line"),
                                pl.col("nom").alias("n1"), pl.col("nom_usage").alias("u1"),
                                pl.col("prenom1").alias("f1"), pl.col("dob").alias("d1")),
                   on="caf_line")
             .join(cpam_p.select("j", pl.col("line").cast(pl.Int64).alias("cpam_line"),
                                 pl.col("nom").alias("n2"), pl.col("prenom1").alias("f2"),
                                 pl.col("dob").alias("d2")), on="cpam_line"))
    exact = (((pl.col("n1") == pl.col("n2")) | (pl.col("u1") == pl.col("n2")))
             & (pl.col("f1") == pl.col("f2")) & (pl.col("d1") == pl.col("d2"))).fill_null(False)
    hard = pairs.select(~exact).to_series().to_numpy()
    results = {"jeu": str(args.dataset), "lignes": {"caf": caf_p.height, "cpam": cpam_p.height},
               "vraies_paires": pairs.height, "vraies_hors_cles_exactes": int(hard.sum()),
               "configurations": {}}
    for name, p in variants().items():
        results["configurations"][name] = measure(p, caf_p, cpam_p, pairs, hard, 11)
        r = results["configurations"][name]
        print(f"{name:24s} aléatoires p50 {r['aleatoires']['p50']:.3f} p99.9 "
              f"{r['aleatoires']['p99.9']:.3f} | vraies hors clés p05 "
              f"{r['vraies_hors_cles_exactes']['p05']:.3f} p50 "
              f"{r['vraies_hors_cles_exactes']['p50']:.3f} au-dessus "
              f"{r['part_vraies_hors_cles_au_dessus_p99.9_aleatoires']} | "
              + " ".join(f"{k} {r[k]['p05']:.3f}/{r[k]['au_dessus_p99.9_aleatoires']:.3f}"
                         for k in ("faute_nom", "annee_fausse", "noms_inverses",
                                   "faute_et_annee", "deux_fautes", "date_vide")))
    print("LSH (bloom.yaml) :", json.dumps(results["configurations"]["bloom.yaml"]["lsh"]))
    results["configurations"]["controle_non_durci (Dice)"] = measure(
        bloom.PARAMS, caf_p, cpam_p, pairs, hard, 11, hardened=False)
    results["vitesse"] = speed(args.speed_rows) if args.speed_rows else None
    results["charge"] = os.getloadavg()
    print(f"vitesse : {results['vitesse']} (charge {results['charge']})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", "utf-8")


if __name__ == "__main__":
    main()
