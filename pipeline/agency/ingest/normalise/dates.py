"""Date parsing for French extracts: ISO (CAF) and JJ/MM/AAAA (CPAM), with partial dates.

Birth registers use `00` for an unknown day or month: the full date is then null but the known
parts (year, month, day) are kept, because matching can still compare them. Impossible dates
(31/02, month 13) become null and are counted, never silently guessed.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import polars as pl

REASON_UNREADABLE = "date illisible (format attendu : {fmt})"
REASON_IMPOSSIBLE = "date impossible (jour ou mois hors calendrier)"
WARNING_PARTIAL = "date partielle (jour ou mois inconnu, 00)"

_TOKENS = {"%Y": r"(?P<y>[0-9]{4})", "%m": r"(?P<m>[0-9]{1,2})", "%d": r"(?P<d>[0-9]{1,2})"}
MIN_YEAR = 1850
MAX_YEAR = 2200


def format_regex(fmt: str) -> str:
    """Turn a strftime-like format (%Y, %m, %d and literals) into an anchored regex.

    A trailing time part ("1985-03-12 00:00:00", as spreadsheets export dates) is tolerated.
    """
    parts = re.split(r"(%[Ymd])", fmt)
    if sorted(p for p in parts if p in _TOKENS) != ["%Y", "%d", "%m"]:
        raise ValueError(f"format de date non pris en charge : {fmt}")
    body = "".join(_TOKENS.get(p, re.escape(p)) for p in parts)
    return rf"^{body}(?:[ T][0-9:.]*)?$"


def human_format(fmt: str) -> str:
    """'%d/%m/%Y' -> 'JJ/MM/AAAA' for messages a data officer reads."""
    return fmt.replace("%Y", "AAAA").replace("%m", "MM").replace("%d", "JJ")


@dataclass(frozen=True)
class DateExprs:
    date: pl.Expr  # pl.Date, null unless complete and valid
    year: pl.Expr  # Int16, null when unknown
    month: pl.Expr  # Int16, null when 00 or out of range
    day: pl.Expr  # Int16, null when 00 or out of range
    reason: pl.Expr  # French reason (value ignored) or null
    partial: pl.Expr  # bool: a 00 day/month made the date partial (a warning, not an error)


def date_exprs(raw: pl.Expr, fmt: str) -> DateExprs:
    """Parse a raw string column with `fmt` (vectorised)."""
    g = raw.str.extract_groups(format_regex(fmt))
    y = g.struct.field("y").cast(pl.Int16, strict=False)
    m = g.struct.field("m").cast(pl.Int16, strict=False)
    d = g.struct.field("d").cast(pl.Int16, strict=False)
    matched = y.is_not_null()
    year = pl.when(y.is_between(MIN_YEAR, MAX_YEAR)).then(y)
    month = pl.when(m.is_between(1, 12)).then(m)
    day = pl.when(d.is_between(1, 31)).then(d)
    unknown_part = (m == 0) | (d == 0)
    iso = pl.concat_str(
        [
            y.cast(pl.String).str.zfill(4),
            m.cast(pl.String).str.zfill(2),
            d.cast(pl.String).str.zfill(2),
        ],
        separator="-",
    )
    complete = year.is_not_null() & ~unknown_part
    date = pl.when(complete).then(iso.str.to_date("%Y-%m-%d", strict=False))
    reason = (
        pl.when(raw.is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(~matched)
        .then(pl.lit(REASON_UNREADABLE.format(fmt=human_format(fmt))))
        .when(year.is_null() | (~unknown_part & date.is_null()) | (m > 12) | (d > 31))
        .then(pl.lit(REASON_IMPOSSIBLE))
    )
    partial = matched & unknown_part & reason.is_null()
    return DateExprs(date=date, year=year, month=month, day=day, reason=reason, partial=partial)


def parse_date_scalar(raw: str | None, fmt: str) -> tuple[dt.date | None, int | None, int | None,
                                                          int | None, str | None]:
    """Scalar twin of `date_exprs`: (date, year, month, day, reason)."""
    if raw is None:
        return None, None, None, None, None
    mt = re.match(format_regex(fmt), raw)
    if not mt:
        return None, None, None, None, REASON_UNREADABLE.format(fmt=human_format(fmt))
    y, m, d = int(mt["y"]), int(mt["m"]), int(mt["d"])
    year = y if MIN_YEAR <= y <= MAX_YEAR else None
    month = m if 1 <= m <= 12 else None
    day = d if 1 <= d <= 31 else None
    unknown = m == 0 or d == 0
    date = None
    if year is not None and not unknown:
        try:
            date = dt.date(y, m, d)
        except ValueError:
            date = None
    bad = year is None or (not unknown and date is None) or m > 12 or d > 31
    return date, year, month, day, REASON_IMPOSSIBLE if bad else None
