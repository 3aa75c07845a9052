"""Exports and residue files for the residue-stage tests: token exports from the linkage tests'
fixtures (tests/match/match_fixtures.py), Bloom lanes from the real encoder
(pipeline/shared/bloom.py) under a test key, as an agency would send them."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "match"))
from match_fixtures import config_with, export, handle_of  # noqa: F401 (config_with: re-exported)

from pipeline.shared import bloom

KEY = bytes(range(32))  # test key: the encoder only needs 32 bytes
COMMUNE = "61169"  # one commune: the names + commune key is the names' key

SYLLABLES = ["BA", "LE", "RO", "MI", "TA", "NU", "CHE", "VAL", "DOR", "GUI", "PER", "SON",
             "MAR", "TIN", "LOU", "BRE", "FON", "DAL", "RIC", "HAR", "NOU", "VEL", "QUI", "ZEN"]
FIRST = ["MARIE", "JEAN", "PIERRE", "MICHEL", "ANNE", "LOUIS", "CLAIRE", "PAUL", "JULIE",
         "LUC", "EMMA", "HUGO", "LEA", "NATHAN", "CHLOE", "ENZO", "INES", "THEO", "SARAH", "NOAH",
         "ROMAIN", "AGATHE", "BASILE", "CELESTE", "DAMIEN", "ELOISE", "FABIEN", "GAELLE"]


def surname(rnd: random.Random) -> str:
    return "".join(rnd.choice(SYLLABLES) for _ in range(rnd.choice([2, 3])))


def typo(word: str, rnd: random.Random) -> str:
    k = rnd.randrange(1, len(word))
    return word[:k] + rnd.choice("AEIOUXZ") + word[k + 1:]


def random_dob(rnd: random.Random) -> str:
    return f"{rnd.randint(1940, 2005)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"


def population(n: int, hard: int, seed: int, *, strangers: int = 0
               ) -> tuple[list[dict], list[dict], list[tuple[str, str]]]:
    """`n` people in both files, the first `hard` of them with their birth date replaced at the
    CPAM and one typo in a name (no exact key can link them: only the residue can), then
    `strangers` people on each side without a partner. Returns caf, cpam, true pairs."""
    rnd = random.Random(seed)
    caf, cpam, pairs = [], [], []
    for i in range(n):
        sexe = rnd.choice([1, 2])
        base = dict(sexe=sexe, dob=random_dob(rnd), nom=surname(rnd), prenom1=rnd.choice(FIRST),
                    code_commune=COMMUNE)
        c, r = dict(base, id=f"c{i}", foyer=f"f{i}"), dict(base, id=f"r{i}", foyer=f"g{i}")
        if i < hard:
            r["dob"] = random_dob(rnd)
            if rnd.random() < 0.5:
                r["nom"] = typo(r["nom"], rnd)
            else:
                r["prenom1"] = typo(r["prenom1"], rnd)
        caf.append(c)
        cpam.append(r)
        pairs.append((c["id"], r["id"]))
    for j in range(strangers):
        for side, out in (("cs", caf), ("rs", cpam)):
            out.append(dict(id=f"{side}{j}", foyer=f"{side}f{j}", sexe=rnd.choice([1, 2]),
                            dob=random_dob(rnd), nom=surname(rnd), prenom1=rnd.choice(FIRST),
                            code_commune=COMMUNE))
    # a territory with namesakes: a third of the CAF strangers bear the names of a CAF person
    # whose pair the keys link
    # (another birth date): what the namesake guard measures
    for j in range(0, strangers, 3):
        caf[n + j].update(nom=caf[hard + j]["nom"], prenom1=caf[hard + j]["prenom1"])
    return caf, cpam, pairs


def write_exports(tmp: Path, caf: list[dict], cpam: list[dict],
                  opposed: set[str] = frozenset()) -> tuple[Path, Path]:
    """The two token exports, with the `opposition` column (True for the ids in `opposed`)."""
    tmp.mkdir(parents=True, exist_ok=True)
    paths = []
    for agency, persons in (("caf", caf), ("cpam", cpam)):
        frame = export(persons, agency).with_columns(
            opposition=pl.Series([p["id"] in opposed for p in persons]))
        path = tmp / f"{agency}.pseudo.parquet"
        frame.write_parquet(path)
        paths.append(path)
    return paths[0], paths[1]


def residue_files(tmp: Path, caf: list[dict], cpam: list[dict],
                  requests_dir: Path, *, commune: bool = False) -> dict[str, Path]:
    """Each agency's answer to its request: the requested rows' lanes (handle + LANES);
    `commune`: the commune item encoded too (as the agencies do)."""
    out = {}
    for agency, persons in (("caf", caf), ("cpam", cpam)):
        wanted = pl.read_csv(requests_dir / bloom.RESIDUE_DIR
                             / bloom.RESIDUE_REQUEST.format(provider=agency))["handle"]
        rows = [p for p in persons if handle_of(p["id"], agency) in set(wanted.to_list())]
        comps = bloom.components_from(
            nom=[p.get("nom") for p in rows], prenom=[p.get("prenom1") for p in rows],
            date_naissance=[p.get("dob") for p in rows], sexe=[p.get("sexe") for p in rows],
            commune=[p.get("code_commune") for p in rows] if commune else None)
        lanes = bloom.encode(comps, KEY)
        frame = pl.concat([pl.DataFrame({"handle": [handle_of(p["id"], agency) for p in rows]},
                                        schema={"handle": pl.String}), lanes],
                          how="horizontal").sort("handle")
        folder = tmp / "residu" / agency
        folder.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(folder / bloom.RESIDUE_FILE)
        out[agency] = folder / bloom.RESIDUE_FILE
    return out


def link_pairs(links: Path, caf: list[dict], cpam: list[dict]) -> dict[tuple[str, str], str]:
    ids = {handle_of(p["id"], "caf"): p["id"] for p in caf}
    ids |= {handle_of(p["id"], "cpam"): p["id"] for p in cpam}
    got = pl.read_parquet(links)
    return {(ids[c], ids[r]): p for c, r, p in got.select("caf_handle", "cpam_handle", "pass")
            .iter_rows()}
