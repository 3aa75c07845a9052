"""Property and example tests for the French normalisers (vectorised vs scalar vs stdnum)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum.fr import nir as stdnir

from pipeline.agency.ingest.normalise.dates import date_exprs, parse_date_scalar
from pipeline.agency.ingest.normalise.names import (
    clean_name,
    clean_name_scalar,
    given_names,
    split_birth_usage,
)
from pipeline.agency.ingest.normalise.nir import (
    ABSENT,
    CERTIFIE,
    INVALIDE,
    PROVISOIRE,
    REASON_KEY,
    check_nir,
    nir_exprs,
    nir_key,
)

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def _col(values: list, expr_builder) -> list:
    return pl.DataFrame({"v": values}, schema={"v": pl.String}).select(
        expr_builder(pl.col("v")).alias("o"))["o"].to_list()


# ------------------------------------------------------------------------------------- names

name_text = st.text(
    alphabet=st.sampled_from([*list("abcdeéèêëàâäîïôöùûüçœæÆŒÉÈ'’- .,XMRmrEPOUSNV"), "ß", "Ø"]),
    max_size=30,
)


@FAST
@given(st.lists(name_text, min_size=1, max_size=20))
def test_clean_name_idempotent_and_matches_scalar(values):
    once = _col(values, clean_name)
    assert once == [clean_name_scalar(v) for v in values]
    assert _col(once, clean_name) == once
    for out in once:
        assert out is None or (out.isascii() and out == out.upper() and "  " not in out
                               and out == out.strip())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Lefèvre", "LEFEVRE"),
        ("  d'Artagnan-de  la   Tour ", "D ARTAGNAN DE LA TOUR"),
        ("Mme Dupont", "DUPONT"),
        ("M. Dupont", "DUPONT"),
        ("M'Barek", "M BAREK"),  # not a title: the M stays
        ("Œuvray", "OEUVRAY"),
        ("Straße", "STRASSE"),
        ("XXX", None),
        ("inconnu", None),
        ("Non renseigné", None),
        ("SANS NOM", None),
        ("   ", None),
        ("Le Goff", "LE GOFF"),
        ("DE LA FONTAINE", "DE LA FONTAINE"),
    ],
)
def test_clean_name_examples(raw, expected):
    assert _col([raw], clean_name) == [expected]
    assert clean_name_scalar(raw) == expected


def test_birth_and_usage_names():
    raw = ["Dupont épouse Martin", "DUPONT EP. MARTIN", "Durand vve Leroy", "Martin née Dupont",
           "Dupont", None]
    df = pl.DataFrame({"v": raw}).with_columns(c=clean_name(pl.col("v")))
    birth, usage = split_birth_usage(pl.col("c"))
    out = df.select(b=birth, u=usage)
    assert out["b"].to_list() == ["DUPONT", "DUPONT", "DURAND", "DUPONT", "DUPONT", None]
    assert out["u"].to_list() == ["MARTIN", "MARTIN", "LEROY", "MARTIN", None, None]


def test_given_names():
    raw = ["Jean-Pierre, Marie", "Anne Marie", "Léa", "NON RENSEIGNE", "X", None, " , Paul"]
    df = pl.DataFrame({"v": raw})
    prenoms, prenom1 = given_names(pl.col("v"))
    out = df.select(p=prenoms, p1=prenom1)
    assert out["p"].to_list() == ["JEAN PIERRE MARIE", "ANNE MARIE", "LEA", None, None, None,
                                  "PAUL"]
    assert out["p1"].to_list() == ["JEAN PIERRE", "ANNE", "LEA", None, None, None, "PAUL"]


# --------------------------------------------------------------------------------------- NIR

DEPTS = [f"{d:02d}" for d in range(1, 100)] + ["2A", "2B"]
MONTHS = [f"{m:02d}" for m in [*range(1, 13), *range(20, 43), *range(50, 100)]]


@st.composite
def nir_bodies(draw) -> str:
    return (
        draw(st.sampled_from("123478"))
        + f"{draw(st.integers(0, 99)):02d}"
        + draw(st.sampled_from(MONTHS))
        + draw(st.sampled_from(DEPTS))
        + f"{draw(st.integers(1, 999)):03d}"
        + f"{draw(st.integers(1, 999)):03d}"
    )


@FAST
@given(st.lists(nir_bodies(), min_size=1, max_size=60))
def test_valid_nirs_agree_with_stdnum(bodies):
    full = [b + f"{nir_key(b):02d}" for b in bodies]
    for _b, f in zip(bodies, full, strict=True):
        assert stdnir.calc_check_digits(f) == f[13:]
        assert stdnir.is_valid(f)
    df = pl.DataFrame({"v": full + bodies})
    n = nir_exprs(pl.col("v"))
    out = df.select(nir=n.nir, statut=n.statut, reason=n.reason)
    assert out["nir"].to_list() == bodies + bodies
    assert out["reason"].null_count() == out.height
    expected = [PROVISOIRE if b[0] in "3478" else CERTIFIE for b in bodies] * 2
    assert out["statut"].to_list() == expected


@FAST
@given(nir_bodies(), st.integers(0, 99))
def test_any_wrong_key_is_rejected(body, key):
    if key == nir_key(body):
        key = (key + 1) % 100
    raw = f"{body}{key:02d}"
    assert not stdnir.is_valid(raw)
    n = nir_exprs(pl.col("v"))
    out = pl.DataFrame({"v": [raw]}).select(nir=n.nir, statut=n.statut, reason=n.reason).row(0)
    assert out == (None, INVALIDE, REASON_KEY)
    assert check_nir(raw) == (None, INVALIDE, REASON_KEY)


@FAST
@given(st.lists(st.one_of(st.none(), st.text(alphabet="0123456789AB -.X", max_size=17)),
                min_size=1, max_size=60))
def test_nir_expression_matches_scalar(values):
    n = nir_exprs(pl.col("v"))
    out = pl.DataFrame({"v": values}, schema={"v": pl.String}).select(
        nir=n.nir, statut=n.statut, reason=n.reason)
    assert list(out.iter_rows()) == [check_nir(v) for v in values]


@pytest.mark.parametrize(
    ("raw", "statut"),
    [
        ("1 85 05 61 169 012", CERTIFIE),  # 13 characters with spaces: no key to check
        ("385056116901", INVALIDE),  # 12 characters
        ("5850561169012", INVALIDE),  # sex digit 5
        ("1851361169012", INVALIDE),  # month 13
        ("1850500169012", INVALIDE),  # département 00
        ("1850561000012", INVALIDE),  # commune 000
        ("1850561169000", INVALIDE),  # order 000
        ("185052C169012", INVALIDE),  # 2C is not a département
        ("", ABSENT),
        (None, ABSENT),
    ],
)
def test_nir_structure(raw, statut):
    n = nir_exprs(pl.col("v"))
    got = pl.DataFrame({"v": [raw]}, schema={"v": pl.String}).select(s=n.statut)["s"][0]
    assert got == statut
    assert check_nir(raw)[1] == statut


def test_corsica_key_substitution():
    body = "2760" + "32A" + "004123"
    assert nir_key(body) == int(stdnir.calc_check_digits(body + "00"))
    assert check_nir(body + f"{nir_key(body):02d}")[0] == body


# ------------------------------------------------------------------------------------- dates


@FAST
@given(st.lists(st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)), min_size=1, max_size=60))
def test_dates_round_trip(dates):
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        raw = [d.strftime(fmt) for d in dates]
        d = date_exprs(pl.col("v"), fmt)
        out = pl.DataFrame({"v": raw}).select(d=d.date, y=d.year, m=d.month, j=d.day, r=d.reason)
        assert out["d"].to_list() == dates
        assert out["y"].to_list() == [x.year for x in dates]
        assert out["m"].to_list() == [x.month for x in dates]
        assert out["j"].to_list() == [x.day for x in dates]
        assert out["r"].null_count() == len(dates)


def _parts(d) -> list[pl.Expr]:
    return [d.date.alias("d"), d.year.alias("y"), d.month.alias("m"), d.day.alias("j"),
            d.reason.alias("r")]


@FAST
@given(st.lists(st.one_of(st.none(), st.text(alphabet="0123456789/-", max_size=11)),
                min_size=1, max_size=60))
def test_date_expression_matches_scalar(values):
    fmt = "%d/%m/%Y"
    d = date_exprs(pl.col("v"), fmt)
    out = pl.DataFrame({"v": values}, schema={"v": pl.String}).select(
        _parts(d))
    assert list(out.iter_rows()) == [parse_date_scalar(v, fmt) for v in values]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("00/05/1985", (None, 1985, 5, None, None)),  # unknown day: parts kept
        ("00/00/1985", (None, 1985, None, None, None)),
        ("31/02/2020", (None, 2020, 2, 31, "date impossible (jour ou mois hors calendrier)")),
        ("12/13/2020", (None, 2020, None, 12, "date impossible (jour ou mois hors calendrier)")),
        ("1985-05-12", (None, None, None, None, "date illisible (format attendu : JJ/MM/AAAA)")),
        ("12/05/1985 00:00:00", (dt.date(1985, 5, 12), 1985, 5, 12, None)),
    ],
)
def test_date_examples(raw, expected):
    d = date_exprs(pl.col("v"), "%d/%m/%Y")
    got = pl.DataFrame({"v": [raw]}).select(_parts(d)).row(0)
    assert got == expected


@FAST
@given(st.lists(st.text(alphabet="0123456789AB", min_size=15, max_size=15), min_size=1,
                max_size=60))
def test_stricter_than_stdnum(values):
    """Whatever stdnum rejects, we reject; whatever we accept, stdnum accepts."""
    n = nir_exprs(pl.col("v"))
    statuts = pl.DataFrame({"v": values}).select(s=n.statut)["s"].to_list()
    for raw, statut in zip(values, statuts, strict=True):
        if not stdnir.is_valid(raw):
            assert statut == INVALIDE
        if statut != INVALIDE:
            assert stdnir.is_valid(raw)
