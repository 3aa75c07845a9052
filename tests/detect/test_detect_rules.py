"""Each rule flags exactly the hand-built households that meet it (boundaries included)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from detect_builders import Builder

from pipeline.agency.reidentify.api import TARGET_COLUMNS
from pipeline.central.detect import detect
from pipeline.common.errors import InputError, RefusalError

R = dt.date(2025, 9, 30)
D = dt.timedelta
ACTIVE = {"css": "GRATUITE", "css_debut": dt.date(2025, 1, 1), "css_fin": dt.date(2025, 12, 31)}
LONE = [("DEM", 32), ("ENF", 6)]  # 2 persons: free 15 508, contribution 20 936
AL2 = 155.16 * 12

MONO = "monoparent_sous_plafond_sans_css"
RSA = "rsa_sans_css"
RENEW = "css_non_renouvelee"
SOUS = "sous_plafond_sans_css"
AAH = "aah_isole"
REV = "css_gratuite_sans_minima"
AV = "a_verifier"
CSSV = "statut_css_a_verifier"

# (label, members, options, expected CAF-side rule set)
CASES: list[tuple[str, list, dict, set[str]]] = [
    # « inférieures au plafond » (art. L.861-1 1° CSS): the ceiling itself is not below it
    ("mono_one_euro_below", LONE, {"ressources": 15507}, {MONO, SOUS}),
    ("mono_at_free_ceiling", LONE, {"ressources": 15508}, {SOUS}),
    ("mono_one_cent_above", LONE, {"ressources": 15508.01}, {SOUS}),
    (
        "mono_al_forfait_pushes_above",
        LONE,
        {"ressources": 15508 - AL2 + 1, "prestations": ("AL",)},
        {SOUS},
    ),
    (
        "mono_al_forfait_stays_under",
        LONE,
        {"ressources": 15508 - AL2 - 1, "prestations": ("AL",)},
        {MONO, SOUS},
    ),
    (
        "couple_with_child_not_mono",
        [("DEM", 32), ("CJT", 33), ("ENF", 4)],
        {"ressources": 9000, "situation": "COUPLE"},
        {SOUS},
    ),
    ("isole_with_apc_only_not_mono", [("DEM", 50), ("APC", 80)], {"ressources": 9000}, {SOUS}),
    # art. R.861-2 CSS: the child of 25 is not in the CSS household -> no lone-parent rule, and
    # the one-person ceilings apply (13 957 € with contribution: 14 000 € is above)
    ("child_of_25_not_dependant", [("DEM", 50), ("ENF", 25)], {"ressources": 14000}, set()),
    ("child_of_24_dependant", [("DEM", 50), ("ENF", 24)], {"ressources": 14000}, {MONO, SOUS}),
    ("mono_with_active_css", LONE, {"ressources": 9000, **ACTIVE}, set()),
    (
        "contribution_ceiling_exact",
        [("DEM", 40), ("CJT", 40)],
        {"ressources": 20936, "situation": "COUPLE"},
        {SOUS},
    ),
    (
        "contribution_ceiling_plus_one",
        [("DEM", 40), ("CJT", 40)],
        {"ressources": 20937, "situation": "COUPLE"},
        set(),
    ),
    ("resources_unknown", [("DEM", 40)], {"ressources": None}, set()),
    ("rsa_no_css", [("DEM", 40)], {"ressources": 30000, "prestations": ("RSA",)}, {RSA}),
    ("rsam_no_css", LONE, {"ressources": 30000, "prestations": ("RSAM", "ASF")}, {RSA}),
    ("rsa_with_css", [("DEM", 40)], {"ressources": 3000, "prestations": ("RSA",), **ACTIVE}, set()),
    ("ppa_only_high", [("DEM", 40)], {"ressources": 30000, "prestations": ("PPA",)}, set()),
    (
        "ended_yesterday",
        [("DEM", 40)],
        {
            "ressources": 12000,
            "css": "PARTICIPATION",
            "css_debut": dt.date(2024, 9, 30),
            "css_fin": R - D(1),
        },
        {RENEW, SOUS},
    ),
    (
        "ended_365_days_ago",
        [("DEM", 40)],
        {
            "ressources": 12000,
            "css": "GRATUITE",
            "css_debut": dt.date(2023, 1, 1),
            "css_fin": R - D(365),
        },
        {RENEW, SOUS},
    ),
    (
        "ended_366_days_ago",
        [("DEM", 40)],
        {
            "ressources": 12000,
            "css": "GRATUITE",
            "css_debut": dt.date(2023, 1, 1),
            "css_fin": R - D(366),
        },
        {SOUS},
    ),
    (
        "ends_today_active",
        [("DEM", 40)],
        {"ressources": 12000, "css": "GRATUITE", "css_debut": dt.date(2024, 10, 1), "css_fin": R},
        {RENEW},
    ),
    (
        "ends_in_60_days",
        [("DEM", 40)],
        {
            "ressources": 12000,
            "css": "GRATUITE",
            "css_debut": dt.date(2024, 12, 1),
            "css_fin": R + D(60),
        },
        {RENEW},
    ),
    (
        "ends_in_61_days",
        [("DEM", 40)],
        {
            "ressources": 12000,
            "css": "GRATUITE",
            "css_debut": dt.date(2024, 12, 1),
            "css_fin": R + D(61),
        },
        set(),
    ),
    (
        "ended_but_above_ceiling",
        [("DEM", 40)],
        {
            "ressources": 14000,
            "css": "GRATUITE",
            "css_debut": dt.date(2024, 9, 1),
            "css_fin": R - D(10),
        },
        set(),
    ),
    ("aah_alone", [("DEM", 45)], {"ressources": 12000, "prestations": ("AAH",)}, {AAH, SOUS}),
    (
        "aah_full_rate_above_ceiling",
        [("DEM", 45)],
        {"ressources": 15000, "prestations": ("AAH",), "aah_taux_plein": True},
        {AAH},
    ),
    (
        "aah_partial_rate",
        [("DEM", 45)],
        {"ressources": 15000, "prestations": ("AAH",), "aah_taux_plein": False},
        set(),
    ),
    ("aah_with_ppa_works", [("DEM", 45)], {"ressources": 15000, "prestations": ("AAH", "PPA")},
     set()),
    (
        "aah_with_adult_in_dossier_not_alone",
        [("DEM", 45), ("APC", 70)],
        {"ressources": 15000, "prestations": ("AAH",)},
        set(),
    ),
    # an unreadable CSS code (INCONNU) never reads as "no CSS"
    (
        "css_unreadable_with_running_dates",
        [("DEM", 40)],
        {"ressources": 9000, "prestations": ("RSA",), "css": "INCONNU",
         "css_debut": dt.date(2025, 1, 1), "css_fin": dt.date(2025, 12, 31)},
        {CSSV},
    ),
    (
        "css_unreadable_ended_long_ago_above",
        [("DEM", 40)],
        {"ressources": 30000, "css": "INCONNU", "css_debut": dt.date(2020, 1, 1),
         "css_fin": dt.date(2020, 12, 31)},
        set(),
    ),
    # real housing aid lower than the forfait, and the forfait for an owner without aid
    (
        "real_housing_aid_below_forfait",
        LONE,
        {"ressources": 15508 - 600 - 1, "prestations": ("AL",), "aide_logement_mensuelle": 50.0},
        {MONO, SOUS},
    ),
    (
        "owner_without_aid_gets_forfait",
        LONE,
        {"ressources": 15508 - AL2 + 1, "statut_occupation": "PROPRIETAIRE"},
        {SOUS},
    ),
    ("tenant_without_aid_no_forfait", LONE, {"ressources": 15507, "statut_occupation": "LOCATAIRE"},
     {MONO, SOUS}),
    (
        "aah_with_dependant",
        [("DEM", 45), ("ENF", 10)],
        {"ressources": 30000, "prestations": ("AAH",)},
        set(),
    ),
    (
        "aah_alone_with_css",
        [("DEM", 45)],
        {"ressources": 9000, "prestations": ("AAH",), **ACTIVE},
        set(),
    ),
    ("not_found_under_ceiling", LONE, {"ressources": 9000, "linked": "none"}, {AV}),
    ("only_child_linked_is_not_found", LONE, {"ressources": 9000, "linked": "children"}, {AV}),
    (
        "not_found_rsa_above",
        [("DEM", 40)],
        {"ressources": 30000, "prestations": ("RSA",), "linked": "none"},
        {AV},
    ),
    ("not_found_above", [("DEM", 40)], {"ressources": 30000, "linked": "none"}, set()),
    ("opposed_member", LONE, {"ressources": 9000, "opposed_member": 1}, set()),
    (
        "opposed_member_not_found",
        LONE,
        {"ressources": 9000, "opposed_member": 1, "linked": "none"},
        set(),
    ),
    ("linked_to_opposed_cpam_row", LONE, {"ressources": 9000, "opposed_cpam": True}, set()),
    (
        "overseas_under_uplifted_cell",
        [("DEM", 40), ("ENF", 3)],
        {"ressources": 16000, "commune": "97411"},
        {MONO, SOUS},
    ),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("rules")
    b = Builder(R)
    foyers = {label: b.foyer(members, **opts) for label, members, opts, _ in CASES}
    # CPAM side (reverse rule)
    rev = {
        "assure_free_not_at_caf": b.cpam_only(**ACTIVE),
        "assure_contribution_not_at_caf": b.cpam_only(
            css="PARTICIPATION", css_debut=dt.date(2025, 1, 1), css_fin=dt.date(2025, 12, 31)
        ),
        "assure_free_ended": b.cpam_only(css_debut=dt.date(2024, 1, 1), css_fin=R - D(1)),
        "assure_free_opposed": b.cpam_only(opposed=True, **ACTIVE),
    }
    ppa = b.foyer([("DEM", 30)], ressources=9000, prestations=("PPA",), **ACTIVE)
    nominima = b.foyer([("DEM", 30)], ressources=9000, prestations=("AL",), **ACTIVE)
    paths = b.write(tmp)
    out = tmp / "out"
    res = detect(*paths, out)
    targets = pl.read_parquet(out / "targets.parquet")
    return {
        "foyers": foyers,
        "rev": rev,
        "ppa": ppa,
        "nominima": nominima,
        "res": res,
        "targets": targets,
        "out": out,
        "paths": paths,
    }


def _row(run: dict, label: str) -> dict:
    t = run["targets"]
    return t.filter(pl.col("foyer") == run["foyers"][label]["foyer"]).row(0, named=True)


def _rules_of(targets: pl.DataFrame, agence: str, foyer: str) -> set[str]:
    row = targets.filter((pl.col("agence") == agence) & (pl.col("foyer") == foyer))
    assert row.height <= 1, "one row per household and agency"
    return set(row["regles"][0]) if row.height else set()


@pytest.mark.parametrize("label", [c[0] for c in CASES])
def test_caf_rule_flags(run: dict, label: str) -> None:
    expected = next(c[3] for c in CASES if c[0] == label)
    assert _rules_of(run["targets"], "caf", run["foyers"][label]["foyer"]) == expected


def test_reverse_rule_cpam_side(run: dict) -> None:
    t = run["targets"].filter(pl.col("agence") == "cpam")
    flagged = set(t["handle"].to_list())
    assert run["rev"]["assure_free_not_at_caf"] in flagged
    assert run["rev"]["assure_contribution_not_at_caf"] not in flagged
    assert run["rev"]["assure_free_ended"] not in flagged
    assert run["rev"]["assure_free_opposed"] not in flagged
    assert _rules_of(run["targets"], "cpam", run["ppa"]["cpam_foyer"]) == set()
    assert _rules_of(run["targets"], "cpam", run["nominima"]["cpam_foyer"]) == {REV}
    # linked households carry their CAF quartier, unlinked ones are marked as such
    by_handle = dict(zip(t["handle"].to_list(), t["quartier"].to_list(), strict=True))
    assert by_handle[run["rev"]["assure_free_not_at_caf"]] == "NON_LOCALISE"
    assert set(t["regles"].explode().to_list()) == {REV}


def test_targets_contract_and_lists(run: dict) -> None:
    t = run["targets"]
    # The columns re-identification relies on, in the contract's order.
    assert t.columns[: len(TARGET_COLUMNS)] == list(TARGET_COLUMNS)
    assert t["date_reference"].unique().to_list() == [R]
    lists = dict(zip(t["foyer"].to_list(), t["liste"].to_list(), strict=True))
    assert lists[run["foyers"]["not_found_under_ceiling"]["foyer"]] == "a_verifier"
    assert lists[run["foyers"]["mono_one_euro_below"]["foyer"]] == "cible"
    assert lists[run["foyers"]["css_unreadable_with_running_dates"]["foyer"]] == "a_verifier"
    # the contact handle of a CAF household is its DEM (first member)
    row = _row(run, "mono_one_euro_below")
    assert row["handle"] == run["foyers"]["mono_one_euro_below"]["handles"][0]
    assert row["priorite"] == 1 and row["regles"][0] == MONO
    assert len(row["motifs"]) == len(row["actions"]) == len(row["regles"])


def test_reasons_are_rule_level_without_figures(run: dict) -> None:
    """The centre has no amount and no CSS date: reasons say the position and the status; the
    figures are filled in by the re-identifying agency (tests/reidentify)."""
    row = _row(run, "mono_one_euro_below")
    motif = row["motifs"][0]
    assert "inférieures au plafond CSS gratuite" in motif
    assert "€" not in motif and not any(
        ch.isdigit() for ch in motif.replace("25 ans", "").replace("12 mois", "")), motif
    unreadable = _row(run, "css_unreadable_with_running_dates")["motifs"][0]
    assert unreadable.startswith("statut CSS à vérifier") and "statut illisible" in unreadable
    assert "2025" not in unreadable
    aah = _row(run, "aah_alone")["motifs"][0]
    assert "CSS avec participation" in aah and "taux de l'AAH non transmis" in aah
    assert "AAH à taux plein selon la CAF" in _row(run, "aah_full_rate_above_ceiling")["motifs"][0]
    assert "avec participation" in _row(run, "aah_alone")["actions"][0]
    ended = _row(run, "ended_yesterday")
    assert "terminée au cours des 365 derniers jours" in ended["motifs"][0]
    assert "arrivant à échéance dans les 60 jours" in _row(run, "ends_in_60_days")["motifs"][0]


def test_no_identifier_columns_in_targets(run: dict) -> None:
    forbidden = {"nir", "nom", "prenom", "date_naissance", "adresse", "telephone", "age"}
    assert forbidden.isdisjoint(run["targets"].columns)


def test_stats_and_aggregates(run: dict) -> None:
    stats = json.loads((run["out"] / "detect_stats.json").read_text(encoding="utf-8"))
    counts = {r["id"]: r["foyers"] for r in stats["regles_appliquees"]}
    caf_rules = (MONO, RSA, RENEW, SOUS, AAH, CSSV, AV)
    expected = {rule: sum(rule in c[3] for c in CASES) for rule in caf_rules}
    # 2 built for it + the linked CAF households with an active free CSS and no RSA/PPA:
    # mono_with_active_css, aah_alone_with_css, ends_today_active, ends_in_60/61_days
    expected[REV] = 7
    assert counts == expected
    assert stats["avertissements"] == []
    assert stats["foyers"]["foyers_exclus_opposition"] == 3
    agg = (run["out"] / "aggregates.csv").read_text(encoding="utf-8-sig").splitlines()
    assert agg[0].startswith("tableau;regle;")
    assert any(line.startswith("non_recours;sous_plafond_sans_css;") for line in agg)


def test_rerun_is_byte_identical(run: dict, tmp_path: Path) -> None:
    detect(*run["paths"], tmp_path)
    for name in ("targets.parquet", "aggregates.csv", "detect_stats.json"):
        assert (tmp_path / name).read_bytes() == (run["out"] / name).read_bytes(), name


def test_rule_selection_and_window(run: dict, tmp_path: Path) -> None:
    res = detect(*run["paths"], tmp_path, rules=[RENEW], renewal_window_days=60)
    assert set(res.counts) == {RENEW}
    t = pl.read_parquet(tmp_path / "targets.parquet")
    assert run["foyers"]["ends_in_61_days"]["foyer"] not in t["foyer"].to_list()
    # the CPAM computed the status with its window: the centre cannot move it
    with pytest.raises(RefusalError, match="à la source"):
        detect(*run["paths"], tmp_path, rules=[RENEW], renewal_window_days=61)
    with pytest.raises(RefusalError):
        detect(*run["paths"], tmp_path, rules=["pas_une_regle"])


def test_aah_rule_not_in_force_before_july_2025(tmp_path: Path) -> None:
    b = Builder(dt.date(2025, 6, 30))
    f = b.foyer([("DEM", 45)], ressources=30000, prestations=("AAH",))
    res = detect(*b.write(tmp_path), tmp_path / "out")
    assert AAH not in res.counts
    stats = json.loads((tmp_path / "out" / "detect_stats.json").read_text(encoding="utf-8"))
    assert [r["id"] for r in stats["regles_non_applicables"]] == [AAH]
    t = pl.read_parquet(tmp_path / "out" / "targets.parquet")
    assert f["foyer"] not in t["foyer"].to_list()


def test_unconfirmed_table_warns_everywhere_or_refuses(tmp_path: Path) -> None:
    b = Builder(dt.date(2026, 5, 4))
    b.foyer(LONE, ressources=9000)
    paths = b.write(tmp_path)
    with pytest.raises(RefusalError):
        detect(*paths, tmp_path / "strict", strict=True)
    assert not (tmp_path / "strict").exists()
    res = detect(*paths, tmp_path / "out")
    assert res.warnings and "AUCUN BARÈME CSS CONFIRMÉ" in res.warnings[0]
    t = pl.read_parquet(tmp_path / "out" / "targets.parquet")
    assert t.height == 1 and "AUCUN BARÈME" in t["avertissement"][0]
    stats = json.loads((tmp_path / "out" / "detect_stats.json").read_text(encoding="utf-8"))
    assert stats["parametres_css"]["confirme"] is False


def test_bad_links_name_file_line_and_column(tmp_path: Path) -> None:
    b = Builder(R)
    b.foyer(LONE, ressources=9000)
    caf, cpam, links = b.write(tmp_path)
    bad = pl.read_parquet(links).with_columns(pl.lit("0" * 32).alias("cpam_handle"))
    bad.write_parquet(links)
    with pytest.raises(InputError) as err:
        detect(caf, cpam, links, tmp_path / "out")
    assert err.value.column == "cpam_handle" and err.value.line == 1
    assert not (tmp_path / "out" / "targets.parquet").exists()
    pl.read_parquet(caf).drop("position_plafond_css").write_parquet(caf)
    with pytest.raises(InputError) as err:
        detect(caf, cpam, links, tmp_path / "out")
    assert err.value.column == "position_plafond_css"
