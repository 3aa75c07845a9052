"""Splink 5 as the plaintext peer of the scale bench (`make bench-scale-splink`).

The scale bench (bench/scale.py) links 1 M x 1 M token exports built from the component ids of
synthetic persons. Here the same persons (same seed, same random draws, so the same handles and
the same truth pairs) are rendered as plaintext and linked by Splink 5 on DuckDB:

- surnames and first names: a pronounceable string per id; the scale bench's surname "typo"
  (another id of the same phonetic group, id // 3) differs from the true name by its last letter,
  as a one-letter typo does, so Splink's Jaro-Winkler levels see it; any other surname error is a
  different name;
- NIR, parent NIR (CAF children: both parents'; CPAM children: the one they are attached to),
  CAF usage name, birth date AAAA-MM-JJ, sex, commune: as the tokens' components.

The project's own link (bench/scale.py's `bench`) runs first in the same process, so both sides
see the same machine load (or, with --ours-from-json, its figures come from scale.json).
Comparisons are those of bench/splink_peer.py (the linkage bench's peer); blocking rules and
training blocks are sized for a million records per side (the peer's `dob` and `nom` blocks
alone would make ~10^8 pairs here). Splink runs in a child process: wall time (imports
included, as for the project's figure) and that child's peak RSS. Decision as in the peer:
match probability >= 0.5, then greedy one-to-one by weight (timed apart: bench glue, a Python
loop). Figures to bench/results/scale_splink.json; the time ratio is printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale

from pipeline.common.quality import precision_recall_f1

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scale_splink.json"
SEED = 20261122  # bench/scale.py `synthesise` default
# Splink's dataset names: the benefits side (CAF) and the coverage side (CPAM); in link_only
# mode the left record of a pair is from the first name in sort order, here the CAF's.
SIDES = ("benefits", "coverage")

# pronounceable syllables: 20 consonants x 5 vowels
_SYLLABLES = [c + v for c in "BCDFGHJKLMNPRSTVWXYZ" for v in "AEIOU"]
_VARIANT = ["N", "R", "L"]  # last letter: the three ids of one phonetic group


def _spelled(ids: pl.Expr, syllables: int) -> pl.Expr:
    """`syllables` syllables spelling a non-negative integer id (base 100)."""
    return pl.concat_str([(ids // (100 ** k) % 100).replace_strict(
        list(range(100)), _SYLLABLES, return_dtype=pl.String) for k in range(syllables)])


def surname(ids: str) -> pl.Expr:
    """Surname of an id: the group id // 3 spelled, then one letter for id % 3."""
    variant = pl.col(ids) % 3
    last = pl.when(variant == 0).then(pl.lit(_VARIANT[0])).when(variant == 1).then(
        pl.lit(_VARIANT[1])).otherwise(pl.lit(_VARIANT[2]))
    return pl.concat_str([_spelled(pl.col(ids) // 3, 3), last])


def first_name(ids: str) -> pl.Expr:
    return pl.concat_str([_spelled(pl.col(ids), 2), pl.lit("E")])


def _nir(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String).str.zfill(13)


def populations(n: int, seed: int = SEED, noise: float = 1.0
                ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(caf, cpam, truth) plaintext of one scale-bench chunk: the random draws of
    `scale._chunk`, in its order, so the handles and truth pairs are the same."""
    if n > scale.CHUNK:
        raise SystemExit(f"au plus {scale.CHUNK:,} personnes par fichier ici")
    rng = np.random.default_rng(seed)
    shared = int(n * 0.92)
    pop = scale.persons(shared + 2 * (n - shared), seed).with_columns(nir_id=pl.col("pid"))
    caf = pop.slice(0, n)
    cpam = scale._noise_cpam(pl.concat([pop.slice(0, shared), pop.slice(n, n - shared)]),
                             rng, noise)
    caf = caf.with_columns(scale._handles(n, rng).alias("handle"))
    cpam = cpam.with_columns(scale._handles(cpam.height, rng).alias("handle"))
    truth = caf.select("pid", caf_handle="handle").join(
        cpam.select("pid", cpam_handle="handle"), on="pid").select("caf_handle", "cpam_handle")
    child = pl.col("child")
    common = dict(
        nir=pl.when(pl.col("has_nir")).then(_nir(pl.col("nir_id"))), nom=surname("nom"),
        prenom1=first_name("prenom1"),
        dob=pl.format("{}-{}-{}", pl.col("annee").cast(pl.String),
                      pl.col("mois").cast(pl.String).str.zfill(2),
                      pl.col("jour").cast(pl.String).str.zfill(2)),
        sexe=pl.col("sexe").cast(pl.String),
        commune=pl.col("commune").cast(pl.String).str.zfill(5))
    caf = caf.select(
        pl.col("handle").alias("unique_id"), **common,
        nir_p1=pl.when(child & (pl.col("p1") >= 0)).then(_nir(pl.col("p1"))),
        nir_p2=pl.when(child & (pl.col("p2") >= 0)).then(_nir(pl.col("p2"))),
        nom_usage=pl.when(pl.col("married")).then(surname("usage_name")))
    cpam = cpam.select(
        pl.col("handle").alias("unique_id"), **common,
        nir_p1=pl.when(child).then(_nir(pl.col("attached"))),
        nir_p2=pl.lit(None, pl.String), nom_usage=pl.lit(None, pl.String))
    return caf, cpam, truth


# Blocking sized for 1 M per side: every rule's blocks stay small (the pair counts are printed).
PREDICT_RULES = [
    "l.nir = r.nir",
    "l.nir_p1 = r.nir_p1", "l.nir_p2 = r.nir_p1",
    "l.nom = r.nom AND l.dob = r.dob",
    "l.prenom1 = r.prenom1 AND l.dob = r.dob",
    "l.nom_usage = r.nom AND l.dob = r.dob",
    "l.nom = r.nom AND l.prenom1 = r.prenom1 AND substr(l.dob, 1, 4) = substr(r.dob, 1, 4)",
]
EM_BLOCKS = ["l.nir = r.nir", "l.nom = r.nom AND l.dob = r.dob"]


def block_pairs(a: pl.DataFrame, b: pl.DataFrame) -> dict[str, int]:
    """Pairs each predict rule generates on its own (sum over keys of left x right counts)."""
    out = {}
    for rule in PREDICT_RULES:
        terms = [t.strip() for t in rule.split(" AND ")]
        left = [pl.col(t.split(" = ")[0][2:]) if not t.startswith("substr") else
                pl.col("dob").str.slice(0, 4) for t in terms]
        right = [pl.col(t.split(" = ")[1][2:]) if not t.startswith("substr") else
                 pl.col("dob").str.slice(0, 4) for t in terms]
        ka = a.select([e.alias(f"k{i}") for i, e in enumerate(left)]).drop_nulls()
        kb = b.select([e.alias(f"k{i}") for i, e in enumerate(right)]).drop_nulls()
        keys = [f"k{i}" for i in range(len(terms))]
        counts = ka.group_by(keys).len("l").join(kb.group_by(keys).len("r"), on=keys)
        out[rule] = int((counts["l"] * counts["r"]).sum())
    return out


def child(data: Path, out: Path) -> None:
    """Splink 5 on the two plaintext files (runs alone in a child process)."""
    import logging

    import duckdb
    import splink
    from splink import DuckDBAPI, Linker, block_on
    from splink_peer import _settings

    logging.getLogger("splink").setLevel(logging.ERROR)
    t0 = time.perf_counter()
    con = duckdb.connect()
    for name in SIDES:
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet(?)",
                    [str(data / f"{name}.parquet")])
    db = DuckDBAPI(connection=con)
    left, right = (pl.read_parquet(data / f"{n}.parquet", n_rows=50_000) for n in SIDES)
    settings = dataclasses.replace(_settings(left, right),
                                   blocking_rules_to_generate_predictions=PREDICT_RULES)
    linker = Linker([db.register(n, dataset_display_name=n) for n in SIDES], settings,
                    log_level=None)
    timings = {"load": time.perf_counter() - t0}
    linker.training.estimate_probability_two_random_records_match(
        [block_on("nom", "prenom1", "dob")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    for rule in EM_BLOCKS:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    timings["training"] = time.perf_counter() - t0 - timings["load"]
    pred = linker.inference.predict(threshold_match_probability=0.5)
    con.execute(f"COPY (SELECT unique_id_l AS caf_handle, unique_id_r AS cpam_handle, "
                f"match_weight, source_dataset_l FROM {pred.physical_name}) "
                "TO ? (FORMAT parquet)", [str(out / "pairs.parquet")])
    timings["predict"] = time.perf_counter() - t0 - timings["load"] - timings["training"]
    (out / "child.json").write_text(json.dumps(
        {"version": splink.__version__, "peak_rss_gb": _proc_status_gb("VmHWM"),
         "timings_s": {k: round(v, 2) for k, v in timings.items()}}))


def _proc_status_gb(field: str) -> float:
    """VmHWM (peak RSS) of this process, or another field of /proc/self/status, in GB.

    Not getrusage: a child's ru_maxrss starts at its parent's peak RSS (Linux keeps the
    pre-exec high-water mark), so a child started by a process holding 3 GB reports >= 3 GB
    whatever it does; VmHWM belongs to the child's own address space.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024**2, 3)
    raise SystemExit(f"{field} absent de /proc/self/status")


def run_child(data: Path, out: Path) -> dict[str, object]:
    """The Splink child: its wall time and its own peak RSS (VmHWM, see _proc_status_gb)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", str(data), str(out)],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"Splink a échoué :\n{proc.stderr[-3000:]}")
    return {"wall_s": round(wall, 2), **json.loads((out / "child.json").read_text())}


FIGURES = ("wall_s", "peak_rss_gb", "precision", "recall", "f1")


def ours(n: int, from_json: bool) -> dict | None:
    """This project's figures for n x n: measured now with bench/scale.py's own functions
    (same machine load as the Splink run), or read from bench/results/scale.json.

    Measured now, the synthesis runs in a process of its own and the link child is started
    from this lean process: `scale.run_link` reads the child's peak through getrusage, which
    also counts the starting process's own peak (see _proc_status_gb), so the starting
    process's peak RSS is recorded beside it (an upper bound of that error)."""
    if from_json:
        path = ROOT / "bench" / "results" / "scale.json"
        runs = [r for r in json.loads(path.read_text())["runs"] if r["n"] == n] \
            if path.exists() else []
        return {k: runs[0][k] for k in FIGURES} | {"source": "bench/results/scale.json"} \
            if runs else None
    with tempfile.TemporaryDirectory(prefix="nonrecours-scale-") as tmp:
        data, out = Path(tmp) / "data", Path(tmp) / "out"
        code = ("import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[3]); "
                "import scale; print(json.dumps(scale.synthesise(int(sys.argv[1]), "
                "Path(sys.argv[2]))))")
        subprocess.run([sys.executable, "-c", code, str(n), str(data),
                        str(Path(__file__).parent)], cwd=ROOT, check=True,
                       capture_output=True)
        launcher = _proc_status_gb("VmHWM")
        r = scale.run_link(data, out, "4GB", None) | scale.quality(data, out)
    return {k: r[k] for k in FIGURES} | {
        "source": "mesuré dans ce run (fonctions de bench/scale.py)",
        "pic_rss_du_lanceur_gb": launcher, "stage_timings_s": r["stage_timings_s"]}


def check_alignment(n: int = 3_000) -> None:
    """The plaintext persons are the scale bench's: same truth pairs as `scale._chunk`."""
    expected = scale._chunk(n, SEED, 0, 1.0)[2].sort("caf_handle")
    if not populations(n)[2].sort("caf_handle").equals(expected):
        raise SystemExit("bench/scale.py a changé ses tirages : aligner populations()")


def bench(n: int) -> dict[str, object]:
    from splink_peer import one_to_one

    check_alignment()

    with tempfile.TemporaryDirectory(prefix="nonrecours-splink-") as tmp:
        data, out = Path(tmp) / "data", Path(tmp) / "out"
        data.mkdir()
        out.mkdir()
        t0 = time.perf_counter()
        caf, cpam, truth = populations(n)
        caf.write_parquet(data / f"{SIDES[0]}.parquet")
        cpam.write_parquet(data / f"{SIDES[1]}.parquet")
        pairs_per_rule = block_pairs(caf, cpam)
        synth = round(time.perf_counter() - t0, 2)
        print(f"… Splink 5 sur {n:,} x {n:,} (paires par règle de blocage : "
              f"{sum(pairs_per_rule.values()):,})", flush=True)
        res = run_child(data, out)
        pairs = pl.read_parquet(out / "pairs.parquet")
    if pairs.height and set(pairs["source_dataset_l"].unique()) != {SIDES[0]}:
        raise SystemExit("Splink : côté gauche inattendu")
    t0 = time.perf_counter()
    links = one_to_one(pairs.select("caf_handle", "cpam_handle", "match_weight"))
    res["one_to_one_s"] = round(time.perf_counter() - t0, 2)
    tp = links.join(truth, on=["caf_handle", "cpam_handle"]).height
    return {"n": n, "true_pairs": truth.height, "plaintext_synthesis_s": synth,
            "blocking_pairs_per_rule": pairs_per_rule, "pairs_over_0_5": pairs.height,
            **res, **precision_recall_f1(tp, links.height, truth.height, digits=5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=int(os.environ.get("SCALE_N", 1_000_000)))
    parser.add_argument("--ours-from-json", action="store_true",
                        help="reprendre les chiffres du projet de bench/results/scale.json")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    mine = ours(args.n, args.ours_from_json)  # first: its child's RSS is measured alone
    r = bench(args.n)
    payload = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
               "note": "Splink 5 (DuckDB) on the plaintext of the scale bench's records: wall "
                       "time of a child process (imports included) and its own peak RSS; the "
                       "greedy one-to-one step is timed apart (one_to_one_s)",
               "splink": r, "nonrecours": mine}
    if mine:
        payload["ratio_temps_splink_sur_nonrecours"] = round(r["wall_s"] / mine["wall_s"], 2)
        payload["ecart_f1_nonrecours_moins_splink"] = round(mine["f1"] - r["f1"], 5)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    print(f"Splink 5 {args.n:,} x {args.n:,} : {r['wall_s']:.1f} s, pic {r['peak_rss_gb']:.2f} Go, "
          f"précision {r['precision']:.4f}, rappel {r['recall']:.4f}, F1 {r['f1']:.4f}")
    if mine:
        print(f"nonrecours : {mine['wall_s']:.1f} s, pic {mine['peak_rss_gb']:.2f} Go, "
              f"F1 {mine['f1']:.4f} → nonrecours {payload['ratio_temps_splink_sur_nonrecours']}"
              f"x plus rapide que Splink 5")
    print(f"→ {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
