"""Truth rule flags on small hand-checked households (2025-04-01 table, R = 2026-03-02).

The truth is the generator's own reading of the texts (pipeline/synth/rules.py), independent of
pipeline/central/detect: these cases pin it to the texts (docs/LEGAL.md).
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from pipeline.synth import params, rules

R = date(2026, 3, 2)
TABLE = params.load_table(R)


def household(members: list[tuple[str, int, bool]], *, ressources: float, prestations=(),
              css: str = "NON", debut: date | None = None, fin: date | None = None,
              a_cpam: bool = True, commune: str = "61169", ref: date = R,
              table: params.CssTable = TABLE) -> dict:
    """members: (role, age in years, alternating residence); returns the truth row as a dict."""
    persons = pl.DataFrame(
        {
            "hid": [0] * len(members),
            "role": [m[0] for m in members],
            "by": [ref.year - m[1] for m in members],
            "bm": [1] * len(members),
            "bd": [1] * len(members),
            "age": [m[1] for m in members],
            "alt": [m[2] for m in members],
            "pos": list(range(len(members))),
        }
    )
    flags = {f"p_{p}": [p in prestations] for p in ("RSA", "RSAM", "PPA", "AAH", "AL")}
    row = pl.DataFrame({
        "hid": [0],
        "code_commune": [commune],
        "n": [len(members)],
        "nkids": [sum(m[0] == "ENF" for m in members)],
        "situation_familiale": ["COUPLE" if any(m[0] == "CJT" for m in members) else "ISOLE"],
        "ressources_12m": [ressources],
        "a_cpam": [a_cpam],
        "css": [css],
        "css_debut": pl.Series([debut], dtype=pl.Date),
        "css_fin": pl.Series([fin], dtype=pl.Date),
        **flags,
    })
    return rules.household_truth(row, persons, ref, table).row(0, named=True)


LONE_MOTHER_2 = [("DEM", 34, False), ("ENF", 9, False), ("ENF", 6, False)]


def test_lone_mother_two_children_under_free_ceiling():
    t = household(LONE_MOTHER_2, ressources=15000)
    assert t["plafond_gratuite"] == 18609 and t["plafond_participation"] == 25123
    assert t["monoparent_sous_plafond_sans_css"] == 1
    assert t["sous_plafond_sans_css"] == 1
    assert t["rsa_sans_css"] == 0 and t["aah_isole"] == 0 and t["a_verifier"] == 0


def test_free_ceiling_is_strict_and_contribution_ceiling_inclusive():
    # « inférieures à un plafond » (L.861-1 1°): at 18 609 exactly, not free CSS any more
    assert household(LONE_MOTHER_2, ressources=18608)["monoparent_sous_plafond_sans_css"] == 1
    at = household(LONE_MOTHER_2, ressources=18609)
    assert at["monoparent_sous_plafond_sans_css"] == 0 and at["sous_plafond_sans_css"] == 1
    # « comprises entre » the ceiling and 1.35 x it (L.861-1 2°): 25 123 still in, 25 124 out
    assert household(LONE_MOTHER_2, ressources=25123)["sous_plafond_sans_css"] == 1
    assert household(LONE_MOTHER_2, ressources=25124)["sous_plafond_sans_css"] == 0


def test_dependants_count_only_under_25():
    # R.861-2: a dependant of 24 is in the household, one of 25 is not
    t24 = household([("DEM", 50, False), ("ENF", 24, False)], ressources=14000)
    t25 = household([("DEM", 50, False), ("ENF", 25, False)], ressources=14000)
    assert (t24["n_css"], t24["plafond_gratuite"]) == (2, 15508)
    assert (t25["n_css"], t25["plafond_gratuite"]) == (1, 10339)
    assert t24["monoparent_sous_plafond_sans_css"] == 1 and t25["sous_plafond_sans_css"] == 0
    # the case: lone parent, three children and a dependent adult of 63 -> 4, not 5
    big = household([("DEM", 45, False), ("ENF", 17, False), ("ENF", 14, False),
                     ("ENF", 12, False), ("APC", 63, False)], ressources=30538 - 12 * 192.02,
                    prestations=("AL",))
    assert big["n_css"] == 4 and big["plafond_participation"] == 29311
    assert big["sous_plafond_sans_css"] == 0


def test_aah_presumption_needs_no_work_and_living_alone():
    assert household([("DEM", 50, False)], ressources=20000, prestations=("AAH",))["aah_isole"] == 1
    works = household([("DEM", 50, False)], ressources=9000, prestations=("AAH", "PPA"))
    assert works["aah_isole"] == 0 and works["sous_plafond_sans_css"] == 1
    with_parent = household([("DEM", 30, False), ("APC", 70, False)], ressources=9000,
                            prestations=("AAH",))
    assert with_parent["n_css"] == 1 and with_parent["aah_isole"] == 0


def test_mayotte_is_overseas():
    t = household([("DEM", 30, False)], ressources=0, commune="97611",
                  ref=date(2024, 6, 1), table=params.load_table(date(2024, 6, 1)))
    assert (t["plafond_gratuite"], t["plafond_participation"]) == (11315, 15275)


def test_housing_forfait_counts():
    # 18 000 + 12 x 192.02 (3 persons) = 20 304.24 > 18 609: no longer under the free ceiling
    assert household(LONE_MOTHER_2, ressources=18000)["monoparent_sous_plafond_sans_css"] == 1
    t = household(LONE_MOTHER_2, ressources=18000, prestations=("AL",))
    assert t["ressources_css"] == pytest.approx(18000 + 12 * 192.02)
    assert t["monoparent_sous_plafond_sans_css"] == 0 and t["sous_plafond_sans_css"] == 1


def test_alternating_residence_counts_half_its_rank():
    members = [("DEM", 40, False), ("ENF", 12, True), ("ENF", 8, False)]
    t = household(members, ressources=17000)
    # 10 339 + (15 508 - 10 339) / 2 + (18 609 - 15 508) = 10 339 + 2 584.5 + 3 101 = 16 024.5
    assert t["plafond_gratuite"] == pytest.approx(16024.5)
    assert t["monoparent_sous_plafond_sans_css"] == 0
    adult_child = [("DEM", 45, False), ("ENF", 19, True)]  # not a minor: full increment
    assert household(adult_child, ressources=0)["plafond_gratuite"] == 15508


def test_large_family_extra_per_person():
    members = [("DEM", 40, False), ("CJT", 41, False)] + [("ENF", a, False) for a in (15, 12, 9, 5)]
    t = household(members, ressources=0)
    assert t["plafond_gratuite"] == 21711 + 2 * 4135
    assert t["plafond_participation"] == 29311 + 2 * 5583
    assert t["monoparent_sous_plafond_sans_css"] == 0  # a couple


def test_active_css_blocks_and_renewal_window():
    start = R - timedelta(days=100)
    active = household(LONE_MOTHER_2, ressources=15000, prestations=("RSA",), css="GRATUITE",
                       debut=start, fin=start + timedelta(days=364))
    assert active["rsa_sans_css"] == 0 and active["css_non_renouvelee"] == 0
    ending = household(LONE_MOTHER_2, ressources=15000, css="GRATUITE",
                       debut=R - timedelta(days=330), fin=R + timedelta(days=34))
    assert ending["css_non_renouvelee"] == 1 and ending["sous_plafond_sans_css"] == 0
    ended = household(LONE_MOTHER_2, ressources=15000, prestations=("RSA",), css="GRATUITE",
                      debut=R - timedelta(days=400), fin=R - timedelta(days=36))
    assert ended["css_non_renouvelee"] == 1 and ended["rsa_sans_css"] == 1
    long_ago = household(LONE_MOTHER_2, ressources=15000, css="GRATUITE",
                         debut=R - timedelta(days=800), fin=R - timedelta(days=436))
    assert long_ago["css_non_renouvelee"] == 0
    rich = household(LONE_MOTHER_2, ressources=40000, css="PARTICIPATION",
                     debut=R - timedelta(days=330), fin=R + timedelta(days=34))
    assert rich["css_non_renouvelee"] == 0


def test_aah_alone_and_not_found():
    t = household([("DEM", 50, False)], ressources=12000, prestations=("AAH",))
    assert t["aah_isole"] == 1 and t["sous_plafond_sans_css"] == 1  # 12 000 <= 13 957
    before = household([("DEM", 50, False)], ressources=12000, prestations=("AAH",),
                       ref=date(2025, 6, 1))
    assert before["aah_isole"] == 0  # presumption only from 2025-07-01
    gone = household(LONE_MOTHER_2, ressources=15000, a_cpam=False)
    assert gone["a_verifier"] == 1
    assert all(gone[r] == 0 for r in rules.RULE_IDS)


def test_overseas_uplift():
    t = household([("DEM", 30, False)], ressources=0, commune="97411",
                  ref=date(2024, 6, 1), table=params.load_table(date(2024, 6, 1)))
    assert (t["plafond_gratuite"], t["plafond_participation"]) == (11315, 15275)


def test_no_confirmed_table_is_refused():
    from pipeline.common.errors import PipelineError
    with pytest.raises(PipelineError, match="barème"):
        params.load_table(date(2026, 6, 1))


def test_generated_flags_follow_the_rule_columns(clean):
    """Across a generated dataset: found-at-CPAM rules and a_verifier never overlap."""
    from synth_read import truth

    out, meta = clean
    hh = truth(out, "households.csv").with_columns(pl.exclude("matricule", "quartier")
                                                   .cast(pl.Int64))
    assert hh.filter((pl.col("a_cpam") == 0) & (pl.sum_horizontal(rules.RULE_IDS) > 0)).height == 0
    assert hh.filter((pl.col("a_cpam") == 1) & (pl.col("a_verifier") == 1)).height == 0
    assert hh.filter((pl.col("monoparent_sous_plafond_sans_css") == 1)
                     & (pl.col("sous_plafond_sans_css") == 0)).height == 0
    assert all(v > 0 for v in meta["counts"]["rules"].values())
