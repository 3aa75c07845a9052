"""Token definitions: fixed vectors, per-field subkeys, key separation, cross-agency equality."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import polars as pl
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from helpers_pseudonymise import KEY, OTHER_KEY, caf_frame, caf_person, cpam_frame, person

from pipeline.pseudonymise.tokens import compute_tokens, load_catalogue

# Fixed vectors: KEY = bytes(range(32)), the CPAM row of helpers_pseudonymise.person().
FIXED = {
    "tok_nir": "13c545bcda729608073cda2b336cad9a",
    "tok_nom_dob": "51e4df2bb010e2f3b9cb686a9a94db68",
    "tok_nom_a": "411f89632621465915b95b7b6937dd54",
    "tok_prenom_a": "6a9b06011c3a7c5c241e26704e2183f1",
    "tok_dob": "dc971e32654901cf15cf225289fc5a3c",
    "tok_dob_md": "a21001981d86ba49be6b23d6cac13768",
    "tok_commune": "2cbd888edf05c170b1cf9ce180766b64",
}


def _independent(name: str, message: str, secret: bytes = KEY) -> str:
    """The token definition re-derived with the stdlib (HKDF from cryptography)."""
    sub = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"nonrecours/v1/" + name.encode()).derive(secret)
    return hmac.new(sub.hex().encode(), message.encode(), hashlib.sha256).hexdigest()[:32]


def test_fixed_vectors() -> None:
    toks = compute_tokens(cpam_frame([person()]), "cpam", KEY)
    for name, expected in FIXED.items():
        assert toks[name][0] == expected, name


def test_definition_matches_independent_derivation() -> None:
    toks = compute_tokens(cpam_frame([person()]), "cpam", KEY)
    sep = "\x1f"
    assert toks["tok_nir"][0] == _independent("tok_nir", "2850561169001")
    assert toks["tok_nom_dob"][0] == _independent(
        "tok_nom_dob", sep.join(["DUPONT", "CAMILLE", "1985-05-17"]))
    assert toks["tok_nom_a"][0] == _independent("tok_nom_a", "DUPONT" + sep + "1985")
    assert toks["tok_prenom_phon_a"][0] == _independent(
        "tok_prenom_phon_a", "KML" + sep + "1985")
    assert toks["tok_dob_md"][0] == _independent("tok_dob_md", "05" + sep + "17")


def test_per_field_subkeys_separate_equal_values() -> None:
    """The same text in two fields gives unrelated tokens."""
    row = person(nom="MARTIN", prenom1="MARTIN", prenoms="MARTIN")
    toks = compute_tokens(cpam_frame([row]), "cpam", KEY)
    assert toks["tok_nom_a"][0] != toks["tok_prenom_a"][0]
    assert toks["tok_prenom_a"][0] != toks["tok_prenoms_a"][0]


def test_new_key_gives_unlinkable_tokens() -> None:
    rows = [person(line=i + 2, nir=f"28505611690{i:02d}", prenom1=f"P{i}") for i in range(30)]
    a = compute_tokens(cpam_frame(rows), "cpam", KEY)
    b = compute_tokens(cpam_frame(rows), "cpam", OTHER_KEY)
    for col in a.columns:
        shared = set(a[col].drop_nulls()) & set(b[col].drop_nulls())
        assert not shared, col


def test_null_component_gives_null_token() -> None:
    row = person(date_naissance=None, naiss_jour=None, nir=None)
    toks = compute_tokens(cpam_frame([row]), "cpam", KEY)
    assert toks["tok_nir"][0] is None
    assert toks["tok_dob"][0] is None and toks["tok_nom_dob"][0] is None
    assert toks["tok_dob_md"][0] is None
    assert toks["tok_dob_ym"][0] is not None  # year and month are still known


def test_child_token_equal_across_agencies() -> None:
    parent_nir = "1800561169002"
    child_dob = dt.date(2015, 2, 3)
    caf = caf_frame([
        caf_person(line=2, role="DEM", nir=parent_nir, sexe=1),
        caf_person(line=3, role="CJT", nir="2820561169003"),
        caf_person(line=4, role="ENF", nir=None, date_naissance=child_dob, naiss_annee=2015,
                   naiss_mois=2, naiss_jour=3, sexe=2, prenom1="LINA", prenoms="LINA"),
    ])
    cpam = cpam_frame([person(line=7, qualite="ENFANT", nir=None, nir_ouvrant_droit=parent_nir,
                              date_naissance=child_dob, naiss_annee=2015, naiss_mois=2,
                              naiss_jour=3, sexe=2, prenom1="LINA", prenoms="LINA")])
    t_caf = compute_tokens(caf, "caf", KEY)
    t_cpam = compute_tokens(cpam, "cpam", KEY)
    assert t_caf["tok_enfant_p1"][2] == t_cpam["tok_enfant"][0]
    assert t_caf["tok_enfant_p2"][2] not in (None, t_cpam["tok_enfant"][0])
    assert t_caf["tok_enfant_p1"][0] is None  # only ENF/APC rows carry child tokens
    assert t_caf["tok_prenom_a"][2] == t_cpam["tok_prenom_a"][0]


def test_usage_name_and_swapped_date_cross_match() -> None:
    caf = caf_frame([caf_person(nom_naissance="DURAND", nom_usage="DUPONT",
                                date_naissance=dt.date(1985, 3, 4), naiss_mois=3, naiss_jour=4)])
    cpam = cpam_frame([person(nom="DUPONT", date_naissance=dt.date(1985, 4, 3), naiss_mois=4,
                              naiss_jour=3)])
    t_caf, t_cpam = compute_tokens(caf, "caf", KEY), compute_tokens(cpam, "cpam", KEY)
    assert t_caf["tok_nomusage_a"][0] == t_cpam["tok_nom_a"][0]
    assert t_caf["tok_nom_a"][0] != t_cpam["tok_nom_a"][0]
    assert t_caf["tok_dob_swap"][0] == t_cpam["tok_dob"][0]
    assert t_caf["tok_dob"][0] != t_cpam["tok_dob"][0]
    assert t_caf["tok_nomusage_phon_a"][0] == t_cpam["tok_nom_phon_a"][0]


def test_salt_by_birth_year() -> None:
    rows = [person(line=2), person(line=3, naiss_annee=1990, date_naissance=dt.date(1990, 5, 17))]
    toks = compute_tokens(cpam_frame(rows), "cpam", KEY)
    assert toks["tok_prenom_a"][0] != toks["tok_prenom_a"][1]
    assert toks["tok_dob_md"][0] == toks["tok_dob_md"][1]


def test_catalogue_declares_every_token_once() -> None:
    cat = load_catalogue()
    names = cat.names()
    assert len(names) == len(set(names))
    caf, cpam = set(cat.names("caf")), set(cat.names("cpam"))
    assert {"tok_nir", "tok_enfant_p1", "tok_enfant_p2", "tok_nom_dob", "tok_nomusage_dob"} <= caf
    assert {"tok_nir", "tok_enfant", "tok_nom_dob"} <= cpam
    for tok in cat.tokens:
        for other in tok["compare_with"]:
            partner = next(t for t in cat.tokens if t["name"] == other)
            assert partner["subkey"] == tok["subkey"], (tok["name"], other)


def test_tokens_are_hex_and_row_aligned() -> None:
    rows = [person(line=i + 2, prenom1=n) for i, n in enumerate(["ANNE", None, "ANNE", "LEA"])]
    toks = compute_tokens(cpam_frame(rows), "cpam", KEY)
    assert toks.height == 4
    col = toks["tok_prenom_a"]
    assert col[1] is None and col[0] == col[2] != col[3]
    assert col.drop_nulls().str.contains(r"^[0-9a-f]{32}$").all()


@pytest.mark.parametrize("engine", ["duckdb", "cryptography"])
def test_engines_give_same_tokens(engine: str) -> None:
    frame = cpam_frame([person(line=i + 2, nir=f"28505611690{i:02d}") for i in range(5)])
    assert compute_tokens(frame, "cpam", KEY, engine=engine).equals(
        compute_tokens(frame, "cpam", KEY))


def test_unknown_agency_refused() -> None:
    with pytest.raises(ValueError):
        compute_tokens(pl.DataFrame({"line": [1]}), "msa", KEY)
