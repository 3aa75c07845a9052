"""Scale bench of the linkage (`make bench-scale`): 1 M x 1 M persons, time and peak memory.

Token-level exports are synthesised directly (vectorised, seeded) with the agreement structure of
real extracts: Zipf-distributed surnames and first names, couples and children (child tokens on
either parent), CAF-only and CPAM-only people, and CPAM-side noise (missing or mistyped NIR,
surname typos, usage names, swapped day/month, first names in another order). Tokens are 128-bit
hashes of component ids (no HMAC: the linkage only needs equal inputs to give equal tokens).

The link runs in a child process so that its memory is measured alone: the peak of the summed
resident memory of the child and its descendants (Spark's JVM is one), sampled every 0.1 s from
/proc, and the child's own peak from wait4 (exact, one process); the larger is reported.
Targets: < 60 s and < 4 GB for 1 M x 1 M. With SCALE_10M=1, 10 M x 10 M runs too, with the
engine's memory_limit and spill folder set. ENGINE=spark (`make bench-scale ENGINE=spark`) runs
the same files on DuckDB then on Spark (local mode, all cores) and reports both. Figures go to
bench/results/scale.json.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.common.quality import precision_recall_f1

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scale.json"


def _tok(*cols: pl.Expr | str, name: str, subkey: str | None = None,
         when: pl.Expr | None = None) -> pl.Expr:
    """128-bit hex token of the components (two seeded 64-bit hashes), null if any is null.

    Tokens compared across agencies share a `subkey` (as in tokens.yaml), hence a hash seed.
    """
    parts = [pl.col(c) if isinstance(c, str) else c for c in cols]
    key = pl.struct(*[p.alias(f"c{i}") for i, p in enumerate(parts)])
    # stable per subkey (Python's str hash is salted per process)
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(subkey or name)) * 7919
    hexed = (key.hash(seed).cast(pl.String).str.zfill(20).str.slice(0, 16)
             + key.hash(seed + 1).cast(pl.String).str.zfill(20).str.slice(0, 16))
    any_null = pl.any_horizontal([p.is_null() for p in parts])
    expr = pl.when(any_null).then(None).otherwise(hexed)
    if when is not None:
        expr = pl.when(when).then(expr).otherwise(None)
    return expr.alias(name)


N_SURNAMES, N_FIRST = 150_000, 2_000


def _zipf(rng: np.random.Generator, pool: int, shift: float, n: int) -> np.ndarray:
    """Ranks 1..pool with P(k) ~ 1/(k + shift): top surname ~1 %, top first name ~3 %."""
    w = 1.0 / (np.arange(1, pool + 1) + shift)
    return rng.choice(np.arange(1, pool + 1), size=n, p=w / w.sum())


def persons(n: int, seed: int) -> pl.DataFrame:
    """`n` true persons: ids of their plaintext components (never plaintext itself)."""
    rng = np.random.default_rng(seed)
    n_adult = int(n * 0.72)
    is_child = np.zeros(n, dtype=bool)
    is_child[n_adult:] = True
    rng.shuffle(is_child)
    adult_ids = np.flatnonzero(~is_child)
    zipf_sur = _zipf(rng, N_SURNAMES, 10.0, n)
    zipf_first = _zipf(rng, N_FIRST, 5.0, n)
    zipf_first2 = _zipf(rng, N_FIRST, 5.0, n)
    year = np.where(is_child, rng.integers(2008, 2026, n), rng.integers(1935, 2006, n))
    # a child's parents: two random adults (the "dossier"); surname from parent 1
    p1 = rng.choice(adult_ids, n)
    p2 = rng.choice(adult_ids, n)
    surname = np.where(is_child, zipf_sur[p1], zipf_sur)
    return pl.DataFrame({
        "pid": np.arange(n, dtype=np.int64),
        "child": is_child,
        "sexe": rng.integers(1, 3, n).astype(np.int8),
        "annee": year.astype(np.int16),
        "mois": rng.integers(1, 13, n).astype(np.int8),
        "jour": rng.integers(1, 29, n).astype(np.int8),
        "nom": surname.astype(np.int32),
        "prenom1": zipf_first.astype(np.int32),
        "prenom2": zipf_first2.astype(np.int32),
        "commune": rng.integers(0, 400, n).astype(np.int16),
        "has_nir": ~is_child & (rng.random(n) < 0.93),
        "p1": np.where(is_child, p1, -1),
        "p2": np.where(is_child & (rng.random(n) < 0.7), p2, -1),
        "married": (~is_child) & (rng.random(n) < 0.12),
        "usage_name": _zipf(rng, N_SURNAMES, 10.0, n).astype(np.int32),
    })


def _with_tokens(df: pl.DataFrame, agency: str) -> pl.DataFrame:
    """The version 2 composite match-keys of tokens.yaml (same components, same shared
    subkeys), on component ids: names + date variants, parent NIR + child fields, NIR + date."""
    nir = pl.when(pl.col("has_nir")).then(pl.col("nir_id"))
    dob = ("annee", "mois", "jour")
    names = ("nom", "prenom1")
    out = df.with_columns(
        _tok(nir, name="tok_nir"),
        _tok(nir, *dob, name="tok_nir_dob"),
        _tok(*names, *dob, name="tok_nom_dob"),
        _tok("nom", "prenom2", *dob, name="tok_nom2_dob", subkey="tok_nom_dob"),
        _tok(*names, "annee", "mois", name="tok_nom_ym"),
        _tok(*names, "annee", "jour", name="tok_nom_yd"),
        _tok(*names, "mois", "jour", name="tok_nom_md"),
        _tok(pl.col("nom") // 3, pl.col("prenom1") // 2, *dob, name="tok_phon_dob"),
        _tok("nom", pl.col("prenom1") // 50, *dob, name="tok_nom_init_dob"),
        _tok("prenom1", *dob, name="tok_prenom_dob"),
        _tok("nom", *dob, name="tok_nomseul_dob"),
        _tok(*names, "commune", "annee", name="tok_nom_commune"),
        pl.col("commune").cast(pl.String).str.zfill(5).alias("code_commune"),
    )
    child = pl.col("child")
    kids = {"tok_enfant": (*dob, "sexe"), "tok_enfant_prenom": ("sexe", "prenom1"),
            "tok_enfant_ym": ("sexe", "annee", "mois"), "tok_enfant_md": ("sexe", "mois", "jour")}
    if agency == "caf":
        swapped = pl.when((pl.col("jour") <= 12) & (pl.col("jour") != pl.col("mois")))
        usage = pl.when(pl.col("married")).then(pl.col("usage_name"))
        out = out.with_columns(
            *[_tok(pl.when(pl.col(p) >= 0).then(pl.col(p)), *comps, name=f"{key}_{p}",
                   subkey=key, when=child)
              for key, comps in kids.items() for p in ("p1", "p2")],
            _tok(usage, "prenom1", *dob, name="tok_nomusage_dob", subkey="tok_nom_dob"),
            _tok("prenom1", "nom", *dob, name="tok_inv_dob", subkey="tok_nom_dob"),
            _tok(*names, "annee", swapped.then(pl.col("jour")), swapped.then(pl.col("mois")),
                 name="tok_nom_dobswap", subkey="tok_nom_dob"),
            pl.when(child).then(pl.lit("ENF")).otherwise(pl.lit("DEM")).alias("role"),
        )
    else:
        out = out.with_columns(
            *[_tok(pl.col("attached"), *comps, name=key, when=child)
              for key, comps in kids.items()],
            pl.when(child).then(pl.lit("ENFANT")).otherwise(pl.lit("ASSURE")).alias("role"),
        )
    return out


def _noise_cpam(df: pl.DataFrame, rng: np.random.Generator, level: float) -> pl.DataFrame:
    """CPAM-side errors (rates x level), each independent, vectorised."""
    n = df.height

    def draw(p: float) -> np.ndarray:
        return rng.random(n) < p * level

    nir_typo, nir_missing = draw(0.01), draw(0.03)
    sur_typo, sur_phon_kept = draw(0.02), rng.random(n) < 0.7
    swap, day_typo, first_swap = draw(0.01), draw(0.01), draw(0.01)
    jour = df["jour"].to_numpy()
    mois = df["mois"].to_numpy()
    swap &= jour <= 12
    old = df["nom"].to_numpy()
    # a typo keeps the phonetic code (same // 3 group) 70 % of the time
    new_nom = np.where(sur_phon_kept, (old // 3) * 3 + (old + 1) % 3,
                       rng.integers(1, N_SURNAMES, n))
    married = df["married"].to_numpy()
    nom = np.where(married, df["usage_name"].to_numpy(), df["nom"].to_numpy())
    nom = np.where(sur_typo, new_nom, nom)
    return df.with_columns(
        pl.Series("nir_id", np.where(nir_typo, -df["nir_id"].to_numpy() - 1,
                                     df["nir_id"].to_numpy())),
        pl.Series("has_nir", df["has_nir"].to_numpy() & ~nir_missing),
        pl.Series("nom", nom.astype(np.int32)),
        pl.Series("jour", np.where(swap, mois, np.where(day_typo, (jour % 28) + 1, jour))
                  .astype(np.int8)),
        pl.Series("mois", np.where(swap, jour, mois).astype(np.int8)),
        pl.Series("prenom1", np.where(first_swap, df["prenom2"].to_numpy(),
                                      df["prenom1"].to_numpy()).astype(np.int32)),
        pl.Series("prenom2", np.where(first_swap, df["prenom1"].to_numpy(),
                                      df["prenom2"].to_numpy()).astype(np.int32)),
        pl.Series("attached", np.where(rng.random(n) < 0.5, df["p1"].to_numpy(),
                                       np.where(df["p2"].to_numpy() >= 0, df["p2"].to_numpy(),
                                                df["p1"].to_numpy()))),
    )


def _handles(n: int, rng: np.random.Generator) -> pl.Series:
    raw = rng.integers(0, 2**63 - 1, size=(n, 2), dtype=np.int64)
    return pl.DataFrame({"a": raw[:, 0], "b": raw[:, 1]}).select(
        pl.format("{}{}", pl.col("a").cast(pl.String).str.zfill(19).str.slice(3, 16),
                  pl.col("b").cast(pl.String).str.zfill(19).str.slice(3, 16))
    ).to_series()


KEEP = ["handle", "foyer", "role", "sexe", "code_commune"]


CHUNK = 1_000_000  # persons per independent population chunk (bounded memory at 10M)


def _chunk(n: int, seed: int, offset: int,
           noise: float) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """One independent population of n x n persons (ids shifted by `offset`)."""
    rng = np.random.default_rng(seed)
    shared = int(n * 0.92)  # 8 % of each file has no partner (other scheme, moved...)
    pop = persons(shared + 2 * (n - shared), seed).with_columns(
        pl.col("pid") + offset,
        pl.when(pl.col("p1") >= 0).then(pl.col("p1") + offset).otherwise(-1).alias("p1"),
        pl.when(pl.col("p2") >= 0).then(pl.col("p2") + offset).otherwise(-1).alias("p2"),
    ).with_columns(pl.col("pid").alias("nir_id"))
    caf = pop.slice(0, n)
    cpam = pl.concat([pop.slice(0, shared), pop.slice(n, n - shared)])
    cpam = _noise_cpam(cpam, rng, noise)
    caf = _with_tokens(caf, "caf")
    cpam = _with_tokens(cpam, "cpam")
    caf = caf.with_columns(_handles(n, rng).alias("handle"), pl.col("pid").alias("foyer"))
    cpam = cpam.with_columns(_handles(cpam.height, rng).alias("handle"),
                             pl.col("pid").alias("foyer"))
    truth = caf.select("pid", caf_handle="handle").join(
        cpam.select("pid", cpam_handle="handle"), on="pid").select("caf_handle", "cpam_handle")
    frames = []
    for df in (caf, cpam):
        toks = sorted(c for c in df.columns if c.startswith("tok_"))
        df = df.with_columns(pl.col("foyer").cast(pl.String))
        frames.append(df.select(KEEP + toks).sample(fraction=1.0, shuffle=True, seed=seed))
    return frames[0], frames[1], truth


def synthesise(n: int, out: Path, seed: int = 20261122, noise: float = 1.0) -> dict[str, object]:
    """Write caf.pseudo.parquet, cpam.pseudo.parquet and truth.parquet for n x n persons.

    Beyond CHUNK persons, independent populations of CHUNK persons are appended chunk by chunk
    (streamed into one Parquet file each), so 10 M x 10 M never holds more than one chunk.
    """
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    writers: dict[str, pq.ParquetWriter] = {}
    true_pairs = 0
    try:
        for k, start in enumerate(range(0, n, CHUNK)):
            caf, cpam, truth = _chunk(min(CHUNK, n - start), seed + k, start * 3, noise)
            true_pairs += truth.height
            for name, df in (("caf", caf), ("cpam", cpam), ("truth", truth)):
                table = df.to_arrow()
                if name not in writers:
                    target = out / (f"{name}.pseudo.parquet" if name != "truth"
                                    else "truth.parquet")
                    writers[name] = pq.ParquetWriter(target, table.schema, compression="zstd")
                writers[name].write_table(table, row_group_size=256_000)
    finally:
        for w in writers.values():
            w.close()
    return {"persons_per_file": n, "true_pairs": true_pairs,
            "synthesis_s": round(time.perf_counter() - t0, 2)}


def _tree_rss_kb(root: int) -> int:
    """Resident memory (kB) of process `root` and all its descendants, from /proc."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            parent[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(fields[21]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
        except (OSError, ValueError, IndexError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        kids = [c for c, p in parent.items() if p == pid and c not in tree]
        tree.update(kids)
        frontier.extend(kids)
    return sum(rss.get(p, 0) for p in tree)


def run_link(data: Path, out: Path, memory_limit: str, temp_dir: Path | None,
             engine: str = "duckdb") -> dict[str, object]:
    """`pipeline.central.match.link` in a child process: wall time and the peak memory of its tree.

    The child calls the API rather than `python -m pipeline link` because the CLI imports every
    stage (pandas, Great Expectations...: ~5 s here) before the link starts.
    """
    code = (
        "import sys; from pathlib import Path; from pipeline.central.match import link; "
        "from pipeline.central.engines import EngineSettings; "
        "link(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), "
        "engine=EngineSettings(name=sys.argv[4], memory_limit=sys.argv[5], "
        "temp_dir=Path(sys.argv[6]) if len(sys.argv) > 6 else None))"
    )
    cmd = [sys.executable, "-c", code, str(data / "caf.pseudo.parquet"),
           str(data / "cpam.pseudo.parquet"), str(out), engine, memory_limit]
    if temp_dir is not None:
        cmd.append(str(temp_dir))
    t0 = time.perf_counter()
    err_path = out.parent / f"{out.name}.stderr"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err,
                                env={**os.environ, "NONRECOURS_QUIET": "1"})
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # wait4: this child's own peak RSS (the largest of it and its waited-for descendants)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"link a échoué :\n{err_path.read_text()[-2000:]}")
    stats = json.loads((out / "link_stats.json").read_text())
    stats |= json.loads((out / "link_timings.json").read_text())
    return {"engine": engine, "wall_s": round(wall, 2),
            # the sampled sum can miss a short peak: never report less than one process's peak
            "peak_rss_gb": round(max(peak[0], usage.ru_maxrss) / 1024**2, 3),
            "peak_rss_tree_sampled_gb": round(peak[0] / 1024**2, 3),
            "peak_rss_largest_process_gb": round(usage.ru_maxrss / 1024**2, 3),
            "stage_timings_s": stats["timings_s"],
            "links_by_pass": stats["funnel"]["links_by_pass"],
            "candidate_pairs": stats["blocking"]["candidate_pairs"],
            "clerical_pairs": stats["clerical_review"]["pairs"]}


def quality(data: Path, out: Path) -> dict[str, float]:
    truth = pl.read_parquet(data / "truth.parquet")
    links = pl.read_parquet(out / "links.parquet")
    tp = links.join(truth, on=["caf_handle", "cpam_handle"]).height
    return precision_recall_f1(tp, links.height, truth.height, digits=5)


def bench(n: int, memory_limit: str, spill: bool, engines: list[str]) -> list[dict[str, object]]:
    """Synthesise n x n once, link it on each engine (same files), check each against truth."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="nonrecours-scale-") as tmp:
        data = Path(tmp) / "data"
        print(f"… synthèse {n:,} x {n:,}", flush=True)
        syn = synthesise(n, data)
        for engine in engines:
            out = Path(tmp) / f"out_{engine}"
            print(f"… liaison {engine} ({syn['synthesis_s']} s de synthèse)", flush=True)
            # SPARK_MEMORY: the Spark driver's memory when it should differ from DuckDB's limit
            mem = (os.environ.get("SPARK_MEMORY", memory_limit) if engine == "spark"
                   else memory_limit)
            res = run_link(data, out, mem, Path(tmp) / "spill" if spill else None, engine)
            res.update(quality(data, out))
            runs.append({"n": n, "memory_limit": mem, **syn, **res})
        if len(engines) > 1:  # same files, so the links must be the same rows
            first = pl.read_parquet(Path(tmp) / f"out_{engines[0]}" / "links.parquet")
            for r, engine in zip(runs, engines, strict=True):
                other = pl.read_parquet(Path(tmp) / f"out_{engine}" / "links.parquet")
                r["links_identical_to_" + engines[0]] = other.equals(first)
    return runs


def main() -> None:
    engine = os.environ.get("ENGINE", "duckdb")
    engines = ["duckdb"] if engine == "duckdb" else ["duckdb", engine]
    cases = [(1_000_000, "4GB", False)]
    if os.environ.get("SCALE_10M") == "1":
        cases.append((10_000_000, "4GB", True))
    if os.environ.get("SCALE_N"):
        cases = [(int(os.environ["SCALE_N"]), "4GB", False)]
    results = []
    for n, mem, spill in cases:
        for r in bench(n, mem, spill, engines if n <= 1_000_000 else ["duckdb"]):
            ok = r["wall_s"] < 60 and r["peak_rss_gb"] < 4 if n == 1_000_000 else None
            r["targets_met"] = ok
            results.append(r)
            print(f"{r['engine']:>7} {n:>12,} x {n:,} : {r['wall_s']:.1f} s, pic "
                  f"{r['peak_rss_gb']:.2f} Go, précision {r['precision']:.4f}, rappel "
                  f"{r['recall']:.4f}, liens {sum(r['links_by_pass'].values()):,}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "load_average_at_end": list(os.getloadavg())},
               "note": "wall time of pipeline.central.match.link in a child process (includes "
                       "interpreter start, imports and, on Spark, the JVM start); peak_rss_gb = "
                       "the larger of the sampled summed RSS of that child and its descendants "
                       "(the JVM) and the child's own peak (wait4)",
               "runs": results}
    RESULTS.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    print(f"→ {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
