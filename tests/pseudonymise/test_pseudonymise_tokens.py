"""Token definitions: fixed vectors, an independent re-derivation, the vectorised path against
the plain-Python reference, per-field subkeys, key separation, cross-agency equality."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from helpers_pseudonymise import KEY, OTHER_KEY, caf_frame, caf_person, cpam_frame, person
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.agency.pseudonymise.prepare import DELETION_MARK
from pipeline.agency.pseudonymise.synthetic import ingested
from pipeline.agency.pseudonymise.tokens import (
    V1_CATALOGUE,
    compute_tokens,
    load_catalogue,
    reference_token,
    reference_tokens,
)
from pipeline.shared import token_catalogue
from pipeline.shared.linkage_model import variant_conditions

# Fixed vectors: KEY = bytes(range(32)), the CPAM row of helpers_pseudonymise.person().
# Version 3 (derivation composants), contract 5's Int64 form (the first 64 bits of the 128-bit
# MAC, big-endian, minus 2^63); each one also re-derived below by `_independent`.
FIXED = {
    "tok_nir": -8568571902252417169,
    "tok_nir_dob": 3953780742304332286,
    "tok_nom_dob": -3602627103855693996,
    "tok_nom_md": 7325379830459027230,
    "tok_phon_dob": 7580050616944072448,
    "tok_nom_commune": -720737458123056440,
    "tok_nomdel_dob_02": 8735035669450408103,
}


def _aes_ecb(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def _independent(name: str, components: list[str], secret: bytes = KEY) -> int:
    """The version 3 definition re-derived apart from tokens.py: HKDF subkeys, stdlib HMAC per
    component, CBC-MAC written out block by block with one-block AES-ECB calls."""
    def hkdf(info: str) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=b"nonrecours/v3/" + info.encode()).derive(secret)

    kc = hkdf("composant").hex().encode()
    chain = _aes_ecb(hkdf(name), b"nonrecours/v3/\0" + bytes([len(components)]))
    for value in components:
        digest = hmac.new(kc, value.encode(), hashlib.sha256).digest()[:16]
        chain = _aes_ecb(hkdf(name), bytes(a ^ b for a, b in zip(chain, digest, strict=True)))
    return int.from_bytes(chain[:8], "big") - 2**63


def test_fixed_vectors() -> None:
    toks = compute_tokens(cpam_frame([person()]), "cpam", KEY)
    for name, expected in FIXED.items():
        assert toks[name][0] == expected, name
    assert FIXED["tok_nom_commune"] == _independent(
        "tok_nom_commune", ["DUPONT", "CAMILLE", "61169", "1985"])


def test_definition_matches_independent_derivation() -> None:
    toks = compute_tokens(cpam_frame([person()]), "cpam", KEY)
    assert toks["tok_nir"][0] == _independent("tok_nir", ["2850561169001"])
    assert toks["tok_nir_dob"][0] == _independent("tok_nir_dob", ["2850561169001", "1985-05-17"])
    assert toks["tok_nom_dob"][0] == _independent("tok_nom_dob",
                                                  ["DUPONT", "CAMILLE", "1985-05-17"])
    assert toks["tok_nom_md"][0] == _independent("tok_nom_md", ["DUPONT", "CAMILLE", "05", "17"])
    assert toks["tok_nom_init_dob"][0] == _independent("tok_nom_init_dob",
                                                       ["DUPONT", "C", "1985-05-17"])
    assert toks["tok_phon_dob"][0] == _independent("tok_phon_dob", ["DPN", "KML", "1985-05-17"])
    assert toks["tok_nir_sexe"][0] == _independent("tok_nir_sexe", ["2850561169001", "2"])


def test_component_order_and_boundaries_matter() -> None:
    """The digests are per component: ("AB", "C") and ("A", "BC") differ, and so does the
    order (the swapped-name key tok_inv_dob is not tok_nom_dob of the same row)."""
    cat = load_catalogue()
    assert reference_token(KEY, cat, "tok_x", ["AB", "C"]) != reference_token(
        KEY, cat, "tok_x", ["A", "BC"])
    toks = compute_tokens(caf_frame([caf_person()]), "caf", KEY)
    assert toks["tok_inv_dob"][0] != toks["tok_nom_dob"][0]
    assert toks["tok_inv_dob"][0] == _independent("tok_nom_dob",
                                                  ["CAMILLE", "DUPONT", "1985-05-17"])


@pytest.mark.parametrize("agency", ["caf", "cpam"])
def test_vectorised_tokens_equal_the_reference(agency: str) -> None:
    """Every token of a few hundred synthetic rows (nulls, roles, names of every length),
    column by column, equal to the plain-Python reference, in any row order."""
    df = ingested(agency, 300, seed=11)
    got = compute_tokens(df, agency, KEY)
    ref = reference_tokens(df, agency, KEY)
    assert got.columns == list(ref)
    for col in got.columns:
        assert got[col].to_list() == ref[col], col
    assert got[col].null_count() < got.height  # the comparison was not on empty columns
    order = np.random.default_rng(3).permutation(df.height)
    assert compute_tokens(df, agency, KEY, order=order).equals(got[order])


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.text(min_size=1, max_size=14)),
                          st.one_of(st.none(), st.sampled_from(["ANNE", "LÉA", "JO"]))),
                min_size=1, max_size=12),
       st.binary(min_size=32, max_size=32))
def test_vectorised_tokens_equal_the_reference_on_any_names(rows: list, secret: bytes) -> None:
    frame = cpam_frame([person(line=i + 2, nom=n, prenom1=p) for i, (n, p) in enumerate(rows)])
    got = compute_tokens(frame, "cpam", secret)
    ref = reference_tokens(frame, "cpam", secret)
    for col in ("tok_nom_dob", "tok_nomdel_dob_01", "tok_invdel_dob_03", "tok_nom_commune"):
        assert got[col].to_list() == ref[col], col


def test_v1_control_catalogue_still_computes() -> None:
    """The version 1 scheme (the attacks' control) keeps its own prefix and tokens."""
    v1 = load_catalogue(V1_CATALOGUE)
    toks = compute_tokens(cpam_frame([person()]), "cpam", KEY, catalogue=v1)
    assert "tok_dob_md" in toks.columns and "tok_nom_md" not in toks.columns
    sub = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"nonrecours/v1/tok_dob_md").derive(KEY)
    assert toks["tok_dob_md"][0] == hmac.new(sub.hex().encode(), b"05\x1f17",
                                             hashlib.sha256).hexdigest()[:32]


def test_every_v2_key_holds_a_name_or_a_nir() -> None:
    """No standalone low-cardinality token: each key carries a full name, a NIR or a parent
    NIR, so its values are near-unique per person (docs/CONTRACTS.md, version 2)."""
    anchors = {"nom", "nom_usage", "prenom1", "nom_phon", "nir", "nir_parent1", "nir_parent2",
               "nir_ouvrant_droit", "nir_certifie"}
    for tok in load_catalogue().tokens:
        for side in tok["agencies"].values():
            # a deletion variant (nom_del_03) carries its name minus one letter: same anchor
            comps = {c.rpartition(DELETION_MARK)[0] or c for c in side["components"]}
            assert comps & anchors, tok["name"]
            assert len(comps) >= 2 or comps <= {"nir"}, tok["name"]
            if comps & {"annee", "mois", "jour", "dob", "dob_swap", "sexe", "code_commune"}:
                assert comps & anchors, tok["name"]


def test_per_field_subkeys_separate_equal_values() -> None:
    """The same components under two keys give unrelated tokens."""
    row = person(nom="MARTIN", prenom1="MARTIN", prenoms="MARTIN")
    toks = compute_tokens(cpam_frame([row]), "cpam", KEY)
    assert toks["tok_nom_dob"][0] != toks["tok_phon_dob"][0]
    assert toks["tok_nom_ym"][0] != toks["tok_nom_md"][0]


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
    assert toks["tok_nir_dob"][0] is None and toks["tok_nom_dob"][0] is None
    assert toks["tok_nom_md"][0] is None and toks["tok_prenom_dob"][0] is None
    assert toks["tok_nom_ym"][0] is not None  # year and month are still known
    assert toks["tok_nom_commune"][0] is not None  # names, commune and year known


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
    assert t_caf["tok_enfant_prenom_p1"][2] == t_cpam["tok_enfant_prenom"][0]
    assert t_caf["tok_enfant_ym_p1"][2] == t_cpam["tok_enfant_ym"][0]


def test_child_without_a_nir_among_adults_gets_its_parents_nir() -> None:
    """A CPAM file where most rows are adults whose `nir_ouvrant_droit` is their own NIR and the
    children have none of their own: the two columns agree wherever both are known, but the
    child's token must hash the parent's NIR, not its own (blank) one. The vectorised path once
    reused the NIR column's digests for `nir_ouvrant_droit` on such files (equal "wherever both
    are known" ignored the children's nulls): no child token matched the CAF's (enfant pass
    empty on bench/scale.py's 1M x 1M exports)."""
    adults = [f"1{80 + i:02d}0561169{i:03d}" for i in range(6)]
    rows = [person(line=2 + i, qualite="ASSURE", nir=nir, nir_ouvrant_droit=nir)
            for i, nir in enumerate(adults)]
    rows += [person(line=10 + k, qualite="ENFANT", nir=None, nir_ouvrant_droit=adults[0],
                    date_naissance=dt.date(2015, 2, 3 + k), naiss_annee=2015, naiss_mois=2,
                    naiss_jour=3 + k, sexe=2, prenom1="LINA", prenoms="LINA") for k in range(2)]
    frame = cpam_frame(rows)
    got = compute_tokens(frame, "cpam", KEY)
    ref = reference_tokens(frame, "cpam", KEY)
    for col in got.columns:
        assert got[col].to_list() == ref[col], col
    caf = caf_frame([
        caf_person(line=2, role="DEM", nir=adults[0], sexe=1),
        caf_person(line=3, role="ENF", nir=None, date_naissance=dt.date(2015, 2, 3),
                   naiss_annee=2015, naiss_mois=2, naiss_jour=3, sexe=2, prenom1="LINA",
                   prenoms="LINA")])
    assert compute_tokens(caf, "caf", KEY)["tok_enfant_p1"][1] == got["tok_enfant"][6]


def test_usage_name_and_swapped_date_cross_match() -> None:
    caf = caf_frame([caf_person(nom_naissance="DURAND", nom_usage="DUPONT",
                                date_naissance=dt.date(1985, 3, 4), naiss_mois=3, naiss_jour=4)])
    cpam = cpam_frame([person(nom="DUPONT", date_naissance=dt.date(1985, 4, 3), naiss_mois=4,
                              naiss_jour=3)])
    t_caf, t_cpam = compute_tokens(caf, "caf", KEY), compute_tokens(cpam, "cpam", KEY)
    assert t_caf["tok_nom_dob"][0] != t_cpam["tok_nom_dob"][0]
    # CAF: usage name + swapped date is not a key, but each variant alone is
    caf2 = caf_frame([caf_person(nom_naissance="DUPONT", date_naissance=dt.date(1985, 3, 4),
                                 naiss_mois=3, naiss_jour=4)])
    t_caf2 = compute_tokens(caf2, "caf", KEY)
    assert t_caf2["tok_nom_dobswap"][0] == t_cpam["tok_nom_dob"][0]
    assert t_caf2["tok_nom_dob"][0] != t_cpam["tok_nom_dob"][0]
    assert t_caf["tok_prenom_dob"][0] != t_cpam["tok_prenom_dob"][0]


def test_swapped_names_cross_match() -> None:
    caf = caf_frame([caf_person(nom_naissance="CAMILLE", prenom1="DUPONT", prenoms="DUPONT")])
    t_caf = compute_tokens(caf, "caf", KEY)
    t_cpam = compute_tokens(cpam_frame([person()]), "cpam", KEY)
    assert t_caf["tok_inv_dob"][0] == t_cpam["tok_nom_dob"][0]
    assert t_caf["tok_nom_dob"][0] != t_cpam["tok_nom_dob"][0]


def test_year_error_keeps_the_month_day_key() -> None:
    rows = [person(line=2), person(line=3, naiss_annee=1990, date_naissance=dt.date(1990, 5, 17))]
    toks = compute_tokens(cpam_frame(rows), "cpam", KEY)
    assert toks["tok_nom_dob"][0] != toks["tok_nom_dob"][1]
    assert toks["tok_nom_md"][0] == toks["tok_nom_md"][1]
    assert toks["tok_nom_ym"][0] != toks["tok_nom_ym"][1]


def test_catalogue_declares_every_token_once() -> None:
    cat = load_catalogue()
    names = cat.names()
    assert len(names) == len(set(names))
    caf, cpam = set(cat.names("caf")), set(cat.names("cpam"))
    assert {"tok_nir", "tok_enfant_p1", "tok_enfant_p2", "tok_nom_dob", "tok_nomusage_dob"} <= caf
    assert {"tok_nir", "tok_enfant", "tok_nom_dob"} <= cpam
    for tok in cat.tokens:
        for other in tok["compare_with"]:
            # a `variants` family is named by its entry (its positions carry `family`)
            partner = next(t for t in cat.tokens if other in (t["name"], t.get("family")))
            assert partner["subkey"] == tok["subkey"], (tok["name"], other)


def test_tokens_are_int64_and_row_aligned() -> None:
    rows = [person(line=i + 2, prenom1=n) for i, n in enumerate(["ANNE", None, "ANNE", "LEA"])]
    toks = compute_tokens(cpam_frame(rows), "cpam", KEY)
    assert toks.height == 4
    col = toks["tok_nom_commune"]
    assert col[1] is None and col[0] == col[2] != col[3]
    assert col.dtype == pl.Int64


@pytest.mark.parametrize("engine", ["duckdb", "cryptography"])
def test_engines_give_same_tokens(engine: str) -> None:
    frame = cpam_frame([person(line=i + 2, nir=f"28505611690{i:02d}") for i in range(5)])
    assert compute_tokens(frame, "cpam", KEY, engine=engine).equals(
        compute_tokens(frame, "cpam", KEY))


def test_unknown_agency_refused() -> None:
    with pytest.raises(ValueError):
        compute_tokens(pl.DataFrame({"line": [1]}), "msa", KEY)


# --- typo-tolerant keys: deletion neighbourhoods (tokens.yaml `variants`) -----------------------


def test_deletion_variant_known_answer() -> None:
    """Position NN of tok_nomdel_dob = the surname without its NN-th letter + date, under the
    subkey of tok_nomseul_dob; past the name's end, the pad "#NN#" + the name."""
    toks = compute_tokens(cpam_frame([person()]), "cpam", KEY)
    assert toks["tok_nomdel_dob_02"][0] == _independent("tok_nomseul_dob",
                                                         ["DUONT", "1985-05-17"])
    assert toks["tok_nomdel_dob_06"][0] == _independent("tok_nomseul_dob",
                                                         ["#06#DUPONT", "1985-05-17"])
    assert toks["tok_invseul_dob"][0] == _independent("tok_nomseul_dob",
                                                       ["CAMILLE", "1985-05-17"])


def _shares(left: pl.DataFrame, right: pl.DataFrame, family: str,
            against: str | None = None) -> bool:
    """Whether row 0 of `left` (CAF) and row 0 of `right` (CPAM) meet one of the match side's
    conditions for the family (pipeline/shared/linkage_model.py, variant_conditions)."""
    for cond in variant_conditions(family, against):
        lc, rc = (side.strip().split(".", 1)[1] for side in cond.split("="))
        if left[lc][0] is not None and left[lc][0] == right[rc][0]:
            return True
    return False


@pytest.mark.parametrize(("caf_nom", "cpam_nom"), [
    ("LODGE", "LODGW"),          # substitution
    ("HARRINGTON", "HARRIGTON"),  # deletion
    ("SATTERLEY", "SATTE RLEY"),  # insertion
    ("MUSOLINO", "MUSOILNO"),     # adjacent transposition
    ("WEBB", "WEVB"),             # substitution next to a doubled letter
    ("BUTERFIELD", "BUTERFELD"),  # deletion past a pad-free prefix
])
def test_one_edit_apart_surnames_share_a_deletion_key(caf_nom: str, cpam_nom: str) -> None:
    caf = compute_tokens(caf_frame([caf_person(nom_naissance=caf_nom)]), "caf", KEY)
    cpam = compute_tokens(cpam_frame([person(nom=cpam_nom)]), "cpam", KEY)
    assert _shares(caf, cpam, "tok_nomdel_dob")


@pytest.mark.parametrize(("caf_nom", "cpam_nom", "dob_cpam"), [
    ("MARTIN", "MRATNI", dt.date(1985, 5, 17)),   # three edits
    ("LODGE", "LODGW", dt.date(1985, 5, 18)),     # one edit, another date
])
def test_far_names_or_another_date_share_no_deletion_key(caf_nom: str, cpam_nom: str,
                                                         dob_cpam: dt.date) -> None:
    caf = compute_tokens(caf_frame([caf_person(nom_naissance=caf_nom)]), "caf", KEY)
    cpam = compute_tokens(cpam_frame([person(nom=cpam_nom, date_naissance=dob_cpam,
                                             naiss_jour=dob_cpam.day)]), "cpam", KEY)
    assert not _shares(caf, cpam, "tok_nomdel_dob")


def test_swapped_and_mistyped_names_share_the_crossed_key() -> None:
    """CAF first name in the surname's place, one typo away from the CPAM surname."""
    caf = compute_tokens(caf_frame([caf_person(nom_naissance="CAMILLE", prenom1="DUPNOT",
                                               prenoms="DUPNOT")]), "caf", KEY)
    cpam = compute_tokens(cpam_frame([person()]), "cpam", KEY)
    assert _shares(caf, cpam, "tok_invdel_dob", "tok_nomdel_dob")
    assert not _shares(caf, cpam, "tok_nomdel_dob")


def test_deletion_columns_hide_length_and_doubled_letters() -> None:
    """Every position is non-null and the positions of a row are all distinct, whatever the
    name's length or its doubled letters: no null pattern or in-row equality shows either."""
    rows = [person(line=i + 2, nom=n) for i, n in enumerate(["WEBB", "A", "LEE", "ABBBBA"])]
    toks = compute_tokens(cpam_frame(rows), "cpam", KEY)
    cols, _ = load_catalogue().variant_family("tok_nomdel_dob")
    for i in range(len(rows)):
        values = [toks[c][i] for c in cols]
        assert None not in values
        assert len(set(values)) == len(values)


@pytest.mark.parametrize("bits", [64, 72, 100, 128])
def test_hex_tokens_equal_the_reference(bits: int) -> None:
    """A hex catalogue (contract 4 and earlier) keeps the hex prefix of the same MAC."""
    cat = dataclasses.replace(load_catalogue(), bits=bits, encoding="hex")
    df = ingested("caf", 120, seed=5)
    got = compute_tokens(df, "caf", KEY, catalogue=cat)
    ref = reference_tokens(df, "caf", KEY, catalogue=cat)
    assert all(got[c].to_list() == ref[c] for c in got.columns)
    assert got["tok_nom_dob"].str.len_chars().unique().to_list() == [bits // 4]


def test_int64_token_is_the_first_64_bits_of_the_hex_token() -> None:
    """Contract 5's Int64 token is the number the centre joined on under contract 4: the first
    16 hex characters of the 128-bit token, as an unsigned integer, minus 2^63."""
    df = ingested("caf", 200, seed=6)
    ints = compute_tokens(df, "caf", KEY)
    hexes = compute_tokens(df, "caf", KEY, catalogue=dataclasses.replace(
        load_catalogue(), bits=128, encoding="hex"))
    assert set(ints.schema.values()) == {pl.Int64}
    for col in ints.columns:
        assert ints[col].to_list() == [None if h is None else int(h[:16], 16) - 2**63
                                       for h in hexes[col].to_list()], col
    assert ints["tok_nom_dob"].null_count() < ints.height


def test_int64_encoding_needs_64_bits(tmp_path: Path) -> None:
    packaged = Path(token_catalogue.__file__).with_name("tokens.yaml").read_text("utf-8")
    wrong = tmp_path / "tokens.yaml"
    wrong.write_text(packaged.replace("truncate_bits: 64", "truncate_bits: 128"), "utf-8")
    with pytest.raises(ValueError, match="int64"):
        load_catalogue(wrong)


def test_empty_extract_gives_empty_token_columns() -> None:
    toks = compute_tokens(ingested("caf", 50, seed=5).head(0), "caf", KEY)
    assert toks.height == 0 and toks.columns == load_catalogue().names("caf")
