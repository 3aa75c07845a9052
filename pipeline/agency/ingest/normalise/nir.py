"""NIR (numéro de sécurité sociale) validation, stricter than a key check alone.

A NIR is 13 characters (without key) or 15 (with key). Structure: sex digit (1/2; 3/4/7/8 are
provisional numbers, kept but never ``certifie``), year (2 digits), month (01-12, or 20-42 / 50-99
for unknown months), département (01-99 or 2A/2B), commune (3 digits, not 000), order (3 digits,
not 000). The key is 97 - (n mod 97) with 2A -> 19 and 2B -> 18. Output: the 13-character body
(null unless valid) and a status ``certifie`` / ``provisoire`` / ``absent`` / ``invalide``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

CERTIFIE = "certifie"
PROVISOIRE = "provisoire"
ABSENT = "absent"
INVALIDE = "invalide"

REASON_LENGTH = "NIR de longueur incorrecte (13 ou 15 caractères attendus)"
REASON_FORMAT = "NIR mal formé (sexe, année, mois, département, commune ou ordre)"
REASON_KEY = "clé de contrôle du NIR incorrecte"

# Characters a data entry may put inside a NIR: spaces, dots, hyphens.
_SEPARATORS = r"[ \t\u00a0\u202f.\-]"
_BODY = re.compile(
    r"^[123478][0-9]{2}(?:0[1-9]|1[0-2]|[23][0-9]|4[0-2]|[5-9][0-9])(?:0[1-9]|[1-9][0-9]|2A|2B)"
    r"[0-9]{6}$"
)
_PROVISIONAL_SEX_DIGITS = ("3", "4", "7", "8")


@dataclass(frozen=True)
class NirExprs:
    """Expressions derived from one raw NIR column."""

    nir: pl.Expr  # 13 characters, null unless valid
    statut: pl.Expr  # certifie / provisoire / absent / invalide
    reason: pl.Expr  # French reason when invalid, else null
    sex: pl.Expr  # Int8 1 (man) / 2 (woman) from the sex digit, null unless valid
    # Intermediate columns to add first when built with `staged` (polars does not always share
    # sub-expressions between several outputs; materialising them once halves the cost).
    prepare: dict[str, pl.Expr]


_SEPARATOR_CHARS = [" ", "\t", "\u00a0", "\u202f", ".", "-"]


def _clean(raw: pl.Expr) -> pl.Expr:
    c = raw.str.replace_many(_SEPARATOR_CHARS, [""] * len(_SEPARATOR_CHARS)).str.to_uppercase()
    return pl.when(c.str.len_chars() > 0).then(c)


def _reason(c: pl.Expr) -> pl.Expr:
    n = c.str.len_chars()
    body = c.str.slice(0, 13)
    good_len = n.is_in([13, 15])
    good_body = (
        body.str.contains(_BODY.pattern)
        & (body.str.slice(7, 3) != "000")
        & (body.str.slice(10, 3) != "000")
    )
    dept = body.str.slice(5, 2)
    numeric = pl.concat_str(
        [body.str.slice(0, 5), dept.replace({"2A": "19", "2B": "18"}), body.str.slice(7, 6)]
    ).cast(pl.Int64, strict=False)
    expected_key = pl.lit(97, dtype=pl.Int64) - numeric % 97
    key = c.str.slice(13, 2).cast(pl.Int64, strict=False)
    good_key = (n == 13) | (key == expected_key)
    return (
        pl.when(c.is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(~good_len)
        .then(pl.lit(REASON_LENGTH))
        .when(~good_body)
        .then(pl.lit(REASON_FORMAT))
        .when(~good_key.fill_null(False))
        .then(pl.lit(REASON_KEY))
    )


def nir_exprs(raw: pl.Expr, staged: str | None = None) -> NirExprs:
    """Build the NIR expressions for a raw string column (vectorised, no Python per row).

    With `staged="__x"`, the cleaned value and the reason are intermediate columns `__x_c` and
    `__x_r` (in `prepare`, to add before the outputs); without it, every output is self-contained.
    """
    prepare: dict[str, pl.Expr] = {}
    c, reason = _clean(raw), None
    if staged is None:
        reason = _reason(c)
    else:
        prepare = {f"{staged}_c": c}
        c = pl.col(f"{staged}_c")
        prepare[f"{staged}_r"] = _reason(c)
        reason = pl.col(f"{staged}_r")
    valid = c.is_not_null() & reason.is_null()
    sex_digit = c.str.slice(0, 1)
    statut = (
        pl.when(c.is_null())
        .then(pl.lit(ABSENT))
        .when(~valid)
        .then(pl.lit(INVALIDE))
        .when(sex_digit.is_in(_PROVISIONAL_SEX_DIGITS))
        .then(pl.lit(PROVISOIRE))
        .otherwise(pl.lit(CERTIFIE))
    )
    sex = pl.when(valid).then(
        pl.when(sex_digit.is_in(["1", "3", "7"])).then(pl.lit(1, dtype=pl.Int8))
        .otherwise(pl.lit(2, dtype=pl.Int8))
    )
    return NirExprs(nir=pl.when(valid).then(c.str.slice(0, 13)), statut=statut, reason=reason,
                    sex=sex, prepare=prepare)


def nir_key(body13: str) -> int:
    """The 2-digit control key of a 13-character NIR body (2A -> 19, 2B -> 18)."""
    numeric = body13[:5] + {"2A": "19", "2B": "18"}.get(body13[5:7], body13[5:7]) + body13[7:]
    return 97 - int(numeric) % 97


def check_nir(raw: str | None) -> tuple[str | None, str, str | None]:
    """Scalar reference: (13-char body or None, statut, reason or None)."""
    if raw is None:
        return None, ABSENT, None
    c = re.sub(_SEPARATORS, "", raw).upper()
    if not c:
        return None, ABSENT, None
    if len(c) not in (13, 15):
        return None, INVALIDE, REASON_LENGTH
    body = c[:13]
    if not _BODY.match(body) or body[7:10] == "000" or body[10:13] == "000":
        return None, INVALIDE, REASON_FORMAT
    if len(c) == 15 and (not re.fullmatch("[0-9]{2}", c[13:]) or int(c[13:]) != nir_key(body)):
        return None, INVALIDE, REASON_KEY
    return body, PROVISOIRE if body[0] in _PROVISIONAL_SEX_DIGITS else CERTIFIE, None
