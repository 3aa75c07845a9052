"""Scale bench of the linkage (`make bench-scale`): 1 M x 1 M persons, time and peak memory.

The exports are built by the agency's own code: synthetic INGESTED extracts (the columns of
docs/CONTRACTS.md "Ingested", fake people, vectorised and seeded) go through
`pipeline.agency.pseudonymise.core.build` (every token of tokens.yaml by the agency's HMAC code,
handles, attributes, features), so the central step links exactly the key set the agencies send
(every pass, typo deletion keys included). Persons: Zipf-distributed surnames and first names
(pronounceable syllable strings), CAF dossiers (DEM, CJT for a quarter, children on the DEM's
surname), CPAM children on the NIR of one parent, CAF-only and CPAM-only people (8 % each), and
CPAM-side noise (rates x `noise`): missing or mistyped NIR, surname typo (one edit, or another
name), first-name typo, married CJT known under the usage name, swapped day/month, day typo,
given names in the other order. A mistyped NIR stays a valid, different NIR (13-character
extracts carry no control key: the ingest cannot catch it), the hard case for the passes;
SCALE_NIR_KEY=1 models 15-character NIRs instead (the ingest voids a mistyped one).

Building the exports takes a minute or more at 1 M (tokens on 2 cores), so they are cached as
a bench fixture under out/cache/scale/<key>/, the key hashing the parameters, the generator's
source and the agency token code and catalogue (any change there rebuilds them);
SCALE_REBUILD=1 forces it.

The link runs in a child process so that its memory is measured alone: the peak of the summed
resident memory of the child and its descendants (Spark's JVM is one), sampled every 0.1 s from
/proc, and the child's own peak from wait4 (exact, one process); the larger is reported.
Targets: < 60 s and < 4 GB for 1 M x 1 M. With SCALE_10M=1, 10 M x 10 M runs too, with the
engine's memory_limit and spill folder set. After the stage-1 run, the staged Bloom-filter
exchange runs too (SCALE_RESIDUE=0 skips it): the agencies encode the requested rows with their
own residue code (pipeline.agency.residue.core, in a child process, timed apart), then the centre
links again with the residue (`link(..., residue=...)`); both runs are reported.
ENGINE=spark (`make bench-scale ENGINE=spark`) runs the same files on DuckDB then on Spark
(local mode, all cores) and reports both. Figures go to bench/results/scale.json, with `uptime`
at each measurement (the machine is shared).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.common.quality import precision_recall_f1
from pipeline.shared.providers import AGENCIES

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scale.json"
CACHE = ROOT / "out" / "cache" / "scale"  # out/ is git-ignored
SEED = 20261122
# what the cached exports depend on besides the parameters (a change rebuilds them)
BUILD_SOURCES = [ROOT / "pipeline" / "shared" / "tokens.yaml",
                 *sorted((ROOT / "pipeline" / "agency" / "pseudonymise").glob("*.py")),
                 *(ROOT / "pipeline" / "shared" / f for f in (
                     "attributes.py", "features.py", "token_catalogue.py")),
                 ROOT / "pipeline" / "shared" / "features.yaml"]
REFERENCE = dt.date(2026, 3, 31)

N_SURNAMES, N_FIRST = 150_000, 2_000
# SCALE_NIR_KEY=1: 15-character NIRs (with the control key): the ingest catches a mistyped NIR
# and it leaves absent; by default a mistyped NIR stays a valid, different one (13 characters).
NIR_KEY = os.environ.get("SCALE_NIR_KEY") == "1"
_SYLLABLES = [c + v for c in "BCDFGHJKLMNPRSTVWXYZ" for v in "AEIOU"]
_LETTERS = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _zipf(rng: np.random.Generator, pool: int, shift: float, n: int) -> np.ndarray:
    """Ranks 1..pool with P(k) ~ 1/(k + shift): top surname ~1 %, top first name ~3 %."""
    w = 1.0 / (np.arange(1, pool + 1) + shift)
    return rng.choice(np.arange(1, pool + 1), size=n, p=w / w.sum())


def spelled(ids: pl.Expr, syllables: int) -> pl.Expr:
    """A pronounceable name: `syllables` syllables spelling a non-negative id (base 100), after
    a fixed bijection of the id space (frequent low ids would otherwise share their endings)."""
    ids = (ids * 7919 + 4241) % (100 ** syllables)
    return pl.concat_str([(ids // (100 ** k) % 100).replace_strict(
        list(range(100)), _SYLLABLES, return_dtype=pl.String) for k in range(syllables)])


def one_edit(name: pl.Expr, kind: pl.Expr, u: pl.Expr, letter: pl.Expr) -> pl.Expr:
    """`name` one edit away: kind 0 substitution (by `letter`, the next one if equal), 1 deletion,
    2 adjacent transposition, at position floor(u * length)."""
    n = name.str.len_chars()
    pos = (u * n).floor().cast(pl.Int64)
    tpos = (u * (n - 1)).floor().cast(pl.Int64)
    same = name.str.slice(pos, 1) == letter
    sub_letter = pl.when(same).then(
        pl.when(letter == "Z").then(pl.lit("A")).otherwise(
            letter.replace_strict(_LETTERS[:-1], _LETTERS[1:], default="A"))).otherwise(letter)
    sub = pl.concat_str([name.str.slice(0, pos), sub_letter, name.str.slice(pos + 1)])
    dele = pl.concat_str([name.str.slice(0, pos), name.str.slice(pos + 1)])
    trans = pl.concat_str([name.str.slice(0, tpos), name.str.slice(tpos + 1, 1),
                           name.str.slice(tpos, 1), name.str.slice(tpos + 2)])
    return pl.when(kind == 0).then(sub).when(kind == 1).then(dele).otherwise(trans)


def persons(n: int, seed: int, offset: int) -> pl.DataFrame:
    """`n` true persons in households: identity, dossier, parents (global ids from `offset`)."""
    rng = np.random.default_rng(seed)
    child = rng.random(n) < 0.28
    adults = np.flatnonzero(~child)
    n_cpl = int(adults.size * 0.25)
    n_dos = adults.size - n_cpl
    dossier = np.empty(n, dtype=np.int64)
    dossier[adults[:n_dos]] = np.arange(n_dos)
    dossier[adults[n_dos:]] = np.arange(n_cpl)
    dossier[child] = rng.integers(0, n_dos, int(child.sum()))
    dem = np.empty(n_dos, dtype=np.int64)
    dem[:] = adults[:n_dos]
    cjt = np.full(n_dos, -1, dtype=np.int64)
    cjt[:n_cpl] = adults[n_dos:]
    role = np.where(child, "ENF", "DEM").astype(object)
    role[adults[n_dos:]] = "CJT"
    sexe = rng.integers(1, 3, n)
    year = np.where(child, rng.integers(2008, 2026, n), rng.integers(1935, 2006, n))
    month, day = rng.integers(1, 13, n), rng.integers(1, 29, n)
    sur = _zipf(rng, N_SURNAMES, 10.0, n)
    sur = np.where(child, sur[dem[dossier]], sur)  # children carry the DEM's surname
    married = (role == "CJT") & (rng.random(n) < 0.6)  # usage name = the DEM's surname
    usage = np.where(married, sur[dem[dossier]], -1)
    p1, p2 = _zipf(rng, N_FIRST, 5.0, n), _zipf(rng, N_FIRST, 5.0, n)
    has_p2 = rng.random(n) < 0.6
    has_nir = ~child & (rng.random(n) < 0.93)
    pid = np.arange(n, dtype=np.int64) + offset
    nir = pl.select(pl.format(
        "{}{}{}{}", pl.Series(sexe), pl.Series(year % 100).cast(pl.String).str.zfill(2),
        pl.Series(month).cast(pl.String).str.zfill(2),
        pl.Series(pid).cast(pl.String).str.zfill(8))).to_series()
    # a child's ouvrant droit at the CPAM: its DEM, or its CJT for half of the couples' children
    other = (cjt[dossier] >= 0) & (rng.random(n) < 0.5)
    ouvrant = np.where(other, cjt[dossier], dem[dossier])
    return pl.DataFrame({
        "pid": pid, "child": child, "role": role.astype(str), "sexe": sexe.astype(np.int8),
        "annee": year.astype(np.int16), "mois": month.astype(np.int16),
        "jour": day.astype(np.int16), "nom_id": sur, "usage_id": usage, "p1_id": p1,
        "p2_id": np.where(has_p2, p2, -1), "commune": rng.integers(0, 400, n),
        "matricule": dossier + offset, "nir": nir, "has_nir": has_nir,
        "nir_od": nir.gather(ouvrant), "couple": cjt[dossier] >= 0,
    }).with_columns(
        nom=spelled(pl.col("nom_id"), 3),
        nom_usage=pl.when(pl.col("usage_id") >= 0).then(spelled(pl.col("usage_id"), 3)),
        prenom1=spelled(pl.col("p1_id"), 2),
        prenom2=pl.when(pl.col("p2_id") >= 0).then(spelled(pl.col("p2_id"), 2)),
        nir=pl.when(pl.col("has_nir")).then(pl.col("nir")),
    )


def noise_cpam(df: pl.DataFrame, rng: np.random.Generator, level: float) -> pl.DataFrame:
    """CPAM-side errors (rates x level), each independent, vectorised."""
    n = df.height

    def draw(p: float) -> np.ndarray:
        return rng.random(n) < p * level

    draws = pl.DataFrame({
        "_nir_typo": draw(0.01), "_nir_missing": draw(0.03), "_sur_typo": draw(0.02),
        "_sur_edit": rng.random(n) < 0.7, "_first_typo": draw(0.01), "_swap": draw(0.01),
        "_day_typo": draw(0.01), "_first_swap": draw(0.01),
        "_other": _zipf(rng, N_SURNAMES, 10.0, n),
        "_dpos": rng.integers(5, 13, n), "_digit": rng.integers(1, 10, n),
        **{f"_{c}{i}": v for i in (1, 2) for c, v in (
            ("k", rng.integers(0, 3, n)), ("u", rng.random(n)),
            ("l", np.array(_LETTERS)[rng.integers(0, 26, n)]))},
    })
    c = pl.col
    nom = pl.coalesce("nom_usage", "nom")  # the CPAM knows a married CJT by the usage name
    new_digit = (c("nir").str.slice(c("_dpos"), 1).cast(pl.Int64) + c("_digit")) % 10
    nir_changed = pl.concat_str([c("nir").str.slice(0, c("_dpos")), new_digit.cast(pl.String),
                                 c("nir").str.slice(c("_dpos") + 1)])
    swappable = c("_swap") & (c("jour") <= 12) & (c("jour") != c("mois"))
    first_swap = c("_first_swap") & c("prenom2").is_not_null()
    # NIR_KEY: the extract carries the control key, so the ingest voids a mistyped NIR
    typo = pl.lit(None, pl.String) if NIR_KEY else nir_changed
    return pl.concat([df, draws], how="horizontal").with_columns(
        nir=pl.when(c("_nir_missing")).then(None).when(c("_nir_typo")).then(typo)
        .otherwise(c("nir")),
        nom=pl.when(c("_sur_typo") & c("_sur_edit")).then(one_edit(nom, c("_k1"), c("_u1"),
                                                                    c("_l1")))
        .when(c("_sur_typo")).then(spelled(c("_other"), 3)).otherwise(nom),
        prenom1=pl.when(first_swap).then(c("prenom2"))
        .when(c("_first_typo")).then(one_edit(c("prenom1"), c("_k2"), c("_u2"), c("_l2")))
        .otherwise(c("prenom1")),
        prenom2=pl.when(first_swap).then(c("prenom1")).otherwise(c("prenom2")),
        jour=pl.when(swappable).then(c("mois")).when(c("_day_typo"))
        .then(c("jour") % 28 + 1).otherwise(c("jour")),
        mois=pl.when(swappable).then(c("jour")).otherwise(c("mois")),
    ).drop(draws.columns)


def _common(df: pl.DataFrame) -> dict[str, pl.Expr]:
    """The ingested columns both agencies have (docs/CONTRACTS.md, "Ingested")."""
    commune = (pl.col("commune") + 61001).cast(pl.String)
    return dict(
        line=pl.int_range(2, df.height + 2, dtype=pl.Int64),
        sexe=pl.col("sexe"),
        date_naissance=pl.date(pl.col("annee"), pl.col("mois"), pl.col("jour")),
        naiss_annee=pl.col("annee"), naiss_mois=pl.col("mois"), naiss_jour=pl.col("jour"),
        nir=pl.col("nir"),
        nir_statut=pl.when(pl.col("nir").is_null()).then(pl.lit("absent"))
        .otherwise(pl.lit("certifie")),
        prenom1=pl.col("prenom1"),
        prenoms=pl.concat_str(["prenom1", "prenom2"], separator=" ", ignore_nulls=True),
        adresse=pl.format("{} RUE DES LILAS", pl.col("pid") % 200 + 1),
        code_postal=pl.lit("61100"), code_commune=commune,
        date_extraction=pl.lit(REFERENCE),
    )


def ingested_caf(df: pl.DataFrame) -> pl.DataFrame:
    out = df.select(
        **_common(df), matricule=pl.col("matricule").cast(pl.String), role=pl.col("role"),
        nom_naissance=pl.col("nom"), nom_usage=pl.col("nom_usage"),
        telephone=pl.format("06{}", (pl.col("pid") % 10**8).cast(pl.String).str.zfill(8)),
        code_iris=(pl.col("commune") + 61001).cast(pl.String) + "0101",
        situation_familiale=pl.when(pl.col("couple")).then(pl.lit("COUPLE"))
        .otherwise(pl.lit("ISOLE")),
        residence_alternee=pl.lit(False),
        ressources_12m=(pl.col("pid") % 40_000).cast(pl.Float64),
        prestations=pl.lit(["AF"], dtype=pl.List(pl.String)),
    )
    return out


def ingested_cpam(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(
        **_common(df),
        nir_ouvrant_droit=pl.when(pl.col("child")).then(pl.col("nir_od"))
        .otherwise(pl.col("nir")),
        rang_gemellaire=pl.lit(1, dtype=pl.Int8),
        qualite=pl.when(pl.col("child")).then(pl.lit("ENFANT")).otherwise(pl.lit("ASSURE")),
        nom=pl.col("nom"), css=pl.lit("NON"), css_debut=pl.lit(None, pl.Date),
        css_fin=pl.lit(None, pl.Date), medecin_traitant=pl.lit(True),
    )


def chunk(n: int, seed: int, offset: int,
          noise: float) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """One independent population: (CAF ingested, CPAM ingested, truth as line pairs).

    8 % of each file has no partner (other scheme, moved...). Rows in random file order."""
    rng = np.random.default_rng(seed + 1)
    shared = int(n * 0.92)
    pop = persons(shared + 2 * (n - shared), seed, offset)
    caf = pop.slice(0, n).sample(fraction=1.0, shuffle=True, seed=seed)
    cpam = pl.concat([pop.slice(0, shared), pop.slice(n, n - shared)])
    cpam = noise_cpam(cpam, rng, noise).sample(fraction=1.0, shuffle=True, seed=seed + 2)
    caf_i, cpam_i = ingested_caf(caf), ingested_cpam(cpam)
    truth = caf.select("pid", caf_line=caf_i["line"]).join(
        cpam.select("pid", cpam_line=cpam_i["line"]), on="pid")
    return caf_i, cpam_i, truth.select("caf_line", "cpam_line")


CHUNK = 1_000_000  # persons per independent population chunk (bounded memory at 10M)
SECRET = hashlib.sha256(b"nonrecours bench scale").digest()  # a bench key, not a real one


def cache_key(n: int, seed: int, noise: float) -> str:
    """Hash of the parameters, of the generator's code and of the agency code and catalogue the
    exports are built with (the measuring code of this file is left out: editing it keeps the
    cache)."""
    import inspect

    h = hashlib.sha256(json.dumps([n, seed, noise, CHUNK, N_SURNAMES, N_FIRST, NIR_KEY,
                                   REFERENCE.isoformat()]).encode())
    for fn in GENERATOR:
        h.update(inspect.getsource(fn).encode())
    for path in BUILD_SOURCES:
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:16]


def _export_chunk(k: int, n: int, seed: int, noise: float, line0: int
                  ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """One chunk through the agency's `build`: (caf export, cpam export, truth handle pairs,
    caf ingested, cpam ingested); lines numbered from `line0` so chunks never share one."""
    from pipeline.agency.pseudonymise.core import build

    caf_i, cpam_i, truth = chunk(n, seed + k, k * 3 * CHUNK, noise)
    caf_i = caf_i.with_columns(pl.col("line") + line0)
    cpam_i = cpam_i.with_columns(pl.col("line") + line0)
    truth = truth.with_columns(pl.col("caf_line") + line0, pl.col("cpam_line") + line0)
    handles = {}
    exports = {}
    for agency, frame in (("caf", caf_i), ("cpam", cpam_i)):
        exports[agency], h, _ = build(frame, agency, SECRET, seed=seed + k)
        handles[agency] = h.select("line", "handle")
    truth = truth.join(handles["caf"].rename({"line": "caf_line", "handle": "caf_handle"}),
                       on="caf_line").join(
        handles["cpam"].rename({"line": "cpam_line", "handle": "cpam_handle"}), on="cpam_line")
    return (exports["caf"], exports["cpam"], truth.select("caf_handle", "cpam_handle"),
            caf_i.join(handles["caf"], on="line"), cpam_i.join(handles["cpam"], on="line"))


def synthesise(n: int, out: Path, seed: int = SEED, noise: float = 1.0) -> dict[str, object]:
    """Write {caf,cpam}.pseudo.parquet (the agency's exports), {caf,cpam}.ingested.parquet (their
    plaintext + handle, for the plaintext peer) and truth.parquet (handle pairs) for n x n.

    Beyond CHUNK persons, independent populations of CHUNK persons are appended chunk by chunk
    (streamed into one Parquet file each), so 10 M x 10 M never holds more than one chunk.
    """
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    writers: dict[str, pq.ParquetWriter] = {}
    true_pairs = 0
    names = ("caf.pseudo", "cpam.pseudo", "truth", "caf.ingested", "cpam.ingested")
    try:
        for k, start in enumerate(range(0, n, CHUNK)):
            frames = _export_chunk(k, min(CHUNK, n - start), seed, noise, 3 * start)
            true_pairs += frames[2].height
            for name, df in zip(names, frames, strict=True):
                table = df.to_arrow()
                if name not in writers:
                    writers[name] = pq.ParquetWriter(out / f"{name}.parquet", table.schema,
                                                     compression="zstd")
                writers[name].write_table(table, row_group_size=256_000)
    finally:
        for w in writers.values():
            w.close()
    return {"persons_per_file": n, "true_pairs": true_pairs, "nir_with_control_key": NIR_KEY,
            "synthesis_s": round(time.perf_counter() - t0, 2)}


def cached_exports(n: int, seed: int = SEED, noise: float = 1.0) -> tuple[Path, dict]:
    """The exports for these parameters, built once (in a child process, so that the bench's own
    memory stays small) and kept under out/cache/scale/<key>/ (a bench fixture)."""
    folder = CACHE / cache_key(n, seed, noise)
    facts = folder / "synthesis.json"
    if facts.exists() and os.environ.get("SCALE_REBUILD") != "1":
        return folder, json.loads(facts.read_text()) | {"cached": True}
    shutil.rmtree(folder, ignore_errors=True)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"… construction des exports {n:,} x {n:,} par le code des organismes "
          f"(mis en cache sous {folder.relative_to(ROOT)})", flush=True)
    code = ("import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
            "import scale; print(json.dumps(scale.synthesise(int(sys.argv[2]), Path(sys.argv[3]), "
            "int(sys.argv[4]), float(sys.argv[5]))))")
    proc = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(n),
                           str(tmp), str(seed), str(noise)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "NONRECOURS_QUIET": "1"}, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"construction des exports a échoué :\n{proc.stderr[-3000:]}")
    syn = json.loads(proc.stdout.strip().splitlines()[-1]) | {"uptime": uptime()}
    (tmp / "synthesis.json").write_text(json.dumps(syn))
    tmp.rename(folder)
    return folder, syn | {"cached": False}


GENERATOR = (_zipf, spelled, one_edit, persons, noise_cpam, _common, ingested_caf, ingested_cpam,
             chunk, _export_chunk, synthesise)


def uptime() -> str:
    """`uptime` (the machine is shared: wall times under load are pessimistic)."""
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


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
             engine: str = "duckdb", config: Path | None = None,
             residue: dict[str, Path] | None = None,
             timeout_s: float | None = None) -> dict[str, object]:
    """`pipeline.central.match.link` in a child process: wall time and the peak memory of its tree.

    The child calls the API rather than `python -m pipeline link` because the CLI imports every
    stage (pandas, Great Expectations...: ~5 s here) before the link starts. `residue`: the
    agencies' residu.parquet per provider (the staged Bloom-filter stage after stage 1).
    `timeout_s`: the child is stopped past it and the run reported unfinished (its time, its
    peak so far).
    """
    code = (
        "import json, sys; from pathlib import Path; from pipeline.central.match import link; "
        "from pipeline.central.engines import EngineSettings; o = json.loads(sys.argv[4]); "
        "link(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), "
        "config=Path(o['config']) if o['config'] else None, "
        "residue={k: Path(v) for k, v in o['residue'].items()} if o['residue'] else None, "
        "engine=EngineSettings(name=o['engine'], memory_limit=o['memory_limit'], "
        "temp_dir=Path(o['temp_dir']) if o['temp_dir'] else None))"
    )
    options = {"engine": engine, "memory_limit": memory_limit,
               "temp_dir": str(temp_dir) if temp_dir else None,
               "config": str(config) if config else None,
               "residue": {k: str(v) for k, v in residue.items()} if residue else None}
    cmd = [sys.executable, "-c", code, str(data / "caf.pseudo.parquet"),
           str(data / "cpam.pseudo.parquet"), str(out), json.dumps(options)]
    t0 = time.perf_counter()
    err_path = out.parent / f"{out.name}.stderr"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err,
                                env={**os.environ, "NONRECOURS_QUIET": "1"})
    peak, stopped = [0], [False]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
            if timeout_s is not None and time.perf_counter() - t0 > timeout_s:
                stopped[0] = True  # over the budget: stopped, reported as unfinished
                proc.kill()
                return
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # wait4: this child's own peak RSS (the largest of it and its waited-for descendants)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    sampler.join()
    if stopped[0]:
        return {"engine": engine, "completed": False, "stopped_after_s": round(wall, 1),
                "peak_rss_gb": round(max(peak[0], usage.ru_maxrss) / 1024**2, 3),
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 2)}
    if proc.returncode != 0:
        raise SystemExit(f"link a échoué :\n{err_path.read_text()[-2000:]}")
    stats = json.loads((out / "link_stats.json").read_text())
    stats |= json.loads((out / "link_timings.json").read_text())
    return {"engine": engine, "wall_s": round(wall, 2),
            # CPU seconds (user + system) of the child: less sensitive to the machine's load
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            # the sampled sum can miss a short peak: never report less than one process's peak
            "peak_rss_gb": round(max(peak[0], usage.ru_maxrss) / 1024**2, 3),
            "peak_rss_tree_sampled_gb": round(peak[0] / 1024**2, 3),
            "peak_rss_largest_process_gb": round(usage.ru_maxrss / 1024**2, 3),
            "stage_timings_s": stats["timings_s"],
            "links_by_pass": stats["funnel"]["links_by_pass"],
            "candidate_pairs": stats["blocking"]["candidate_pairs"],
            "clerical_pairs": stats["clerical_review"]["pairs"],
            "residue": stats.get("residue")}


def encode_residues(data: Path, stage1: Path, dest: Path) -> dict[str, object]:
    """The agencies' answers to the centre's residue requests (written by the stage-1 link under
    `stage1`), by their own code (pipeline.agency.residue.core: read_request, select_rows,
    build_residue) with the bench key, unsigned: `dest/<agency>/residu.parquet`."""
    from pipeline.agency.residue.core import build_residue, read_request, select_rows
    from pipeline.shared import bloom

    facts: dict[str, object] = {}
    for agency in AGENCIES:
        t0 = time.perf_counter()
        request = stage1 / bloom.RESIDUE_DIR / bloom.RESIDUE_REQUEST.format(provider=agency)
        ingested = pl.read_parquet(data / f"{agency}.ingested.parquet")
        handles = ingested.select("handle", "line", opposition=pl.lit(False))
        rows, _ = select_rows(read_request(request), handles, ingested.drop("handle"), request,
                              agency)
        residue = build_residue(rows, agency, SECRET)
        (dest / agency).mkdir(parents=True, exist_ok=True)
        residue.write_parquet(dest / agency / bloom.RESIDUE_FILE)
        facts[agency] = {"rows": residue.height, "seconds": round(time.perf_counter() - t0, 2),
                         "path": str(dest / agency / bloom.RESIDUE_FILE)}
    return facts


def run_encode(data: Path, stage1: Path, dest: Path) -> dict[str, object]:
    """`encode_residues` in a child process (its wall time and peak RSS, VmHWM: the agency
    side, apart from the central figures)."""
    code = ("import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
            "import scale; f = scale.encode_residues(Path(sys.argv[2]), Path(sys.argv[3]), "
            "Path(sys.argv[4])); "
            "f['peak_rss_gb'] = round(int([l for l in open('/proc/self/status') "
            "if l.startswith('VmHWM')][0].split()[1]) / 1024**2, 3); print(json.dumps(f))")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(data),
                           str(stage1), str(dest)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "NONRECOURS_QUIET": "1"}, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"encodage du résidu a échoué :\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]) | {
        "wall_s": round(time.perf_counter() - t0, 2)}


def quality(data: Path, out: Path) -> dict[str, float]:
    truth = pl.read_parquet(data / "truth.parquet")
    links = pl.read_parquet(out / "links.parquet")
    tp = links.join(truth, on=["caf_handle", "cpam_handle"]).height
    return precision_recall_f1(tp, links.height, truth.height, digits=5)


def bench(n: int, memory_limit: str, spill: bool, engines: list[str],
          config: Path | None = None, residue: bool = True) -> list[dict[str, object]]:
    """Build (or reuse) the n x n exports, link them on each engine (same files), check each
    against the truth; then (`residue`) the staged Bloom-filter exchange on DuckDB."""
    runs = []
    data, syn = cached_exports(n)
    with tempfile.TemporaryDirectory(prefix="nonrecours-scale-") as tmp:
        for engine in engines:
            out = Path(tmp) / f"out_{engine}"
            print(f"… liaison {engine} ({syn['synthesis_s']} s de construction des exports"
                  f"{', en cache' if syn['cached'] else ''})", flush=True)
            # SPARK_MEMORY: the Spark driver's memory when it should differ from DuckDB's limit
            mem = (os.environ.get("SPARK_MEMORY", memory_limit) if engine == "spark"
                   else memory_limit)
            before = uptime()
            res = run_link(data, out, mem, Path(tmp) / "spill" if spill else None, engine,
                           config)
            res.update(quality(data, out))
            runs.append({"n": n, "memory_limit": mem, **syn, **res,
                         "config": str(config) if config else "pipeline/shared/comparisons.yaml",
                         "uptime_before": before, "uptime_after": uptime()})
        if len(engines) > 1:  # same files, so the links must be the same rows
            first = pl.read_parquet(Path(tmp) / f"out_{engines[0]}" / "links.parquet")
            for r, engine in zip(runs, engines, strict=True):
                other = pl.read_parquet(Path(tmp) / f"out_{engine}" / "links.parquet")
                r["links_identical_to_" + engines[0]] = other.equals(first)
        if residue:
            runs.append(with_residue(data, Path(tmp), Path(tmp) / f"out_{engines[0]}",
                                     memory_limit, spill, config) | {"n": n, **syn})
    return runs


# The residue run's budget (SCALE_RESIDUE_TIMEOUT seconds): past it, stopped and reported so.
RESIDUE_TIMEOUT_S = float(os.environ.get("SCALE_RESIDUE_TIMEOUT", 600))


def with_residue(data: Path, tmp: Path, stage1: Path, memory_limit: str, spill: bool,
                 config: Path | None) -> dict[str, object]:
    """The staged exchange after the stage-1 run `stage1` (DuckDB): the agencies encode the
    requested rows (child process, timed apart), then the centre links again with the residue
    (stage 1 + the Bloom-filter stage, as the chain's second central run)."""
    print("… résidu : encodage par les organismes, puis liaison avec le résidu", flush=True)
    enc = run_encode(data, stage1, tmp / "residu")
    out = tmp / "out_residu"
    before = uptime()
    res = run_link(data, out, memory_limit, tmp / "spill" if spill else None, "duckdb", config,
                   residue={a: Path(enc[a]["path"]) for a in AGENCIES},
                   timeout_s=RESIDUE_TIMEOUT_S)
    if res.get("completed", True):
        res.update(quality(data, out))
    return {"memory_limit": memory_limit, **res, "engine": "duckdb+residu",
            "agency_residue_encoding": {k: v for k, v in enc.items()},
            "config": str(config) if config else "pipeline/shared/comparisons.yaml",
            "uptime_before": before, "uptime_after": uptime()}


def main() -> None:
    engine = os.environ.get("ENGINE", "duckdb")
    engines = ["duckdb"] if engine == "duckdb" else ["duckdb", engine]
    cases = [(1_000_000, "4GB", False)]
    if os.environ.get("SCALE_10M") == "1":
        cases.append((10_000_000, "4GB", True))
    if os.environ.get("SCALE_N"):
        cases = [(int(os.environ["SCALE_N"]), "4GB", False)]
    # SCALE_CONFIG: link with another comparisons file (to measure a change of the passes)
    config = Path(os.environ["SCALE_CONFIG"]) if os.environ.get("SCALE_CONFIG") else None
    results = []
    for n, mem, spill in cases:
        # SCALE_RESIDUE=0: stage 1 only (no residue exchange after it)
        for r in bench(n, mem, spill, engines if n <= 1_000_000 else ["duckdb"], config,
                       os.environ.get("SCALE_RESIDUE", "1") != "0"):
            results.append(r)
            if not r.get("completed", True):
                r["targets_met"] = False if n == 1_000_000 else None
                print(f"{r['engine']:>7} {n:>12,} x {n:,} : arrêté après "
                      f"{r['stopped_after_s']:.0f} s (budget SCALE_RESIDUE_TIMEOUT), pic "
                      f"{r['peak_rss_gb']:.2f} Go\n        {r['uptime_after']}")
                continue
            ok = r["wall_s"] < 60 and r["peak_rss_gb"] < 4 if n == 1_000_000 else None
            r["targets_met"] = ok
            print(f"{r['engine']:>7} {n:>12,} x {n:,} : {r['wall_s']:.1f} s, pic "
                  f"{r['peak_rss_gb']:.2f} Go, précision {r['precision']:.4f}, rappel "
                  f"{r['recall']:.4f}, F1 {r['f1']:.5f}, liens "
                  f"{sum(r['links_by_pass'].values()):,}\n        {r['uptime_after']}")
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
