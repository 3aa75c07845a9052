"""The pseudonymise step: allow-list, handles table, opposition, determinism, manifest."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import polars as pl
import pytest
from helpers_pseudonymise import KEY, OTHER_KEY, caf_frame, caf_person

from pipeline.agency.pseudonymise.core import Materials, build, pseudonymise
from pipeline.agency.pseudonymise.synthetic import ingested
from pipeline.agency.pseudonymise.tokens import load_catalogue
from pipeline.common.tables import write_parquet
from pipeline.shared import separation
from pipeline.shared.attributes import HORS_TERRITOIRE, add_attributes

REPO = Path(__file__).resolve().parents[2]


def _materials(secret: bytes = KEY, allowed: list[str] | None = None) -> Materials:
    return Materials(secret, "stand-in", "test", allowed, None, True)


def _workdir(tmp_path: Path, agency: str, n: int = 300, seed: int = 1) -> Path:
    work = tmp_path / agency
    write_parquet(ingested(agency, n, seed=seed), work / "ingested.parquet", sort_by=["line"],
                  private=True)
    return work


def _run(tmp_path: Path, agency: str = "caf", *, materials: Materials | None = None,
         seed: int | None = 5, **kw: object):
    work = tmp_path / agency
    if not (work / "ingested.parquet").exists():
        _workdir(tmp_path, agency)
    return pseudonymise(agency, work, work / "keys", REPO / "conventions/demo-flers.yaml",
                        work / "export", seed=seed, materials=materials or _materials(),
                        sign=False, **kw)


def test_export_has_only_allowed_columns(tmp_path: Path) -> None:
    allowed = ["handle", "foyer", "opposition", "type_foyer", "tok_nir", "tok_nom_dob",
               "nom_naissance"]
    res = _run(tmp_path, materials=_materials(allowed=allowed))
    export = pl.read_parquet(res.export_file)
    assert export.columns == [
        "handle", "foyer", "opposition", "type_foyer", "tok_nir", "tok_nom_dob"]


def test_default_export_matches_contract(tmp_path: Path) -> None:
    res = _run(tmp_path, "cpam")
    export = pl.read_parquet(res.export_file)
    expected_tokens = set(load_catalogue().names("cpam"))
    assert {c for c in export.columns if c.startswith("tok_")} == expected_tokens
    forbidden = {"nir", "nom", "prenom1", "prenoms", "date_naissance", "adresse", "line",
                 "nir_ouvrant_droit", "telephone", "code_postal"}
    assert not forbidden & set(export.columns)
    assert "age" not in export.columns
    # contract 3: sex and NIR status only inside person-unique NIR keys; no role, no commune
    assert not {"sexe", "nir_statut", "role", "code_commune"} & set(export.columns)
    assert {"tok_nir_sexe", "tok_nir_certifie"} <= set(export.columns)
    assert export["handle"].n_unique() == export.height


def test_handles_table_private_and_never_exported(tmp_path: Path) -> None:
    res = _run(tmp_path)
    mode = stat.S_IMODE(os.stat(res.handles_file).st_mode)
    assert mode == 0o600
    assert res.handles_file.parent != res.export_file.parent
    assert not list(res.export_file.parent.glob("handles*"))
    handles = pl.read_parquet(res.handles_file)
    assert handles.columns[:3] == ["handle", "foyer", "line"]
    assert {"telephone", "adresse", "nom", "prenom", "matricule"} <= set(handles.columns)
    export = pl.read_parquet(res.export_file)
    assert set(handles["handle"]) == set(export["handle"])
    # the export's handle column is not derivable from the line order
    assert not export["handle"].equals(handles.sort("line")["handle"])


def test_same_seed_byte_identical_other_seed_different(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", seed=11).export_file.read_bytes()
    b = _run(tmp_path / "b", seed=11).export_file.read_bytes()
    c = pl.read_parquet(_run(tmp_path / "c", seed=12).export_file)
    assert a == b
    ea = pl.read_parquet(tmp_path / "a/caf/export/caf.pseudo.parquet")
    assert not set(ea["handle"]) & set(c["handle"])
    # tokens do not depend on the seed, only on the key
    assert ea.sort("tok_nom_dob")["tok_nom_dob"].equals(c.sort("tok_nom_dob")["tok_nom_dob"])


def test_unseeded_handles_are_fresh(tmp_path: Path) -> None:
    a = pl.read_parquet(_run(tmp_path / "a", seed=None).export_file)
    b = pl.read_parquet(_run(tmp_path / "b", seed=None).export_file)
    assert not set(a["handle"]) & set(b["handle"])
    assert a["handle"].str.contains(r"^[0-9a-f]{32}$").all()


def test_foyer_handles_group_dossiers() -> None:
    df = caf_frame([caf_person(line=2, matricule="1"), caf_person(line=3, matricule="2",
                    nir="1800561169002"), caf_person(line=4, matricule="1", role="ENF",
                    nir=None)])
    _, handles, counts = build(df, "caf", KEY, seed=1)
    h = handles.sort("line")
    assert h["foyer"][0] == h["foyer"][2] != h["foyer"][1]
    assert counts["foyers"] == 2


def test_opposition_rows_carry_tokens_only(tmp_path: Path) -> None:
    df = caf_frame([
        caf_person(line=2, matricule="1111111", nir="2850561169001"),
        caf_person(line=3, matricule="2222222", nir="1800561169002"),
        caf_person(line=4, matricule="2222222", role="ENF", nir=None),
        caf_person(line=5, matricule="3333333", nir="1900561169004"),
        # the spouse of the person opposed by NIR: not opposed, but in an opposed household
        caf_person(line=6, matricule="1111111", role="CJT", nir="1820561169005"),
    ])
    opp = tmp_path / "opposition.csv"
    opp.write_text("matricule;nir\n;2 85 05 61 169 001 42\n2222222;\n4444444;\n", "utf-8")
    from pipeline.agency.pseudonymise.opposition import read_opposition

    export, handles, counts = build(df, "caf", KEY, seed=1,
                                    opposition=read_opposition(opp, "caf"))
    assert counts["opposition"]["personnes_opposees"] == 3
    assert counts["opposition"]["lignes_sans_correspondance"] == 1
    by_line = handles.select("handle", "line").join(export, on="handle").sort("line")
    opposed = by_line.filter(pl.col("opposition"))
    # the whole household of an opposed person leaves as handles + linkage tokens only
    assert opposed["line"].to_list() == [2, 3, 4, 6]
    attrs = [c for c in export.columns if not c.startswith("tok_")
             and c not in ("handle", "foyer", "opposition", *separation.FACTORS)]
    assert {"type_foyer", "position_plafond_css", "a_rsa"} <= set(attrs)
    assert opposed.select(attrs).null_count().row(0) == (4,) * len(attrs)
    # contract 6: the household factors stay (uniform residues, no attribute), one per household
    assert opposed.select(separation.FACTORS).null_count().row(0) == (0,) * 4
    per_household = opposed.group_by("foyer").agg(pl.col(separation.FACTORS).n_unique())
    assert per_household.select(separation.FACTORS).max().row(0) == (1,) * 4
    comparison = [c for c in export.columns if c.startswith("tok_")
                  and c not in ("tok_nir", "tok_nom_dob", "tok_nomusage_dob")]
    assert comparison and opposed.select(comparison).null_count().row(0) == \
        (4,) * len(comparison)
    # NIR token on every row that has one; name + birth date token on adults only
    assert opposed["tok_nir"].is_null().to_list() == [False, False, True, False]
    assert opposed["tok_nom_dob"].is_null().to_list() == [False, False, True, False]
    kept = by_line.filter(~pl.col("opposition"))
    assert kept["line"].to_list() == [5] and kept["type_foyer"][0] == "personne_seule"


def test_opposition_file_errors_name_line_and_column(tmp_path: Path) -> None:
    from pipeline.agency.pseudonymise.opposition import read_opposition
    from pipeline.common.errors import InputError

    bad = tmp_path / "opp.csv"
    bad.write_text("nir\n185057800608412\n12345\n", "utf-8")
    with pytest.raises(InputError) as err:
        read_opposition(bad, "cpam")
    assert "ligne 3" in str(err.value) and "nir" in str(err.value)
    assert "12345" not in str(err.value)
    missing = tmp_path / "opp2.csv"
    missing.write_text("nir\n", "utf-8")
    with pytest.raises(InputError, match="matricule"):
        read_opposition(missing, "caf")


def test_household_quartier() -> None:
    rows = [
        caf_person(line=2, matricule="1", date_naissance=dt.date(2000, 3, 31),
                   code_iris="611690101"),
        caf_person(line=3, matricule="2", date_naissance=dt.date(2000, 4, 1),
                   code_iris="999990000"),
        caf_person(line=4, matricule="3", date_naissance=dt.date(2008, 2, 29), code_iris=None),
        caf_person(line=5, matricule="3", role="ENF", date_naissance=None,
                   code_iris="611690101"),
    ]
    territory = pl.DataFrame({"code_iris": ["611690101"], "quartier": ["QN06101M"]})
    export, handles, counts = build(caf_frame(rows), "caf", KEY, seed=1, territory=territory)
    by_line = handles.sort("line")
    assert "mineur" not in export.columns
    # contract 3: the quartier never leaves; the owner-only handles table keeps it, household
    # level (the allocataire's quartier on every row of the dossier), for re-identification
    assert "quartier" not in export.columns
    assert by_line["quartier"].to_list() == ["QN06101M", HORS_TERRITOIRE, HORS_TERRITOIRE,
                                             HORS_TERRITOIRE]
    assert counts["hors_territoire"] == 3  # rows (household-level quartier)


def test_missing_ingested_is_a_clear_error(tmp_path: Path) -> None:
    from pipeline.common.errors import InputError

    with pytest.raises(InputError, match=r"ingested\.parquet"):
        pseudonymise("caf", tmp_path, tmp_path, tmp_path / "c.yaml", tmp_path / "x",
                     materials=_materials(), sign=False)
    assert not (tmp_path / "x").exists()


def test_unknown_agency_refused(tmp_path: Path) -> None:
    from pipeline.common.errors import PipelineError

    with pytest.raises(PipelineError, match="mdph"):
        pseudonymise("mdph", tmp_path, tmp_path, tmp_path, tmp_path, materials=_materials())


def test_signed_manifest_and_wrong_key_detectable(tmp_path: Path) -> None:
    """End to end with the DEMO keys: the manifest fingerprint identifies the key used."""
    demo = pytest.importorskip("pipeline.trust.demo")
    from pipeline.trust.convention import load_convention
    from pipeline.trust.keys import fingerprint

    conv_path = REPO / "conventions/demo-flers.yaml"
    conv = load_convention(conv_path)
    work = _workdir(tmp_path, "cpam", n=200)
    demo.install_demo_keys("cpam", work / "keys")
    res = pseudonymise("cpam", work, work / "keys", conv_path, work / "export", seed=3)
    manifest = json.loads(res.manifest_file.read_text("utf-8"))
    assert manifest["key_fingerprint"] == conv.linkage_key_fingerprint
    assert manifest["rows"] == res.rows and manifest["convention_id"] == conv.id
    export = pl.read_parquet(res.export_file)
    assert set(export.columns) <= set(conv.allowed_fields("cpam"))

    # same run with another key: the manifest says so, and no token matches
    wrong = Materials(OTHER_KEY, fingerprint(OTHER_KEY), conv.id, conv.allowed_fields("cpam"),
                      None, True)
    res2 = pseudonymise("cpam", work, work / "keys", conv_path, tmp_path / "export2", seed=3,
                        materials=wrong)
    manifest2 = json.loads(res2.manifest_file.read_text("utf-8"))
    assert manifest2["key_fingerprint"] != conv.linkage_key_fingerprint
    export2 = pl.read_parquet(res2.export_file)
    assert not set(export["tok_nom_dob"].drop_nulls()) & set(export2["tok_nom_dob"].drop_nulls())
    from pipeline.trust.manifest import verify_manifest

    # the manifest itself is valid (signed, hash matches): only its fingerprint gives the key away
    assert verify_manifest(res2.manifest_file, conv).key_fingerprint == fingerprint(OTHER_KEY)


def test_cpam_foyer_is_the_ouvrant_droit_group() -> None:
    from helpers_pseudonymise import cpam_frame, person

    parent = "1800561169002"
    df = cpam_frame([
        person(line=2, nir=parent, nir_ouvrant_droit=parent),
        person(line=3, qualite="ENFANT", nir=None, nir_ouvrant_droit=parent),
        person(line=4, nir="2900561169005", nir_ouvrant_droit="2900561169005"),
        person(line=5, qualite="ENFANT", nir=None, nir_ouvrant_droit=None),
    ])
    _, handles, counts = build(df, "cpam", KEY, seed=1)
    f = handles.sort("line")["foyer"].to_list()
    assert f[0] == f[1] and len({f[0], f[2], f[3]}) == 3
    assert counts["foyers"] == 3


def test_handles_depend_on_position_not_identity() -> None:
    """Same seed and key, different people at the same lines: same handles. Same people, other
    seed: other handles. So a handle carries nothing about who it stands for."""
    a = ingested("caf", 50, seed=1)
    b = ingested("caf", 50, seed=2)
    ha = build(a, "caf", KEY, seed=9)[1].sort("line")["handle"]
    hb = build(b, "caf", KEY, seed=9)[1].sort("line")["handle"]
    hc = build(a, "caf", KEY, seed=10)[1].sort("line")["handle"]
    assert ha.equals(hb)
    assert not set(ha) & set(hc)


def test_invalid_nir_leaves_as_absent(tmp_path: Path) -> None:
    from pipeline.shared.attributes import add_attributes

    frame = ingested("caf", 50, seed=3).with_columns(
        nir_statut=pl.when(pl.col("line") % 2 == 0).then(pl.lit("invalide"))
        .otherwise(pl.col("nir_statut")))
    assert (frame["nir_statut"] == "invalide").any()
    out = add_attributes(frame, "caf", None)
    assert set(out["nir_statut"].unique()) <= {"certifie", "provisoire", "absent"}
    assert out.height == frame.height


def test_rank_and_minor_flag_stay_at_the_agency(tmp_path: Path) -> None:
    """Exact ages would let a central attacker align birth-year-salted names per year; the
    export carries what detection needs instead: the R.861-3 rank and a minor flag."""
    rows = [
        caf_person(line=2, role="ENF", date_naissance=dt.date(2015, 5, 1)),
        caf_person(line=3, role="DEM", date_naissance=dt.date(1985, 1, 1)),
        caf_person(line=4, role="ENF", date_naissance=dt.date(2012, 5, 1),
                   residence_alternee=True),
        caf_person(line=5, role="ENF", date_naissance=dt.date(2012, 5, 1)),
        caf_person(line=6, role="CJT", date_naissance=dt.date(1990, 1, 1)),
        caf_person(line=7, matricule="7654321", role="DEM", date_naissance=dt.date(1970, 1, 1)),
    ]
    export, _, _ = build(caf_frame(rows), "caf", KEY, seed=1)
    # the rank and the minor flag feed the ceiling at the agency; neither leaves (features)
    assert not {"age", "rang_foyer", "mineur"} & set(export.columns)
    at_agency = add_attributes(caf_frame(rows), "caf", None).sort("line")
    # DEM, CJT, then children oldest first; same birth day: the full-time child ranks first.
    assert at_agency["rang_foyer"].to_list() == [5, 1, 4, 3, 2, 1]
    assert at_agency["mineur"].to_list() == [True, False, True, True, False, False]
    cpam = pl.read_parquet(_run(tmp_path, "cpam").export_file)
    assert "age" not in cpam.columns and "rang_foyer" not in cpam.columns
