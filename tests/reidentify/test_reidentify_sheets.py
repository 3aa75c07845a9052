"""The XLSX list opened as a CCAS worker would: header row, filter, drop-down, print, tour."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from reid_builders import ADDRESSES, RESOURCES, write_agency

from pipeline.agency.reidentify import reidentify
from pipeline.agency.reidentify.fieldwork import fieldwork

RUN = {"run_date": "2026-11-22", "convention_id": "demo-test"}


@pytest.fixture(scope="module")
def listes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("sheets")
    paths = write_agency(tmp, opposed_handle=None)
    out = tmp / "listes"
    reidentify(
        "caf", paths["targets"], paths["work"], out, territory=paths["territory"], run_info=RUN
    )
    return out


def _header_row(ws) -> int:
    return next(r for r in range(1, 20) if ws.cell(row=r, column=1).value == "Priorité")


def _table(ws) -> tuple[int, list[str], list[dict]]:
    h = _header_row(ws)
    names = [c.value for c in ws[h] if c.value is not None]
    rows = [
        dict(zip(names, [c.value for c in r], strict=False))
        for r in ws.iter_rows(min_row=h + 1, max_row=ws.max_row)
    ]
    return h, names, rows


def test_header_row_styled_frozen_filtered_and_covering_every_household(listes: Path) -> None:
    ws = openpyxl.load_workbook(listes / "cible_Q1.xlsx")["Liste"]
    h, names, rows = _table(ws)
    assert len(rows) == 4  # fa, fb, fe, ff in Q1
    for cell in ws[h][: len(names)]:
        assert cell.font.b and cell.fill.fgColor.rgb.endswith("DDEBF7"), cell.coordinate
    assert ws.cell(row=h - 1, column=1).value is None  # the blank row above is not styled
    assert not ws.cell(row=h - 1, column=1).font.b
    assert ws.freeze_panes == f"A{h + 1}"
    ref = ws.auto_filter.ref
    first, last = ref.split(":")
    assert first == f"A{h}"
    assert int("".join(ch for ch in last if ch.isdigit())) == h + len(rows) == ws.max_row
    assert openpyxl.utils.column_index_from_string(last.rstrip("0123456789")) == len(names)
    assert ws.print_title_rows == f"${h}:${h}"


def test_outcome_dropdown_and_date_validation(listes: Path) -> None:
    ws = openpyxl.load_workbook(listes / "cible_Q1.xlsx")["Liste"]
    h, names, rows = _table(ws)
    col = openpyxl.utils.get_column_letter(names.index("Résultat du contact") + 1)
    lists = [dv for dv in ws.data_validations.dataValidation if dv.type == "list"]
    assert len(lists) == 1
    choices = lists[0].formula1.strip('"').split(",")
    assert choices == [o.libelle for o in fieldwork().outcomes]
    assert {"joint", "pas joignable", "droit ouvert", "refus", "déjà fait"} <= set(choices)
    assert str(lists[0].sqref) == f"{col}{h + 1}:{col}{h + len(rows)}"
    dates = [dv for dv in ws.data_validations.dataValidation if dv.type == "date"]
    date_col = openpyxl.utils.get_column_letter(names.index("Date du contact") + 1)
    assert str(dates[0].sqref) == f"{date_col}{h + 1}:{date_col}{h + len(rows)}"


def test_print_layout(listes: Path) -> None:
    wb = openpyxl.load_workbook(listes / "cible_Q1.xlsx")
    for name in ("Liste", "Tournée"):
        ws = wb[name]
        assert ws.page_setup.orientation == "landscape"
        assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0
        assert ws.sheet_properties.pageSetUpPr.fitToPage
        assert ws.oddHeader.center.text == "Confidentiel — données personnelles"
        assert "&P" in ws.oddFooter.center.text and "&N" in ws.oddFooter.center.text
    assert wb.sheetnames == ["Liste", "Tournée", "Légende"]


def test_one_row_per_household_typed_with_make_up_and_names(listes: Path) -> None:
    ws = openpyxl.load_workbook(listes / "cible_Q1.xlsx")["Liste"]
    _, names, rows = _table(ws)
    by_name = {r["Nom"]: r for r in rows}
    fa, fb, ff = by_name["MARTIN"], by_name["BERNARD"], by_name["ABADIE"]
    # the make-up comes from the agency's own ingested rows (DEM + ENF)
    assert (fa["Nb adultes"], fa["Nb enfants"], fa["Tranche d'âge"]) == (1, 1, "30-49 ans")
    assert (fb["Nb adultes"], fb["Nb enfants"]) == (1, 0)
    # ranked rights: one main right, the other one by title, no repeated reason
    assert fb["Droit principal"].startswith("Famille monoparentale")
    assert fb["Motif"] == "motif monoparent_sous_plafond_sans_css"
    assert fb["Autres droits repérés"] == "Ressources sous le plafond de la CSS, sans CSS"
    assert fa["Autres droits repérés"] in (None, "")
    # typed cells: an amount with a euro format, names instead of codes
    amount = "Ressources CAF 12 mois (hors forfait logement)"
    assert fa[amount] == RESOURCES["fa"] and isinstance(fa[amount], float)
    cell = next(c for c in ws[_header_row(ws) + 1] if c.value == rows[0][amount])
    assert "€" in cell.number_format
    assert {r["Quartier"] for r in rows} == {"Saint-Michel"}
    assert {r["Commune"] for r in rows} == {"Flers"}
    assert ff["Téléphone"] is None
    assert ff["Comment joindre"] == fieldwork().no_phone_hint
    assert fa["Comment joindre"] == fieldwork().phone_hint
    assert fa["Adresse"] == ADDRESSES["fa"]
    assert {"Résultat du contact", "Date du contact", "Commentaire", "Référence"} <= set(names)
    csv = pl.read_csv(
        io.BytesIO((listes / "cible_Q1.csv").read_bytes()[3:]), separator=";", infer_schema=False
    )
    assert csv.filter(pl.col("Nom") == "MARTIN")[amount].to_list() == ["1000,5"]
    assert csv["Quartier"].unique().to_list() == ["Saint-Michel"]


def test_cpam_css_end_is_a_date_cell(tmp_path: Path) -> None:
    from test_reidentify_lists import test_cpam_side_opposition_and_contacts_by_nir as build

    build(tmp_path)  # writes tmp_path/out with a CPAM list
    work = tmp_path / "cpam"
    ing = pl.read_parquet(work / "ingested.parquet").with_columns(
        pl.lit(dt.date(2025, 12, 31)).alias("css_fin"), pl.lit("ASSURE").alias("qualite")
    )
    ing.write_parquet(work / "ingested.parquet")
    (work / "ingested.parquet").chmod(0o600)
    reidentify("cpam", tmp_path / "targets.parquet", work, tmp_path / "o2", run_info=RUN)
    ws = openpyxl.load_workbook(tmp_path / "o2" / "cible_NON_LOCALISE.xlsx")["Liste"]
    _, names, rows = _table(ws)
    assert "Téléphone" in names and "Comment joindre" in names
    assert {r["Fin de CSS"] for r in rows} == {dt.datetime(2025, 12, 31)}


def test_tour_sheet_sorted_by_street_then_number(listes: Path) -> None:
    ws = openpyxl.load_workbook(listes / "cible_Q1.xlsx")["Tournée"]
    h = next(r for r in range(1, 10) if ws.cell(row=r, column=1).value == "Quartier")
    names = [c.value for c in ws[h]]
    rows = [
        dict(zip(names, [c.value for c in r], strict=True)) for r in ws.iter_rows(min_row=h + 1)
    ]
    assert [(r["Rue"], r["N°"]) for r in rows] == [
        ("ALLEE DES PINS", "7 BIS"),
        ("AVENUE FOCH", "3"),
        ("RUE DES LILAS", "2"),
        ("RUE DES LILAS", "10"),
    ]
    assert ws.freeze_panes == f"A{h + 1}" and ws.print_title_rows == f"${h}:${h}"


def test_legend_explains_roles_priorities_rules_outcomes_and_notice(listes: Path) -> None:
    ws = openpyxl.load_workbook(listes / "cible_Q1.xlsx")["Légende"]
    text = "\n".join(str(v) for row in ws.iter_rows(values_only=True) for v in row if v is not None)
    assert "L.114-8" in text and "opposer" in text
    for role in ("DEM", "CJT", "ENF"):
        assert f"\n{role}\n" in text
    for prio in ("1", "2", "3", "4"):
        assert f"\n{prio}\n" in text
    assert "Allocataire du RSA sans CSS" in text
    assert "{" not in text  # reason templates shown without their placeholders
    assert "Bénéficiaire de l'AAH" in text
    assert "CSS gratuite sans RSA" not in text  # a CPAM rule is not in the CAF legend
    for outcome in fieldwork().outcomes:
        assert outcome.libelle in text


def test_tour_parses_house_numbers_without_eating_the_street() -> None:
    from pipeline.agency.reidentify.sheets import tour_frame

    addresses = [
        "10 R DE LA PAIX",
        "2 B RUE X",
        "7 BIS ALLEE Y",
        "RUE SANS NUMERO",
        "9 R DE LA PAIX",
    ]
    d = pl.DataFrame({"Adresse": addresses, "Quartier": ["q"] * 5, "Nom": list("abcde")})
    got = tour_frame(d).select("Rue", "N°").rows()
    assert got == [
        ("ALLEE Y", "7 BIS"),
        ("R DE LA PAIX", "9"),
        ("R DE LA PAIX", "10"),
        ("RUE SANS NUMERO", None),
        ("RUE X", "2 B"),
    ]


def test_legend_shows_rule_limits_from_the_catalogue(tmp_path: Path, monkeypatch) -> None:
    """Rules may carry `limites` (detect's catalogue): the legend lists them under the rule."""
    import dataclasses

    from pipeline.shared import rules as catalogue

    real = catalogue.load_rules

    @dataclasses.dataclass(frozen=True)
    class Limited:
        rule: catalogue.Rule
        limites: tuple[str, ...]

        def __getattr__(self, name: str):
            return getattr(self.rule, name)

    limit = "le forfait logement est estimé, l'aide au logement réelle n'est pas connue"
    monkeypatch.setattr(
        catalogue, "load_rules", lambda path=None: [Limited(r, (limit,)) for r in real(path)]
    )
    paths = write_agency(tmp_path, opposed_handle=None)
    reidentify("caf", paths["targets"], paths["work"], tmp_path / "o", run_info=RUN)
    ws = openpyxl.load_workbook(tmp_path / "o" / "cible_Q1.xlsx")["Légende"]
    cells = [v for row in ws.iter_rows(values_only=True) for v in row if v]
    caf_rules = [r for r in real() if r.agence == "caf"]
    assert len(caf_rules) >= 5
    assert cells.count(f"Limite : {limit}") == len(caf_rules)  # once under each CAF rule
