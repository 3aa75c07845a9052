"""Agency-local lists: droit d'opposition (CAF and CPAM) and the CAF's recent contacts.

The truth says which households they exclude (`opposition`) or mark as recently contacted
(`contacte_6m`); contact dates are never drawn within 3 days of the 6-month boundary, so the
truth does not depend on how the boundary day is counted.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

OPPOSITION_RATE = 0.008  # of adults: ~0.5 % of all persons
CONTACT_RATE = 0.03


def six_months_before(ref: date) -> date:
    """Same day six calendar months earlier (clamped to the month's last day)."""
    y, m = (ref.year, ref.month - 6) if ref.month > 6 else (ref.year - 1, ref.month + 6)
    for d in range(ref.day, 0, -1):
        try:
            return date(y, m, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def opposition(rng: np.random.Generator, pp: pl.DataFrame) -> pl.DataFrame:
    """Per person: opp_caf / opp_cpam flags (~0.5 % of persons; most tell both agencies).

    `pp` needs pid, role, in_caf, in_cpam.
    """
    n = pp.height
    adult = (pp["role"] != "ENF").to_numpy()
    chosen = adult & (rng.random(n) < OPPOSITION_RATE)
    u = rng.random(n)
    caf = chosen & (u < 0.8) & pp["in_caf"].to_numpy()
    cpam = chosen & (u >= 0.2) & pp["in_cpam"].to_numpy()
    return pp.select("pid").with_columns(opp_caf=pl.Series(caf), opp_cpam=pl.Series(cpam))


def contacts(rng: np.random.Generator, matricules: pl.Series, ref: date) -> pl.DataFrame:
    """matricule;date_contact for ~3 % of CAF households, some older than six months."""
    g = len(matricules)
    chosen = rng.random(g) < CONTACT_RATE
    days = rng.integers(1, 400, g)
    boundary = (ref - six_months_before(ref)).days
    days = np.where(np.abs(days - boundary) <= 3, days + 7, days)
    dates = np.datetime64(ref, "D") - days.astype("timedelta64[D]")
    return pl.DataFrame({"matricule": matricules, "date_contact": dates}).filter(
        pl.Series(chosen)).with_columns(pl.col("date_contact").cast(pl.Date))


def recent(ref: date) -> date:
    """Contacts on or after this date count as 'within 6 months'."""
    return six_months_before(ref)


