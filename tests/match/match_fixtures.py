"""Small token-level exports for the linkage tests, built from synthetic plaintext persons.

Tokens follow pipeline/shared/tokens.yaml (components and shared subkeys) but use a
local
stand-in hash (SHA-256 of subkey + components) instead of the keyed HMAC: the linkage only needs
equal inputs to give equal tokens. Phonetic codes are a crude stand-in (first 3 letters).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from pipeline.agency.pseudonymise.tokens import load_catalogue

SEP = "\x1f"


def handle_of(pid: str, agency: str) -> str:
    return hashlib.md5(f"{agency}:{pid}".encode()).hexdigest()


def _token(subkey: str, parts: list[object]) -> int | None:
    """A stand-in token (export contract 5: a signed 64-bit integer)."""
    if any(p is None or p == "" for p in parts):
        return None
    msg = subkey + "/" + SEP.join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(msg.encode()).digest()[:8], "big") - 2**63


def _derive(p: dict) -> dict:
    """Prepared components from a plaintext person (dob 'AAAA-MM-JJ')."""
    q = dict(p)
    dob = q.get("dob")
    if dob:
        y, m, d = dob.split("-")
        q.update(annee=y, mois=m, jour=d)
        q["dob_swap"] = f"{y}-{d}-{m}" if int(d) <= 12 and d != m else None
    for src, dst in (("nom", "nom_phon"), ("nom_usage", "nom_usage_phon"),
                     ("prenom1", "prenom1_phon")):
        q[dst] = q[src][:3] if q.get(src) else None
    q.setdefault("prenoms", q.get("prenom1"))
    q["prenom1_init"] = q["prenom1"][:1] if q.get("prenom1") else None
    # contract 3: the certified NIR key (tokens.yaml tok_nir_certifie); `statut` defaults to
    # certified, as most NIRs of an extract are
    q["nir_certifie"] = q.get("nir") if q.get("statut", "certifie") == "certifie" else None
    return q


def _component(q: dict, name: str) -> object:
    """A prepared component, or a deletion variant of one (`nom_del_03`), computed by the
    pipeline's own expression (pipeline/agency/pseudonymise/prepare.py)."""
    from pipeline.agency.pseudonymise.prepare import component_expr

    if "_del_" not in name:
        return q.get(name)
    base = name.rpartition("_del_")[0]
    return pl.DataFrame({base: [q.get(base)]}, schema={base: pl.String}).select(
        component_expr(name)).item()


def export(persons: list[dict], agency: str) -> pl.DataFrame:
    """A pseudonymised export (handle, foyer, CAF `adulte`, tok_*) for `persons`.

    Each person dict: id (test name), foyer, role, sexe, dob, nom, prenom1, optional nom_usage,
    prenom2, nir, nir_parent1, nir_parent2, nir_ouvrant_droit, code_commune.
    """
    cat = load_catalogue()
    specs = cat.for_agency(agency)
    rows = []
    for p in persons:
        q = _derive(p)
        row = {
            "handle": handle_of(p["id"], agency),
            "foyer": handle_of(str(p.get("foyer", p["id"])), agency + "-foyer"),
            "role": p.get("role", "DEM" if agency == "caf" else "ASSURE"),
            "sexe": p.get("sexe"),
            "code_commune": p.get("code_commune", "61169"),
        }
        for s in specs:
            ok = s.roles is None or row["role"] in s.roles
            row[s.name] = _token(s.subkey, [_component(q, c) for c in s.components]) if ok else None
        rows.append(row)
    schema = {"handle": pl.String, "foyer": pl.String, "role": pl.String, "sexe": pl.Int8,
              "code_commune": pl.String, **{s.name: pl.Int64 for s in specs}}
    # Contract 3: role, sex and commune stay at the agency (they only shaped the tokens); the
    # CAF sends its `adulte` flag.
    frame = pl.DataFrame(rows, schema=schema)
    if agency == "caf":
        frame = frame.with_columns(adulte=pl.col("role").is_in(["DEM", "CJT"]))
    return frame.drop("role", "sexe", "code_commune")


def write_exports(tmp: Path, caf: list[dict], cpam: list[dict]) -> tuple[Path, Path]:
    a, b = tmp / "caf.pseudo.parquet", tmp / "cpam.pseudo.parquet"
    export(caf, "caf").write_parquet(a)
    export(cpam, "cpam").write_parquet(b)
    return a, b


def config_with_passes(tmp: Path, names: tuple[str, ...]) -> Path:
    """The packaged linkage model with only the passes `names`: what they leave goes to
    Fellegi-Sunter (the full key hierarchy links most noisy fixtures deterministically)."""
    import yaml

    from pipeline.shared.linkage_model import DEFAULT_CONFIG

    cfg = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    cfg["passes"] = [p for p in cfg["passes"] if p["name"] in names]
    path = tmp / "cfg_passes.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def config_with(tmp: Path, name: str, section: str, **values: object) -> Path:
    """The packaged linkage model with `values` set in its `section` (e.g. residue.max_bucket),
    written to tmp/name: the control or the stress case of one declared setting."""
    import yaml

    from pipeline.shared.linkage_model import DEFAULT_CONFIG

    cfg = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    cfg[section].update(values)
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def truth_file(tmp: Path, pairs: list[tuple[str, str]]) -> Path:
    path = tmp / "truth.csv"
    pl.DataFrame({"caf_handle": [handle_of(a, "caf") for a, _ in pairs],
                  "cpam_handle": [handle_of(b, "cpam") for _, b in pairs]}).write_csv(path)
    return path


SURNAMES = ["MARTIN", "BERNARD", "THOMAS", "PETIT", "ROBERT", "RICHARD", "DURAND", "DUBOIS",
            "MOREAU", "LAURENT", "SIMON", "MICHEL", "LEFEBVRE", "LEROY", "ROUX", "DAVID",
            "BERTRAND", "MOREL", "FOURNIER", "GIRARD", "BONNET", "DUPONT", "LAMBERT", "FONTAINE"]
FIRST = ["MARIE", "JEAN", "PIERRE", "MICHEL", "ANNE", "LOUIS", "CLAIRE", "PAUL", "JULIE",
         "LUC", "EMMA", "HUGO", "LEA", "NATHAN", "CHLOE", "ENZO", "INES", "THEO", "SARAH", "NOAH"]


def noisy_population(n: int, seed: int, *, nir_share: float = 0.5,
                     noise: float = 0.3) -> tuple[list[dict], list[dict], list[tuple[str, str]]]:
    """`n` synthetic people in both files (plus 10 % extra on each side), noisy at the CPAM.

    Noise (each with probability `noise`/3): a surname letter changed, day/month swapped,
    first name replaced by the second given name. Returns caf, cpam, true pairs.
    """
    import random

    rnd = random.Random(seed)
    caf, cpam, pairs = [], [], []
    for i in range(int(n * 1.2)):
        sexe = rnd.choice([1, 2])
        dob = f"{rnd.randint(1940, 2010)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
        p1, p2 = rnd.sample(FIRST, 2)
        base = dict(sexe=sexe, dob=dob, nom=rnd.choice(SURNAMES), prenom1=p1, prenom2=p2,
                    code_commune=rnd.choice(["61169", "61001", "61214"]))
        if rnd.random() < nir_share:
            base["nir"] = f"{sexe}{dob[2:4]}{dob[5:7]}61{i:07d}"
        c = dict(base, id=f"c{i}")
        r = dict(base, id=f"r{i}")
        if rnd.random() < noise / 3:
            k = rnd.randrange(len(r["nom"]))
            r["nom"] = r["nom"][:k] + rnd.choice("AEIOUXZ") + r["nom"][k + 1:]
        y, m, d = dob.split("-")
        if int(d) <= 12 and rnd.random() < noise / 3:
            r["dob"] = f"{y}-{d}-{m}"
        if rnd.random() < noise / 3:
            r["prenom1"], r["prenom2"] = p2, p1
        if i < n:
            caf.append(c)
            cpam.append(r)
            pairs.append((c["id"], r["id"]))
        elif i < n * 1.1:
            caf.append(c)
        else:
            cpam.append(r)
    return caf, cpam, pairs
