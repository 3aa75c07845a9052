"""Household consistency rules (layout `dossier:` block): one test per rule, through the outputs.

Each case writes a clean dossier (0000001, three people) next to the faulty one (0000002) and
checks that the faulty dossier never reaches ingested.parquet (held back whole and counted in
quarantaine.csv / ingest_stats.json, or only its redundant row rejected) while the clean one is
untouched. Only invented people.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import polars as pl
import pytest
from ingest_fixtures import NIR_ANNE, NIR_PAUL, write_caf, write_cpam

from pipeline.agency.ingest import ingest


def caf(m: str, role: str, nom: str, prenoms: str, dob: str, *, sexe: str = "2",
        situation: str = "COUPLE", ressources: str = "10000", prestations: str = "AF",
        commune: str = "61169", iris: str = "611690101", extraction: str = "2025-06-30") -> str:
    return ";".join([m, role, "", nom, "", prenoms, dob, sexe, "", "", "61100", commune, iris,
                     situation, "", ressources, prestations, extraction])


CLEAN = [  # lines 2-4
    caf("0000001", "DEM", "Martin", "Anne", "1985-05-12"),
    caf("0000001", "CJT", "Martin", "Paul", "1982-02-03", sexe="1"),
    caf("0000001", "ENF", "Martin", "Léa", "2015-07-01"),
]


def _read(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")), delimiter=";"))


def _run(tmp_path: Path, agency: str, rows: list[str]):
    src = (write_caf if agency == "caf" else write_cpam)(tmp_path / f"{agency}.csv", rows)
    result = ingest(agency, src, tmp_path / "out")
    stats = json.loads(result.stats.read_text(encoding="utf-8"))
    kept = set(pl.read_parquet(result.ingested)["line"].to_list())
    held = {(int(r["line"]), r["regle"]) for r in _read(result.quarantine)}
    rejected = {(int(r["line"]), r["reason"]) for r in _read(result.rejections)
                if r["action"] == "ligne rejetée"}
    assert stats["lignes_acceptees"] + stats["lignes_rejetees"] + \
        stats["lignes_en_quarantaine"] == stats["lignes_lues"]
    return kept, held, rejected, stats


CAF_QUARANTINE = {
    "sans_demandeur": [caf("0000002", "CJT", "Durand", "Marc", "1980-01-01", situation="COUPLE"),
                       caf("0000002", "ENF", "Durand", "Zoé", "2012-01-01")],
    "plusieurs_demandeurs": [caf("0000002", "DEM", "Durand", "Marc", "1980-01-01"),
                             caf("0000002", "DEM", "Petit", "Lucie", "1981-01-01")],
    "isole_avec_conjoint": [caf("0000002", "DEM", "Durand", "Marc", "1980-01-01",
                                situation="ISOLE"),
                            caf("0000002", "CJT", "Petit", "Lucie", "1981-01-01",
                                situation="ISOLE")],
    "enfant_plus_age_que_parent": [caf("0000002", "DEM", "Durand", "Marc", "1985-01-01"),
                                   caf("0000002", "ENF", "Durand", "Zoé", "1980-01-01")],
    "ressources_negatives": [caf("0000002", "DEM", "Durand", "Marc", "1980-01-01",
                                 ressources="-1200", situation="ISOLE")],
    "iris_hors_commune": [caf("0000002", "DEM", "Durand", "Marc", "1980-01-01",
                              iris="611700101", situation="ISOLE")],
}


@pytest.mark.parametrize("rule", sorted(CAF_QUARANTINE))
def test_caf_dossier_quarantined_whole(tmp_path, rule):
    bad = CAF_QUARANTINE[rule]
    kept, held, rejected, stats = _run(tmp_path, "caf", CLEAN + bad)
    bad_lines = set(range(5, 5 + len(bad)))
    assert kept == {2, 3, 4}  # the clean dossier is untouched, nothing of the faulty one
    assert {(line, rule) for line in bad_lines} <= held
    assert {line for line, _ in held} == bad_lines and not rejected
    assert stats["quarantaine"]["par_regle"][rule] == {"dossiers": 1, "lignes": len(bad)}
    assert stats["quarantaine"]["dossiers"] == 1


@pytest.mark.parametrize("field, values", [
    ("situation", ("COUPLE", "ISOLE")), ("ressources", ("1000", "2000")),
    ("prestations", ("AF", "AF,AL")), ("commune", ("61169", "61170")),
    ("iris", ("611690101", "611690102")),
])
def test_dossier_level_fields_must_agree(tmp_path, field, values):
    rows = [caf("0000002", "DEM", "Durand", "Marc", "1980-01-01", **{field: values[0]}),
            caf("0000002", "CJT", "Petit", "Lucie", "1981-01-01", **{field: values[1]})]
    kept, held, _, stats = _run(tmp_path, "caf", CLEAN + rows)
    assert kept == {2, 3, 4}
    assert {(5, "champ_dossier_divergent"), (6, "champ_dossier_divergent")} <= held
    assert stats["quarantaine"]["par_regle"]["champ_dossier_divergent"]["dossiers"] == 1


def test_same_prestations_in_another_order_agree(tmp_path):
    rows = [caf("0000002", "DEM", "Durand", "Marc", "1980-01-01", prestations="AL,AF"),
            caf("0000002", "CJT", "Petit", "Lucie", "1981-01-01", prestations="af, al")]
    kept, held, _, _ = _run(tmp_path, "caf", CLEAN + rows)
    assert kept == {2, 3, 4, 5, 6} and not held


def test_child_age_boundary_and_stepchild(tmp_path):
    rows = [
        caf("0000002", "DEM", "Durand", "Marc", "1985-03-01"),
        caf("0000002", "ENF", "Durand", "Zoé", "1997-02-28"),  # before the 12th birthday
        caf("0000003", "DEM", "Petit", "Lucie", "1985-03-01"),
        caf("0000003", "ENF", "Petit", "Hugo", "1997-03-01"),  # on the 12th birthday: plausible
        # A spouse younger than the applicant's child (stepfamily): judged on the oldest parent.
        caf("0000004", "DEM", "Roux", "Jean", "1965-01-01", sexe="1"),
        caf("0000004", "CJT", "Roux", "Inès", "1995-01-01"),
        caf("0000004", "ENF", "Roux", "Tom", "2000-06-01", sexe="1"),
    ]
    kept, held, _, stats = _run(tmp_path, "caf", CLEAN + rows)
    assert {line for line, _ in held} == {5, 6}
    assert kept == {2, 3, 4, 7, 8, 9, 10, 11}
    assert stats["quarantaine"]["par_regle"]["enfant_plus_age_que_parent"]["dossiers"] == 1


def test_duplicated_person_keeps_one_row(tmp_path):
    """A child listed twice would raise the household size and the ceiling."""
    rows = [caf("0000002", "DEM", "Durand", "Marc", "1980-01-01", situation="ISOLE"),
            caf("0000002", "ENF", "Durand", "Zoé", "2012-01-01", situation="ISOLE"),
            caf("0000002", "ENF", "DURAND", " zoe ", "2012-01-01", situation="ISOLE")]
    kept, held, rejected, stats = _run(tmp_path, "caf", CLEAN + rows)
    assert kept == {2, 3, 4, 5, 6} and not held
    assert [line for line, _ in rejected] == [7] and "double" in next(iter(rejected))[1]
    assert stats["quarantaine"]["par_regle"]["doublon_personne"] == {"dossiers": 0, "lignes": 1}
    # Same names in two different dossiers are two people.
    rows = [caf("0000002", "DEM", "Martin", "Anne", "1985-05-12")]
    kept, _, rejected, _ = _run(tmp_path, "caf", CLEAN + rows)
    assert kept == {2, 3, 4, 5} and not rejected


def test_duplicated_applicant_is_not_two_applicants(tmp_path):
    rows = [caf("0000002", "DEM", "Durand", "Marc", "1980-01-01", situation="ISOLE")] * 2
    kept, held, rejected, _ = _run(tmp_path, "caf", CLEAN + rows)
    assert kept == {2, 3, 4, 5} and not held and [line for line, _ in rejected] == [6]


def test_reference_person_rejected_holds_back_the_dossier(tmp_path):
    """Without the applicant's row the rest must not be treated as a household of its own."""
    rows = [caf("0000002", "DEM", "Durand", "Lucie", "1980-01-01", ressources="douze",
                situation="ISOLE"),
            caf("0000002", "ENF", "Durand", "Zoé", "2023-01-01", situation="ISOLE")]
    kept, held, rejected, stats = _run(tmp_path, "caf", CLEAN + rows)
    assert kept == {2, 3, 4}
    assert {line for line, _ in rejected} == {5}
    assert held == {(6, "demandeur_rejete")}
    assert stats["quarantaine"]["par_regle"]["demandeur_rejete"] == {"dossiers": 1, "lignes": 1}


def test_short_row_of_a_member_holds_back_the_dossier(tmp_path):
    """A ragged line still names its dossier (first field): the dossier is not split."""
    rows = [caf("0000002", "DEM", "Durand", "Lucie", "1980-01-01", situation="ISOLE"),
            "0000002;ENF;;Durand;;Zoé"]
    kept, held, rejected, _ = _run(tmp_path, "caf", CLEAN + rows)
    assert kept == {2, 3, 4}
    assert {line for line, _ in rejected} == {6} and held == {(5, "membre_rejete")}


def cpam(nir: str, od: str, rang: str, qualite: str, nom: str, prenom: str, dob: str, *,
         sexe: str = "2", css: str = "NON", debut: str = "", fin: str = "") -> str:
    return ";".join([nir, od, rang, qualite, nom, prenom, dob, sexe, "", "61100", "61169", css,
                     debut, fin, "O", "30/06/2025"])


CPAM_CLEAN = [  # lines 2-3
    cpam(NIR_ANNE, NIR_ANNE, "1", "ASSURE", "Martin", "Anne", "12/05/1985"),
    cpam("", NIR_ANNE, "1", "ENFANT", "Martin", "Léa", "01/07/2015"),
]
TWINS = [cpam(NIR_PAUL, NIR_PAUL, "1", "ASSURE", "Durand", "Paul", "03/02/1982", sexe="1"),
         cpam("", NIR_PAUL, "1", "ENFANT", "Durand", "Zoé", "01/01/2020"),
         cpam("", NIR_PAUL, "1", "ENFANT", "Durand", "Léna", "01/01/2020")]
CPAM_QUARANTINE = {
    "jumeaux_meme_rang": TWINS,
    "css_fin_avant_debut": [cpam(NIR_PAUL, NIR_PAUL, "1", "ASSURE", "Durand", "Paul",
                                 "03/02/1982", sexe="1", css="GRATUITE", debut="01/01/2025",
                                 fin="31/12/2024")],
    "css_sans_dates": [cpam(NIR_PAUL, NIR_PAUL, "1", "ASSURE", "Durand", "Paul", "03/02/1982",
                            sexe="1", css="PARTICIPATION", debut="01/01/2025")],
    "css_non_avec_dates": [cpam(NIR_PAUL, NIR_PAUL, "1", "ASSURE", "Durand", "Paul",
                                "03/02/1982", sexe="1", css="NON", debut="01/01/2025",
                                fin="31/12/2025")],
}


@pytest.mark.parametrize("rule", sorted(CPAM_QUARANTINE))
def test_cpam_group_quarantined_whole(tmp_path, rule):
    bad = CPAM_QUARANTINE[rule]
    kept, held, rejected, stats = _run(tmp_path, "cpam", CPAM_CLEAN + bad)
    assert kept == {2, 3} and not rejected
    assert held == {(line, rule) for line in range(4, 4 + len(bad))}
    assert stats["quarantaine"]["par_regle"][rule] == {"dossiers": 1, "lignes": len(bad)}


def test_cpam_twins_with_distinct_ranks_and_duplicates(tmp_path):
    twins = [*TWINS[:2], TWINS[2].replace(";1;ENFANT;Durand;Léna", ";2;ENFANT;Durand;Léna")]
    twice = cpam("", NIR_PAUL, "1", "ENFANT", "DURAND", "zoé", "01/01/2020")
    kept, held, rejected, _ = _run(tmp_path, "cpam", CPAM_CLEAN + twins + [twice])
    assert kept == {2, 3, 4, 5, 6} and not held and {line for line, _ in rejected} == {7}


def test_cpam_unreadable_css_kept_as_inconnu(tmp_path):
    """Contract: an unreadable CSS status is kept as INCONNU (dates kept), with a warning."""
    row = cpam(NIR_PAUL, NIR_PAUL, "1", "ASSURE", "Durand", "Paul", "03/02/1982", sexe="1",
               css="OUI", debut="01/01/2025", fin="31/12/2025")
    src = write_cpam(tmp_path / "cpam.csv", [*CPAM_CLEAN, row])
    result = ingest("cpam", src, tmp_path / "out")
    df = pl.read_parquet(result.ingested).filter(pl.col("line") == 4)
    assert df["css"].to_list() == ["INCONNU"] and df["css_fin"].is_not_null().all()
    warnings = _read(result.warnings)
    assert [(w["line"], w["column"]) for w in warnings] == [("4", "css")]
    assert "INCONNU" in warnings[0]["reason"] and "OUI" not in warnings[0]["reason"]


def test_cpam_rejected_assure_holds_back_the_group(tmp_path):
    rows = [cpam(NIR_PAUL, NIR_PAUL, "1", "CONJOINT", "Durand", "Paul", "03/02/1982", sexe="1"),
            cpam("", NIR_PAUL, "1", "ENFANT", "Durand", "Zoé", "01/01/2020")]
    kept, held, rejected, _ = _run(tmp_path, "cpam", CPAM_CLEAN + rows)
    assert kept == {2, 3} and {line for line, _ in rejected} == {4}
    assert held == {(5, "membre_rejete")}


def test_quarantine_file_has_no_identifier(tmp_path):
    _, held, _, _ = _run(tmp_path, "caf", CLEAN + CAF_QUARANTINE["plusieurs_demandeurs"])
    assert held
    text = (tmp_path / "out" / "quarantaine.csv").read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == "line;dossier;regle;motif"
    for raw in ("0000002", "DURAND", "Durand", "Marc", "1980"):
        assert raw not in text


def test_layout_rules_are_checked(tmp_path):
    import yaml

    from pipeline.agency.ingest.layout import default_layout_path
    from pipeline.common.errors import InputError

    spec = yaml.safe_load(default_layout_path("caf").read_text(encoding="utf-8"))
    spec["dossier"]["rules"][1]["action"] = "supprimer"
    layout = tmp_path / "bad.yaml"
    layout.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    with pytest.raises(InputError, match="demandeur_rejete"):
        ingest("caf", write_caf(tmp_path / "caf.csv"), tmp_path / "out", layout)
    # A territory may drop a rule: data, not code.
    spec = yaml.safe_load(default_layout_path("caf").read_text(encoding="utf-8"))
    spec["dossier"]["rules"] = [r for r in spec["dossier"]["rules"]
                                if r["id"] != "isole_avec_conjoint"]
    layout.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    src = write_caf(tmp_path / "caf.csv", CLEAN + CAF_QUARANTINE["isole_avec_conjoint"])
    result = ingest("caf", src, tmp_path / "out", layout)
    assert result.rows_accepted == 5 and result.rows_quarantined == 0
