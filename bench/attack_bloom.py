"""The central operator's attacks on the residue's Bloom filters (`make bench-attack-bloom`).

Control (plain CLK, hardened=False) beside the shipped hardened encoding, both from
pipeline/shared/bloom.py under one fixed demo key, attacked by
pipeline/agency/pseudonymise/attacks/bloom_attacks.py (pattern mining, Hamming weight, graph
matching) and scored against the plaintext. Cases:

1. residu_echantillon: the real stage-1 residue of sample_data/ (the whole chain run on it; the
   rows of both agencies that no link holds, opposed rows excluded), both agencies stacked as
   the operator holds them;
2. synthetique_20k: ~20,000 CAF records of a fresh synthetic territory (8,000 households),
   all encoded: a residue far larger than any the exact keys leave;
3. febrl4_complet: FEBRL4 A and B (10,000 records) all encoded: the worst case, every record
   sent as a filter (no sex in FEBRL);
4. graphe_selon_part_du_residu: the graph attack when the attacker's plaintext list is a
   whole population of POPULATION records and the filters only a share of it (the others are
   decoys), for each share in SHARES.

The targets (issue): birth year recovered for no more records than the prior + 2 points, full
date < 1 %, names < 1 %. Writes bench/results/attack_bloom.json and prints the figures.
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

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # this checkout's pipeline, then linkage_data

from pipeline.agency.ingest.api import ingest  # noqa: E402
from pipeline.agency.pseudonymise.attacks import bloom_graph  # noqa: E402
from pipeline.agency.pseudonymise.attacks.bloom_attacks import measure  # noqa: E402
from pipeline.agency.pseudonymise.attacks.bloom_items import scheme_encode  # noqa: E402
from pipeline.agency.pseudonymise.attacks.public_names import first_name_table  # noqa: E402
from pipeline.shared.providers import AGENCIES  # noqa: E402

OUT = ROOT / "bench" / "results" / "attack_bloom.json"
KEY = bytes.fromhex("5eed" * 16)  # demo linkage key of the bench, not a real one
SYNTH_HOUSEHOLDS, SYNTH_SEED = 8000, 20261202
POPULATION, SHARES = 3000, (0.05, 0.2, 1.0)
TARGETS = {"annee_au_plus_prior_plus": 0.02, "date_complete_max": 0.01, "noms_max": 0.01}
PLAIN = ["nom", "prenom1", "naiss_annee", "naiss_mois", "naiss_jour", "sexe", "code_commune"]


def plain_of(ingested: pl.DataFrame, agency: str) -> pl.DataFrame:
    nom = "nom_naissance" if agency == "caf" else "nom"
    return ingested.select(pl.col(nom).alias("nom"), *PLAIN[1:])


def sample_residue(tmp: Path) -> pl.DataFrame:
    """The rows stage 1 leaves unlinked on the sample (both agencies), opposed rows excluded."""
    out = tmp / "chain"
    subprocess.run([sys.executable, "-m", "pipeline", "run", "--dataset", str(ROOT / "sample_data"),
                    "--out", str(out), "--convention", str(ROOT / "conventions/demo-flers.yaml"),
                    "--remplacer"], check=True, capture_output=True)
    links = pl.read_parquet(out / "central" / "links.parquet")
    frames = []
    for agency in AGENCIES:
        handles = pl.read_parquet(out / agency / "handles.parquet")
        linked = links[f"{agency}_handle"].implode()
        left = handles.filter(~pl.col("handle").is_in(linked)
                              & ~pl.col("opposition").fill_null(False))
        ing = pl.read_parquet(out / agency / "ingested.parquet")
        plain = plain_of(ing, agency).with_columns(line=ing["line"])
        frames.append(left.select("line").join(plain, on="line").drop("line"))
    return pl.concat(frames)


def synthetic(tmp: Path) -> pl.DataFrame:
    from pipeline.synth.generate import generate

    ds = tmp / "synth"
    generate(SYNTH_HOUSEHOLDS, SYNTH_SEED, out=ds)
    ingest("caf", ds / "raw" / "caf_extract.csv", tmp / "synth_caf")
    return plain_of(pl.read_parquet(tmp / "synth_caf" / "ingested.parquet"), "caf")


def febrl4(tmp: Path) -> pl.DataFrame:
    import linkage_data

    ds = tmp / "febrl4"
    linkage_data.febrl4(ds)
    frames = []
    for agency in AGENCIES:
        ingest(agency, ds / "raw" / f"{agency}_extract.csv", tmp / f"febrl_{agency}")
        frames.append(plain_of(pl.read_parquet(tmp / f"febrl_{agency}" / "ingested.parquet"),
                               agency))
    return pl.concat(frames)


def attack_both(plain: pl.DataFrame, names: pl.DataFrame) -> dict:
    out = {"lignes": plain.height}
    for label, hardened in (("controle_sans_diffusion", False), ("durci", True)):
        t0 = time.perf_counter()
        bits = scheme_encode(plain, KEY, hardened=hardened)
        res = measure(bits, plain, names)
        res["secondes"] = round(time.perf_counter() - t0, 1)
        out[label] = res
        print(f"  {label}: annee {res['annee_naissance_retrouvee']} (prior {res['prior_annee']}),"
              f" date {res['date_complete_retrouvee']} (prior {res['prior_date_complete']}),"
              f" noms {res['noms_retrouves']}, prenoms {res['prenoms_retrouves']},"
              f" graphe {res['reidentifies_graphe']},"
              f" poids~longueur {res['poids_de_hamming']['correlation_poids_longueur_noms']}"
              f" ({res['secondes']} s)", flush=True)
    h = out["durci"]
    out["cibles_durci"] = {
        "annee": h["annee_naissance_retrouvee"] <= h["prior_annee"]
        + TARGETS["annee_au_plus_prior_plus"],
        "date_complete": h["date_complete_retrouvee"] < TARGETS["date_complete_max"],
        "noms": max(h["noms_retrouves"], h["prenoms_retrouves"]) < TARGETS["noms_max"],
        "graphe_moins_de_1_pourcent": h["reidentifies_graphe"] < 0.01,
    }
    return out


def graph_by_share(population: pl.DataFrame) -> dict:
    """The graph attack with the attacker's list = the whole population, filters = a share."""
    rng = np.random.default_rng(5)
    pop = population.sample(min(POPULATION, population.height), seed=5)
    out = {"population": pop.height}
    for share in SHARES:
        rows = np.sort(rng.choice(pop.height, max(int(share * pop.height), 2), replace=False))
        res = {}
        for label, hardened in (("controle_sans_diffusion", False), ("durci", True)):
            bits = scheme_encode(pop[rows], KEY, hardened=hardened)
            res[label] = bloom_graph.graph_attack(bits, pop[rows], reference=pop, truth=rows)
        out[f"part_{int(share * 100)}_pct"] = res
        print(f"  part {share:.0%}: controle {res['controle_sans_diffusion']['reidentifies']},"
              f" durci {res['durci']['reidentifies']} (hasard {res['durci']['hasard']})",
              flush=True)
    return out


def main() -> None:
    load = os.getloadavg()
    names = first_name_table()
    results: dict = {"cle": "demo (fixe)", "charge_machine_debut": [round(x, 2) for x in load],
                     "cibles": TARGETS, "cas": {}}
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        cases = [("residu_echantillon", sample_residue), ("synthetique_20k", synthetic),
                 ("febrl4_complet", febrl4)]
        synth = None
        for name, build in cases:
            print(name, flush=True)
            plain = build(tmp)
            if name == "synthetique_20k":
                synth = plain
            results["cas"][name] = attack_both(plain, names)
        print("graphe_selon_part_du_residu", flush=True)
        results["graphe_selon_part_du_residu"] = graph_by_share(synth)
    results["charge_machine_fin"] = [round(x, 2) for x in os.getloadavg()]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"-> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
