"""Splink 5 as the plaintext peer of the scale bench (`make bench-scale-splink`).

The scale bench (bench/scale.py) builds 1 M x 1 M synthetic ingested extracts and sends them
through the agency's own pseudonymisation (`pipeline.agency.pseudonymise.core.build`); its cache
keeps, beside the two exports, the ingested plaintext of the very same rows with their handles.
Splink 5 (DuckDB) links that plaintext, so both tools see the same persons, are scored against
the same truth pairs (handles) and run on the same machine in the same session:

- ours: `pipeline.central.match.link` on the two pseudonymised exports (every pass of the
  token catalogue), in a child process (`scale.run_link`);
- Splink: the fields our tokens carry, in plaintext: NIR, parent NIR (CAF: the dossier's DEM and
  CJT; CPAM: the ouvrant droit, children only), birth name and CAF usage name, first given name,
  birth date, sex, commune.

Splink settings (bench/splink_peer.py, the linkage bench's peer, as Splink's tutorials build a
model): exact NIR and parent-NIR levels, names by exact / Jaro-Winkler levels
(`NameComparison` for the first name, a custom surname comparison with a usage-name level),
`DateOfBirthComparison`, exact sex and commune; training as Splink documents it: lambda from a
deterministic rule (`estimate_probability_two_random_records_match`, recall 0.7), u by random
sampling, m by EM on two blocking rules with disjoint fields. Blocking rules sized for a million
records per side (each rule's pair count and the share of true pairs the rules reach are
printed: `blocking_recall`). Decision as ours: match probability >= 0.5, then greedy one-to-one
by weight (timed apart: bench glue, a Python loop). Wall time of each tool's child process
(imports included) and its own peak RSS; the two tools run alternately SCALE_ROUNDS times
(default 3: ours, Splink, ours, ...) so both meet the same load, and each tool's figures are its
median-time run. `ecarts` explains the F1 gap: false links of ours by pass, missed true pairs of
both tools by what differs in the plaintext. Figures to bench/results/scale_splink.json; the time
ratio and both F1 are printed, with `uptime` (the machine is shared).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale

from pipeline.common.quality import precision_recall_f1

ROOT = Path(__file__).resolve().parents[1]
# SCALE_NIR_KEY=1 (NIRs with their control key, bench/scale.py): figures to their own file
RESULTS = ROOT / "bench" / "results" / (
    "scale_splink_cle_nir.json" if scale.NIR_KEY else "scale_splink.json")
# Splink's dataset names: the benefits side (CAF) and the coverage side (CPAM); in link_only
# mode the left record of a pair is from the first name in sort order, here the CAF's.
SIDES = ("benefits", "coverage")


def populations(data: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(caf, cpam, truth): the plaintext of the rows the scale bench pseudonymised (its cache
    folder `data`), one row per handle, columns `unique_id` + the compared fields."""
    caf = pl.read_parquet(data / "caf.ingested.parquet")
    cpam = pl.read_parquet(data / "cpam.ingested.parquet")
    parents = caf.filter(pl.col("role").is_in(["DEM", "CJT"]) & pl.col("nir").is_not_null()) \
        .group_by("matricule").agg(
            nir_p1=pl.col("nir").filter(pl.col("role") == "DEM").first(),
            nir_p2=pl.col("nir").filter(pl.col("role") == "CJT").first())
    is_child = pl.col("role").is_in(["ENF", "APC"])
    common = dict(dob=pl.col("date_naissance").cast(pl.String),
                  sexe=pl.col("sexe").cast(pl.String), commune=pl.col("code_commune"))
    caf = caf.join(parents, on="matricule", how="left", maintain_order="left").select(
        pl.col("handle").alias("unique_id"), "nir",
        nir_p1=pl.when(is_child).then("nir_p1"), nir_p2=pl.when(is_child).then("nir_p2"),
        nom="nom_naissance", nom_usage="nom_usage", prenom1="prenom1", **common)
    cpam = cpam.select(
        pl.col("handle").alias("unique_id"), "nir",
        nir_p1=pl.when(pl.col("qualite") == "ENFANT").then("nir_ouvrant_droit"),
        nir_p2=pl.lit(None, pl.String), nom="nom", nom_usage=pl.lit(None, pl.String),
        prenom1="prenom1", **common)
    return caf, cpam, pl.read_parquet(data / "truth.parquet")


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


def _rule_sides(rule: str, right_suffix: str = "") -> tuple[list[pl.Expr], list[pl.Expr]]:
    """A predict rule's left and right key expressions (the rules above only); the right
    side's columns carry `right_suffix` (a joined frame)."""
    left, right = [], []
    for term in (t.strip() for t in rule.split(" AND ")):
        if term.startswith("substr"):  # substr(l.dob, 1, 4) = substr(r.dob, 1, 4)
            left.append(pl.col("dob").str.slice(0, 4))
            right.append(pl.col("dob" + right_suffix).str.slice(0, 4))
        else:
            lhs, rhs = term.split(" = ")
            left.append(pl.col(lhs[2:]))
            right.append(pl.col(rhs[2:] + right_suffix))
    return left, right


def block_pairs(a: pl.DataFrame, b: pl.DataFrame) -> dict[str, int]:
    """Pairs each predict rule generates on its own (sum over keys of left x right counts)."""
    out = {}
    for rule in PREDICT_RULES:
        left, right = _rule_sides(rule)
        keys = [f"k{i}" for i in range(len(left))]
        ka = a.select([e.alias(k) for k, e in zip(keys, left, strict=True)]).drop_nulls()
        kb = b.select([e.alias(k) for k, e in zip(keys, right, strict=True)]).drop_nulls()
        counts = ka.group_by(keys).len("l").join(kb.group_by(keys).len("r"), on=keys)
        out[rule] = int((counts["l"] * counts["r"]).sum())
    return out


def blocking_recall(a: pl.DataFrame, b: pl.DataFrame, truth: pl.DataFrame) -> float:
    """Share of the true pairs that at least one predict rule puts in a candidate pair."""
    pairs = truth.join(a, left_on="caf_handle", right_on="unique_id").join(
        b, left_on="cpam_handle", right_on="unique_id", suffix="_r")
    reached = pl.lit(False)
    for rule in PREDICT_RULES:
        cond = pl.lit(True)
        for le, re_ in zip(*_rule_sides(rule, "_r"), strict=True):
            cond = cond & (le == re_).fill_null(False)
        reached = reached | cond
    return round(pairs.select(reached.sum()).item() / truth.height, 5)


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
    import resource

    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", str(data), str(out)],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"Splink a échoué :\n{proc.stderr[-3000:]}")
    cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            **json.loads((out / "child.json").read_text())}


FIGURES = ("wall_s", "cpu_s", "peak_rss_gb", "precision", "recall", "f1")


def ours_once(data: Path) -> dict[str, object]:
    """One run of ours on the cached exports (`scale.run_link`, a child process started from
    this lean process: getrusage's peak also counts the starting process's own peak, see
    _proc_status_gb, so that peak is recorded beside it, an upper bound of the error). The
    links are kept in the cache folder (ours_links.parquet) for the analysis of the misses."""
    with tempfile.TemporaryDirectory(prefix="nonrecours-scale-") as tmp:
        out = Path(tmp) / "out"
        before = scale.uptime()
        r = scale.run_link(data, out, "4GB", None) | scale.quality(data, out)
        shutil.copy(out / "links.parquet", data / "ours_links.parquet")
    return {k: r[k] for k in FIGURES} | {
        "pic_rss_du_lanceur_gb": _proc_status_gb("VmHWM"),
        "stage_timings_s": r["stage_timings_s"], "links_by_pass": r["links_by_pass"],
        "uptime_before": before, "uptime_after": scale.uptime()}


def splink_prepare(data: Path, plain: Path) -> tuple[pl.DataFrame, dict[str, object]]:
    """Splink's plaintext inputs written under `plain`; the truth and the blocking facts."""
    t0 = time.perf_counter()
    caf, cpam, truth = populations(data)
    caf.write_parquet(plain / f"{SIDES[0]}.parquet")
    cpam.write_parquet(plain / f"{SIDES[1]}.parquet")
    facts = {"blocking_pairs_per_rule": block_pairs(caf, cpam),
             "blocking_recall": blocking_recall(caf, cpam, truth),
             "plaintext_preparation_s": round(time.perf_counter() - t0, 2)}
    return truth, facts


def splink_once(plain: Path, out: Path, truth: pl.DataFrame, data: Path) -> dict[str, object]:
    """One Splink run (child process) then the greedy one-to-one (timed apart) and its
    quality; its links kept in the cache folder (splink_links.parquet)."""
    from splink_peer import one_to_one

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    before = scale.uptime()
    res = run_child(plain, out)
    after = scale.uptime()
    pairs = pl.read_parquet(out / "pairs.parquet")
    if pairs.height and set(pairs["source_dataset_l"].unique()) != {SIDES[0]}:
        raise SystemExit("Splink : côté gauche inattendu")
    t0 = time.perf_counter()
    links = one_to_one(pairs.select("caf_handle", "cpam_handle", "match_weight"))
    res["one_to_one_s"] = round(time.perf_counter() - t0, 2)
    links.write_parquet(data / "splink_links.parquet")
    tp = links.join(truth, on=["caf_handle", "cpam_handle"]).height
    return {"pairs_over_0_5": pairs.height, **res,
            **precision_recall_f1(tp, links.height, truth.height, digits=5),
            "uptime_before": before, "uptime_after": after}


def _median_run(runs: list[dict]) -> dict:
    """The run of median wall time (odd number of runs: the middle one)."""
    return sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]


def compare(data: Path, n: int, rounds: int) -> dict[str, object]:
    """Both tools `rounds` times, alternately (ours, Splink, ours, ...), so both meet the same
    machine load; each tool's figures are those of its median-time run, every run's time and
    load kept. Ours runs first in each round: its child's RSS is measured alone."""
    with tempfile.TemporaryDirectory(prefix="nonrecours-splink-") as tmp:
        plain, out = Path(tmp) / "data", Path(tmp) / "out"
        plain.mkdir()
        truth, facts = splink_prepare(data, plain)
        print(f"… Splink 5 et nonrecours sur {n:,} x {n:,}, {rounds} tour(s) alternés (paires "
              f"par règle de blocage Splink : {sum(facts['blocking_pairs_per_rule'].values()):,}"
              f", rappel du blocage {facts['blocking_recall']})", flush=True)
        mine, theirs = [], []
        for _ in range(rounds):
            mine.append(ours_once(data))
            theirs.append(splink_once(plain, out, truth, data))
            print(f"   nonrecours {mine[-1]['wall_s']:.1f} s ({mine[-1]['cpu_s']:.0f} s CPU), "
                  f"Splink {theirs[-1]['wall_s']:.1f} s ({theirs[-1]['cpu_s']:.0f} s CPU)"
                  f" — {theirs[-1]['uptime_after']}", flush=True)
    if len({r["f1"] for r in mine}) > 1 or len({r["f1"] for r in theirs}) > 1:
        raise SystemExit("résultats différents d'un tour à l'autre : run non déterministe")
    ours_fig = _median_run(mine) | {
        "source": "mesuré dans ce run (fonctions de bench/scale.py)",
        "wall_s_all_runs": [r["wall_s"] for r in mine],
        "cpu_s_all_runs": [r["cpu_s"] for r in mine]}
    splink_fig = _median_run(theirs) | {"n": n, "true_pairs": truth.height, **facts,
                                        "wall_s_all_runs": [r["wall_s"] for r in theirs],
                                        "cpu_s_all_runs": [r["cpu_s"] for r in theirs]}
    return {"nonrecours": ours_fig, "splink": splink_fig}


def _agreement(a: str, b: str) -> pl.Expr:
    """French label of how a field compares on a pair (plaintext, bench analysis only)."""
    return (pl.when(pl.col(a).is_null() | pl.col(b).is_null()).then(pl.lit("absent"))
            .when(pl.col(a) == pl.col(b)).then(pl.lit("egal")).otherwise(pl.lit("different")))


def misses(data: Path, top: int = 12) -> dict[str, object]:
    """Why each tool's links differ from the truth, on the plaintext of the same rows.

    False links of ours by pass (and how many of them join two records that have no true
    partner at all: people of one file only); missed true pairs of both tools by pattern of
    what differs in the plaintext (NIR, surname, first name, birth date, child), each pattern
    with the other tool's count, so the gap shows by cause."""
    caf, cpam, truth = populations(data)
    ours_links = pl.read_parquet(data / "ours_links.parquet")
    splink_links = pl.read_parquet(data / "splink_links.parquet")
    key = ["caf_handle", "cpam_handle"]
    false = ours_links.join(truth, on=key, how="anti")
    partnerless = (~pl.col("caf_handle").is_in(truth["caf_handle"].implode())
                   & ~pl.col("cpam_handle").is_in(truth["cpam_handle"].implode()))
    by_pass = false.group_by("pass").agg(faux_liens=pl.len(),
                                         entre_personnes_sans_partenaire=partnerless.sum())
    pairs = truth.join(caf, left_on="caf_handle", right_on="unique_id").join(
        cpam, left_on="cpam_handle", right_on="unique_id", suffix="_r")
    nom = (pl.when(pl.col("nom") == pl.col("nom_r")).then(pl.lit("egal"))
           .when(pl.col("nom_usage") == pl.col("nom_r")).then(pl.lit("usage"))
           .otherwise(pl.lit("different")))
    pattern = pl.concat_str([
        pl.lit("nir="), _agreement("nir", "nir_r"), pl.lit(" nom="), nom,
        pl.lit(" prenom="), _agreement("prenom1", "prenom1_r"), pl.lit(" date="),
        _agreement("dob", "dob_r"),
        pl.when(pl.col("nir_p1_r").is_not_null()).then(pl.lit(" enfant")).otherwise(pl.lit(""))])
    pairs = pairs.select(*key, cause=pattern)
    missed = {name: pairs.join(links, on=key, how="anti").group_by("cause").len(name)
              for name, links in (("nonrecours", ours_links), ("splink", splink_links))}
    table = missed["nonrecours"].join(missed["splink"], on="cause", how="full", coalesce=True) \
        .fill_null(0).sort(["nonrecours", "splink"], descending=True)
    return {
        "faux_liens_nonrecours_par_passe": {
            r["pass"]: {k: r[k] for k in ("faux_liens", "entre_personnes_sans_partenaire")}
            for r in by_pass.sort("faux_liens", descending=True).iter_rows(named=True)},
        "faux_liens_splink": splink_links.join(truth, on=key, how="anti").height,
        "paires_manquees": {"nonrecours": int(missed["nonrecours"]["nonrecours"].sum()),
                            "splink": int(missed["splink"]["splink"].sum())},
        "paires_manquees_par_cause": {r["cause"]: {"nonrecours": r["nonrecours"],
                                                   "splink": r["splink"]}
                                      for r in table.head(top).iter_rows(named=True)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=int(os.environ.get("SCALE_N", 1_000_000)))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("SCALE_ROUNDS", 3)),
                        help="tours alternés nonrecours / Splink (médiane des temps)")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    data, syn = scale.cached_exports(args.n)  # built in a child process when not cached
    both = compare(data, args.n, max(1, args.rounds))
    mine, r = both["nonrecours"], both["splink"]
    payload = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
               "note": "Splink 5 (DuckDB) on the plaintext of the scale bench's records, ours on "
                       "their pseudonymised exports, alternately: wall time of each tool's child "
                       "process (imports included) and its own peak RSS, figures of the "
                       "median-time run; Splink's greedy one-to-one step is timed apart "
                       "(one_to_one_s)",
               "exports": {k: syn.get(k) for k in ("persons_per_file", "true_pairs",
                                                    "synthesis_s", "nir_with_control_key")}
               | {"cache": str(data.relative_to(ROOT))},
               "splink": r, "nonrecours": mine, "ecarts": misses(data),
               "ratio_temps_splink_sur_nonrecours": round(r["wall_s"] / mine["wall_s"], 2),
               "ratio_cpu_splink_sur_nonrecours": round(r["cpu_s"] / mine["cpu_s"], 2),
               "ecart_f1_nonrecours_moins_splink": round(mine["f1"] - r["f1"], 5)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    print(f"Splink 5 {args.n:,} x {args.n:,} : {r['wall_s']:.1f} s, pic {r['peak_rss_gb']:.2f} Go, "
          f"précision {r['precision']:.5f}, rappel {r['recall']:.5f}, F1 {r['f1']:.5f}\n"
          f"        {r['uptime_after']}")
    print(f"nonrecours : {mine['wall_s']:.1f} s, pic {mine['peak_rss_gb']:.2f} Go, "
          f"précision {mine['precision']:.5f}, rappel {mine['recall']:.5f}, "
          f"F1 {mine['f1']:.5f}\n        {mine['uptime_after']}\n"
          f"→ nonrecours {payload['ratio_temps_splink_sur_nonrecours']} x plus rapide que "
          f"Splink 5 (médianes) ; écart de F1 (nonrecours - Splink) "
          f"{payload['ecart_f1_nonrecours_moins_splink']:+.5f}")
    print(f"→ {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
