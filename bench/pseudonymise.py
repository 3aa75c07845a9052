"""Benchmark of the agency-side pseudonymisation (`make bench-pseudonymise`).

Synthesises 1,000,000 ingested-like CAF person records (fake people, vectorised), times the HMAC
engines on the same distinct values, then times the full `pseudonymise()` path: tokens, random
handles, leakage gate and rank attack, handles table, export and signed manifest (DEMO keys),
with the wall and CPU seconds of each phase (CPU of every thread: the machine may be shared, so
CPU seconds are the figure that does not depend on the neighbours), and the token computation
alone (version 3 derivation; with --compare-hmac also the version 2 one, one HMAC per cell).
Writes bench/results/pseudonymise.json and prints records/s LAST.

With --leakage-full (`make bench-leakage-1m`) the timed run is followed by the leakage measure
(pipeline/agency/pseudonymise/leakage.py and attacks/) on EVERY row of the 1,000,000-record export,
no household sample, scored against the targets of the token design (birth year recovered for
at most the prior + 2 points of rows, full birth date for < 1 %, names for < 1 %): figures to
bench/results/leakage_1m.json (pseudonymise.json is left alone).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NONRECOURS_QUIET", "1")
# The code of this checkout, not whatever copy an editable install of the venv points at.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl

from pipeline.agency.pseudonymise.core import Materials, PseudonymiseResult, pseudonymise
from pipeline.agency.pseudonymise.hmac_engine import (
    ENGINES,
    default_engine,
    derive_subkey,
    hmac_key,
    polars_hash_available,
)
from pipeline.agency.pseudonymise.synthetic import ingested
from pipeline.common.errors import PipelineError
from pipeline.common.tables import write_parquet

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "bench" / "results" / "pseudonymise.json"
LEAKAGE_RESULT = REPO / "bench" / "results" / "leakage_1m.json"
YEAR_MARGIN, DATE_MAX, NAMES_MAX = 0.02, 0.01, 0.01  # the leakage targets (see --leakage-full)
CONVENTION = REPO / "conventions" / "demo-flers.yaml"


def micro(n: int) -> dict[str, float]:
    """Seconds per million HMACs for each installed engine, on n distinct 13-char strings."""
    values = pl.int_range(n, eager=True).cast(pl.String).str.zfill(13)
    key = hmac_key(derive_subkey(os.urandom(32), "bench"))
    out: dict[str, float] = {}
    reference = None
    for name, engine in ENGINES.items():
        if name == "polars_hash" and not polars_hash_available():
            continue
        t0 = time.perf_counter()
        digests = engine(values, key)
        dt = time.perf_counter() - t0
        if reference is None:
            reference = digests
        elif not digests.equals(reference):
            raise SystemExit(f"engine {name} disagrees with the others")
        out[name] = round(dt * 1_000_000 / n, 3)
    return out


def materials(tmp: Path) -> tuple[Materials | None, Path]:
    """DEMO keys (signed manifest) when pipeline.trust is there, else a stand-in key."""
    keys = tmp / "keys"
    try:
        from pipeline.trust.demo import install_demo_keys

        install_demo_keys("caf", keys)
        return None, keys
    except (ImportError, PipelineError) as exc:  # the bench still runs without trust material
        print(f"(no demo keys: {type(exc).__name__}; manifest not signed)")
        return Materials(os.urandom(32), "bench", "bench", None, None, True), keys


def full_leakage(res: PseudonymiseResult, work: Path) -> dict:
    """The step's leakage measure on every row of the export (no household sample)."""
    from unittest import mock

    from pipeline.agency.pseudonymise.attacks import measure
    from pipeline.agency.pseudonymise.leakage import agency_truth, frequency_leakage_frame
    from pipeline.common.tables import read_parquet

    export = read_parquet(res.export_file, "export")
    truth = agency_truth(read_parquet(work / "ingested.parquet", "extrait"),
                         read_parquet(res.handles_file, "handles"), res.agency)
    t0, cpu0 = time.perf_counter(), time.process_time()
    # the class attack draws its own sample above measure.SAMPLE_ROWS: not here
    with mock.patch.object(measure, "sample_households", lambda frame, rows=0: frame):
        freq = frequency_leakage_frame(export, truth, sample_rows=export.height)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    classes = freq["classes_jetons"]
    year, date = classes["annee"], classes["date_complete"]
    targets = {
        "annee_au_plus_a_priori_plus_2_points": {
            "gain_sur_a_priori": year["gain_sur_a_priori"], "seuil": YEAR_MARGIN,
            "atteint": year["gain_sur_a_priori"] <= YEAR_MARGIN},
        "date_complete_sous_1pct": {
            "attaque_ou_a_priori": date["attaque_ou_a_priori"], "seuil": DATE_MAX,
            "atteint": date["attaque_ou_a_priori"] < DATE_MAX},
        "noms_sous_1pct": {"pire_part_retrouvee": freq["pire_part_retrouvee"],
                           "seuil": NAMES_MAX,
                           "atteint": freq["pire_part_retrouvee"] < NAMES_MAX},
    }
    return {"lignes": export.height, "organisme": res.agency,
            "portee": "une exportation CAF (pas d'attaque croisée CAF x CPAM à cette taille)",
            "secondes": round(seconds, 1), "cpu_secondes": round(cpu, 1),
            "objectifs": targets, "tous_atteints": all(t["atteint"] for t in targets.values()),
            "mesure": freq}


def token_costs(ingested_file: Path, *, compare_hmac: bool) -> dict:
    """CPU and wall seconds of compute_tokens alone on the bench's records (prepared once)."""
    import dataclasses

    from pipeline.agency.pseudonymise.prepare import prepare_components
    from pipeline.agency.pseudonymise.tokens import compute_tokens, load_catalogue

    prepared = prepare_components(pl.read_parquet(ingested_file), "caf")
    catalogue = load_catalogue()
    out: dict = {"colonnes": len(catalogue.for_agency("caf")), "lignes": prepared.height}
    variants = {"v3_composants_cbcmac": catalogue}
    if compare_hmac:
        variants["v2_hmac_par_cellule"] = dataclasses.replace(catalogue, derivation="hmac")
    for name, cat in variants.items():
        t0, cpu0 = time.perf_counter(), time.process_time()
        compute_tokens(prepared, "caf", os.urandom(32), prepared=True, catalogue=cat)
        out[name] = {"secondes": round(time.perf_counter() - t0, 3),
                     "cpu_secondes": round(time.process_time() - cpu0, 3)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--micro", type=int, default=1_000_000)
    parser.add_argument("--engine", default=None)
    parser.add_argument("--leakage-full", action="store_true",
                        help="attacks on every row of the export -> leakage_1m.json")
    parser.add_argument("--compare-hmac", action="store_true",
                        help="also time the version 2 derivation (one HMAC per token cell)")
    args = parser.parse_args()

    per_million = micro(args.micro) if not args.leakage_full else {}
    engine = args.engine or default_engine()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        work = tmp / "caf"
        t0 = time.perf_counter()
        df = ingested("caf", args.records, seed=20261122)
        write_parquet(df, work / "ingested.parquet", sort_by=["line"], private=True)
        synth_s = time.perf_counter() - t0
        del df
        territory = tmp / "iris_quartiers.csv"
        territory.write_text("code_iris;quartier\n611690101;QN06101M\n611690102;HQ61169A\n"
                             "611700101;HQ61170A\n", "utf-8")
        mat, keys = materials(tmp)
        load_before = os.getloadavg()[0]
        t0, cpu0 = time.perf_counter(), time.process_time()
        res = pseudonymise("caf", work, keys, CONVENTION, work / "export", territory=territory,
                           seed=1,
                           materials=mat, engine=engine, sign=mat is None)
        seconds = time.perf_counter() - t0
        cpu_seconds = time.process_time() - cpu0
        load_after = os.getloadavg()[0]
        leak = json.loads(res.leakage_file.read_text("utf-8"))["frequence"]
        tokens_alone = {} if args.leakage_full else token_costs(
            work / "ingested.parquet", compare_hmac=args.compare_hmac)
        if args.leakage_full:
            full = full_leakage(res, work)
            LEAKAGE_RESULT.write_text(json.dumps(full, indent=2, sort_keys=True,
                                                 ensure_ascii=False) + "\n", "utf-8")
            print(json.dumps({k: full[k] for k in ("lignes", "secondes", "objectifs")},
                             ensure_ascii=False, indent=1))
            return
    rate = args.records / seconds
    result = {
        "records": args.records,
        "seconds": round(seconds, 3),
        "records_per_s": round(rate),
        "cpu_seconds": round(cpu_seconds, 3),
        "phases_seconds": {k: v for k, v in res.timings.items() if k != "cpu"},
        "phases_cpu_seconds": res.timings.get("cpu", {}),
        "phases_note": "attaque_frequences runs in another thread, beside controle_fuites "
                       "and ecriture (attente_attaques: what was left to wait for); the tokens "
                       "run in another thread beside handles, attributes and features; "
                       "phases_cpu_seconds = CPU of every thread during the phase",
        "tokens_alone": tokens_alone,
        "records_per_cpu_second": round(args.records / cpu_seconds),
        "load_average_1min_before": round(load_before, 2),
        "load_average_1min_after": round(load_after, 2),
        "method": engine,
        "hmac_seconds_per_million": per_million,
        "synthesis_seconds": round(synth_s, 3),
        "signed_manifest": mat is None,
        "leakage": {
            "echantillon_attaques": leak.get("echantillon_attaques"),
            "attaque_rang": leak.get("attaque_rang"),
            "controle_naif": leak.get("controle_naif"),
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "polars": pl.__version__},
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", "utf-8")
    print(json.dumps({k: result[k] for k in ("hmac_seconds_per_million", "method", "seconds")}))
    print(f"{rate:,.0f} records/s")


if __name__ == "__main__":
    main()
