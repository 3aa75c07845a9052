"""Naming the token classes with what the operator sees: minor flag, household rank, calendar.

Years. With a reference date R in the export, the year R-18 is the only one holding both minors
and adults (born before / after the reference day): that class is named at once. Inside a
household the children (role ENF) are ranked from the oldest to the youngest (`rang_foyer`), so
two siblings in two year classes vote for which class is older. From the anchor, the walk names
the next class one year on (then the previous one, one year back) when the votes leave a single
candidate: among the classes voted beyond the current one, the one that no other of them is
voted before; the minor flag must agree (younger side all minors, older side all adults). The
first ambiguity stops the walk. A year with no row at all would shift the names beyond it: the
score counts such wrong names, never hides them.

Months and days. Cross the month classes with the day classes: the day class seen with only 7
month classes is the 31st, the months seen with it are the 31-day months; the month seen with
the fewest day classes is February. The date with day and month swapped (tok_dob_swap) is null
when the day equals the month: in each day class of days 1-12, the one month class where it is
always null carries the same number. The anchor year's minor flag splits the months before and
after the reference month, and the reference year's class holds only months up to it. Each
class is named when these constraints, with one month per class, leave a single value.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

DEPENDANTS = ("ENF",)  # children: APC (other dependants, often a grandparent) are not siblings
MONTH_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30,
              12: 31}
MIN_CLASS_ROWS = 3  # smaller classes are fragments of a year (a row with no date token)
CELL_SEEN = 0.2  # share of its expected rows a (month, day) cell needs to count as seen


def reference_date(export: pl.DataFrame) -> dt.date | None:
    """The export's reference date (one per extract), if it carries one."""
    if "date_reference" not in export.columns:
        return None
    ref = export["date_reference"].drop_nulls()
    return ref.mode().sort()[0] if ref.len() else None


def _class_minors(frame: pl.DataFrame, cls: str) -> pl.DataFrame:
    """Per class: rows, minors, adults (rows without the flag count in neither)."""
    return frame.group_by(cls).agg(
        n=pl.len(), minors=(pl.col("mineur") == True).sum(),  # noqa: E712 (null-aware)
        adults=(pl.col("mineur") == False).sum())  # noqa: E712


def sibling_votes(frame: pl.DataFrame, cls: str) -> pl.DataFrame:
    """(older, younger, n): dependant pairs of one household, ranked older / younger, in two
    different classes."""
    dep = frame.filter(pl.col("role").is_in(DEPENDANTS) & pl.col("rang_foyer").is_not_null()
                       & pl.col("foyer").is_not_null()).select("foyer", "rang_foyer", cls)
    pairs = dep.join(dep, on="foyer", suffix="_y").filter(
        (pl.col("rang_foyer") < pl.col("rang_foyer_y")) & (pl.col(cls) != pl.col(f"{cls}_y")))
    return pairs.group_by(pl.col(cls).alias("older"), pl.col(f"{cls}_y").alias("younger")).len("n")


def _net(votes: pl.DataFrame) -> pl.DataFrame:
    """(a, b, net): net votes for `a older than b`, both directions listed."""
    both = pl.concat([votes.select("older", "younger", pl.col("n").cast(pl.Int64)),
                      votes.select(pl.col("younger").alias("older"), pl.col("older").alias(
                          "younger"), -pl.col("n").cast(pl.Int64))])
    return both.group_by("older", "younger").agg(net=pl.col("n").sum()).rename(
        {"older": "a", "younger": "b"})


def label_years(frame: pl.DataFrame, cls: str = "c_annee") -> pl.DataFrame:
    """(class, year) for the year classes the attacker can name; empty when it cannot anchor."""
    empty = pl.DataFrame(schema={cls: pl.Int64, "annee": pl.Int32})
    ref = reference_date(frame)
    if ref is None or "mineur" not in frame.columns or "rang_foyer" not in frame.columns:
        return empty
    stats = _class_minors(frame, cls).filter(pl.col("n") >= MIN_CLASS_ROWS)
    mixed = stats.filter((pl.col("minors") > 0) & (pl.col("adults") > 0))
    if mixed.height != 1:
        return empty
    anchor = int(mixed[cls][0])
    keep = stats[cls].implode()
    net = _net(sibling_votes(frame, cls)).filter(pl.col("a").is_in(keep) & pl.col("b").is_in(keep))
    if net.height == 0:
        return empty
    direct = {(a, b): v for a, b, v in net.iter_rows()}  # one row per pair of classes: small
    younger_side = set(stats.filter((pl.col("adults") == 0) & (pl.col("minors") > 0))[cls])
    older_side = set(stats.filter((pl.col("minors") == 0) & (pl.col("adults") > 0))[cls])
    names = {anchor: ref.year - 18}
    for step, side in ((1, younger_side), (-1, older_side)):
        cur, year = anchor, ref.year - 18
        while True:
            nxt = _next_class(cur, side - set(names), direct, step)
            if nxt is None:
                break
            year += step
            names[nxt] = year
            cur = nxt
    return pl.DataFrame({cls: list(names), "annee": list(names.values())},
                        schema={cls: pl.Int64, "annee": pl.Int32})


def _next_class(cur: int, left: set[int], direct: dict[tuple[int, int], int],
                step: int) -> int | None:
    """The class one year after (`step` 1) or before (-1) `cur`, when the votes say so
    unambiguously: among the classes the votes place on that side of `cur`, the single one that
    no other of them places between."""
    def beyond(a: int, b: int) -> bool:  # b lies on the `step` side of a
        return direct.get((a, b) if step == 1 else (b, a), 0) > 0

    candidates = [c for c in left if beyond(cur, c)]
    nearest = [c for c in candidates if not any(beyond(d, c) for d in candidates if d != c)]
    return nearest[0] if len(nearest) == 1 else None


def _one_each(candidates: dict[int, set[int]]) -> dict[int, int]:
    """Each class takes a different month: propagate the classes left with one month (that
    month leaves the others) and the months left to one class, until nothing moves."""
    cand = {k: set(v) for k, v in candidates.items()}
    if len(cand) != 12:
        return {}
    changed = True
    while changed:
        changed = False
        for k, v in cand.items():
            if len(v) == 1:
                for j in cand:
                    if j != k and v & cand[j]:
                        cand[j] -= v
                        changed = True
        for month in range(1, 13):
            holders = [k for k, v in cand.items() if month in v]
            if len(holders) == 1 and len(cand[holders[0]]) > 1:
                cand[holders[0]] = {month}
                changed = True
    return {k: next(iter(v)) for k, v in cand.items() if len(v) == 1}


def _cooccur(frame: pl.DataFrame) -> pl.DataFrame:
    """(month class, day class, rows, rows with a swapped-date token) for the cells really
    seen. Only rows with a whole-date token count: an impossible date (31 February), kept as
    parts by the ingest, has partial-date tokens but none for the whole date. A cell far below
    what its row and column totals predict does not count either."""
    dated = frame.filter(pl.col("c_mois").is_not_null() & pl.col("c_jour").is_not_null())
    if "tok_dob" in frame.columns:
        dated = dated.filter(pl.col("tok_dob").is_not_null())
    cells = dated.group_by("c_mois", "c_jour").agg(
        n=pl.len(), swap=pl.col("tok_dob_swap").is_not_null().sum())
    expected = (pl.col("n").sum().over("c_mois") * pl.col("n").sum().over("c_jour")
                / pl.col("n").sum())
    return cells.filter(pl.col("n") >= CELL_SEEN * expected)


def label_months_days(frame: pl.DataFrame, years: pl.DataFrame
                      ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """((c_mois, mois), (c_jour, jour)) for the classes the calendar constraints pin down."""
    empty_m = pl.DataFrame(schema={"c_mois": pl.Int64, "mois": pl.Int32})
    empty_d = pl.DataFrame(schema={"c_jour": pl.Int64, "jour": pl.Int32})
    if "tok_dob_swap" not in frame.columns:
        return empty_m, empty_d
    big_m = frame.group_by("c_mois").len().filter(pl.col("len") >= MIN_CLASS_ROWS)["c_mois"]
    big_d = frame.group_by("c_jour").len().filter(pl.col("len") >= MIN_CLASS_ROWS)["c_jour"]
    if big_m.len() != 12 or big_d.len() != 31:
        return empty_m, empty_d
    co = _cooccur(frame).filter(pl.col("c_mois").is_in(big_m.implode())
                                & pl.col("c_jour").is_in(big_d.implode()))
    months_of_day = co.group_by("c_jour").agg(k=pl.len())
    days_of_month = co.group_by("c_mois").agg(k=pl.len())
    day31 = months_of_day.filter(pl.col("k") == 7)["c_jour"]
    months31 = set(co.filter(pl.col("c_jour").is_in(day31.implode()))["c_mois"].to_list()) \
        if day31.len() == 1 else set()
    feb = days_of_month.sort("k")
    candidates: dict[int, set[int]] = {m: set(range(1, 13)) for m in big_m.to_list()}
    if months31 and feb["k"][0] < feb["k"][1]:
        for m in candidates:
            candidates[m] &= ({k for k, d in MONTH_DAYS.items() if d == 31} if m in months31
                              else {k for k, d in MONTH_DAYS.items() if d != 31})
        candidates[int(feb["c_mois"][0])] &= {2}
        for m in candidates:
            if m != int(feb["c_mois"][0]):
                candidates[m] -= {2}
    ref = reference_date(frame)
    if ref is not None and "mineur" in frame.columns and years.height:
        anchor = years.filter(pl.col("annee") == ref.year - 18)["c_annee"]
        split = frame.filter(pl.col("c_annee").is_in(anchor.implode())).group_by("c_mois").agg(
            mi=(pl.col("mineur") == True).sum(), ad=(pl.col("mineur") == False).sum())  # noqa: E712
        for m, mi, ad in split.iter_rows():
            if m in candidates and mi + ad:
                # all adults: born by the reference month; all minors: from it on; both: in it
                candidates[m] &= (set(range(1, ref.month + 1)) if mi == 0 else
                                  set(range(ref.month, 13)) if ad == 0 else {ref.month})
        # nobody in the file is born after the reference date: the reference year's class
        # holds only the months up to the reference month
        current = years.filter(pl.col("annee") == ref.year)["c_annee"]
        for m in frame.filter(pl.col("c_annee").is_in(current.implode()))["c_mois"].unique():
            if m in candidates:
                candidates[m] &= set(range(1, ref.month + 1))
    months = _one_each(candidates)
    # days: 31 and 30 from the months they are seen with; 1-12 through the swap diagonal
    days: dict[int, int] = {}
    if day31.len() == 1:
        days[int(day31[0])] = 31
    never_feb = months_of_day.filter(pl.col("k") == 11)
    if feb.height and never_feb.height == 1:
        days[int(never_feb["c_jour"][0])] = 30
    swapping = co.group_by("c_jour").agg(any_swap=pl.col("swap").sum(),
                                         n_null=(pl.col("swap") == 0).sum())
    diagonal = co.filter(pl.col("swap") == 0).join(
        swapping.filter((pl.col("any_swap") > 0) & (pl.col("n_null") == 1)), on="c_jour")
    for m, d in diagonal.select("c_mois", "c_jour").iter_rows():
        if m in months:
            days.setdefault(d, months[m])
    return (pl.DataFrame({"c_mois": list(months), "mois": list(months.values())},
                         schema=empty_m.schema),
            pl.DataFrame({"c_jour": list(days), "jour": list(days.values())},
                         schema=empty_d.schema))
