"""The ceiling arithmetic, computed at the agency (pipeline/shared/features.py: R.861-3 ranking
and increments), reproduces the official cells; the centre only sees the position."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from detect_builders import Builder

from pipeline.common.errors import RefusalError
from pipeline.shared import css_params
from pipeline.shared.features import caf_household_figures


def ceilings(tmp_path: Path, households: list[dict], reference: dt.date = dt.date(2025, 9, 30)):
    """Build the households, run the views, return [(gratuite, participation)] in order."""
    b = Builder(reference)
    foyers = []
    for hh in households:
        members = hh.pop("members")
        foyers.append(b.foyer(members, **hh)["foyer"])
    figures = caf_household_figures(b.caf_rows(), css_params.select_period(reference))
    rows = figures.select("foyer", "plafond_gratuite", "plafond_participation").rows()
    by_foyer = {f: (g, p) for f, g, p in rows}
    return [by_foyer[f] for f in foyers]


OFFICIAL_2025 = {
    1: (10339, 13957),
    2: (15508, 20936),
    3: (18609, 25123),
    4: (21711, 29311),
}


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_official_cells_one_to_four_persons(tmp_path: Path, n: int) -> None:
    members = [("DEM", 40), ("CJT", 38), ("ENF", 10), ("ENF", 7)][:n]
    assert ceilings(tmp_path, [{"members": members}]) == [OFFICIAL_2025[n]]


def test_six_persons_is_cell4_plus_two_extras(tmp_path: Path) -> None:
    members = [("DEM", 40), ("CJT", 38), ("ENF", 15), ("ENF", 12), ("ENF", 9), ("APC", 20)]
    assert ceilings(tmp_path, [{"members": members}]) == [(21711 + 2 * 4135, 29311 + 2 * 5583)]


def test_dependants_of_25_or_more_are_not_in_the_css_household(tmp_path: Path) -> None:
    """Art. R.861-2 CSS: dependants count only under 25 (a child of 24 counts, of 25 not)."""
    got = ceilings(
        tmp_path,
        [
            {"members": [("DEM", 50), ("ENF", 24)]},
            {"members": [("DEM", 50), ("ENF", 25)]},
            {"members": [("DEM", 60), ("ENF", 17), ("ENF", 14), ("ENF", 12), ("APC", 63)]},
            {"members": [("DEM", 50), ("APC", 30), ("ENF", 10)]},
        ],
    )
    assert got == [OFFICIAL_2025[2], OFFICIAL_2025[1], OFFICIAL_2025[4], OFFICIAL_2025[2]]


def test_mayotte_has_the_overseas_cells(tmp_path: Path) -> None:
    got = ceilings(tmp_path, [{"members": [("DEM", 40)], "commune": "97611"}],
                   reference=dt.date(2024, 9, 30))
    assert got == [(11315, 15275)]


def test_children_count_the_same_as_a_spouse_ranks(tmp_path: Path) -> None:
    # A lone parent with two children: ranks 1, 2, 3 -> the 3-person cell.
    got = ceilings(tmp_path, [{"members": [("DEM", 30), ("ENF", 8), ("ENF", 3)]}])
    assert got == [OFFICIAL_2025[3]]


def test_alternating_residence_minor_counts_half_of_its_rank(tmp_path: Path) -> None:
    got = ceilings(
        tmp_path,
        [
            # lone parent + one alternating child: rank 2 counts half
            {"members": [("DEM", 35), ("ENF", 8, True)]},
            # couple + child 15 (rank 3) + alternating child 10 (rank 4, half)
            {"members": [("DEM", 40), ("CJT", 39), ("ENF", 15), ("ENF", 10, True)]},
            # the alternating child is the oldest: it takes rank 2 (half), the other rank 3
            {"members": [("DEM", 35), ("ENF", 12, True), ("ENF", 5)]},
            # fifth person in alternating residence: half of the extra
            {"members": [("DEM", 40), ("CJT", 39), ("ENF", 15), ("ENF", 12), ("ENF", 4, True)]},
            # an adult child in alternating residence counts in full
            {"members": [("DEM", 45), ("ENF", 19, True)]},
        ],
    )
    assert got == [
        (10339 + (15508 - 10339) / 2, 13957 + (20936 - 13957) / 2),
        (18609 + (21711 - 18609) / 2, 25123 + (29311 - 25123) / 2),
        (
            10339 + (15508 - 10339) / 2 + (18609 - 15508),
            13957 + (20936 - 13957) / 2 + (25123 - 20936),
        ),
        (21711 + 4135 / 2, 29311 + 5583 / 2),
        OFFICIAL_2025[2],
    ]


def test_overseas_cells_are_uplifted_and_rounded(tmp_path: Path) -> None:
    got = ceilings(
        tmp_path,
        [
            {"members": [("DEM", 40)], "commune": "97411"},
            {"members": [("DEM", 40)], "commune": "61169"},
            {"members": [("DEM", 40)], "commune": "97209"},
        ],
        reference=dt.date(2024, 9, 30),
    )
    assert got == [(11315, 15275), (10166, 13724), (11315, 15275)]


def test_overseas_check_cells_of_the_parameter_file() -> None:
    data = css_params.load_parameters()
    for check in data["overseas"]["check"]:
        sel = css_params.select_period(check["from"], data)
        cells = css_params.zone_cells(sel, "outre_mer")
        assert cells["gratuite"]["1"] == check["gratuite"]
        assert cells["participation"]["1"] == check["participation"]


def test_period_boundaries_pick_the_table_in_force() -> None:
    assert css_params.select_period(dt.date(2025, 3, 31)).period.gratuite["1"] == 10166
    assert css_params.select_period(dt.date(2025, 4, 1)).period.gratuite["1"] == 10339


def test_unconfirmed_period_warns_or_refuses() -> None:
    sel = css_params.select_period(dt.date(2026, 5, 1))
    assert sel.warning is not None and "AUCUN BARÈME CSS CONFIRMÉ" in sel.warning
    assert sel.period.start == dt.date(2025, 4, 1)
    with pytest.raises(RefusalError):
        css_params.select_period(dt.date(2026, 5, 1), strict=True)
    with pytest.raises(RefusalError):  # nothing earlier to fall back on
        css_params.select_period(dt.date(2020, 1, 1))


def test_housing_forfait_is_twelve_months_by_size() -> None:
    sel = css_params.select_period(dt.date(2025, 9, 30))
    table = dict(css_params.forfait_table(sel).iter_rows())
    assert table[1] == pytest.approx(77.58 * 12)
    assert table[2] == pytest.approx(155.16 * 12)
    assert table[3] == table[6] == pytest.approx(192.02 * 12)
