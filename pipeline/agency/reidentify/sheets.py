"""The XLSX a CCAS worker prints and fills: « Liste », « Tournée » and « Légende » sheets.

Liste: header block, then ONE styled header row that is frozen, filtered (covering every
household) and repeated on every printed page; outcome columns with a drop-down; landscape,
fitted to the page width, page numbers and a confidentiality mark. Tournée: the same households
by street and number for door-to-door. Légende: roles, priorities, rules, outcome choices and the
legal notice to give at first contact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from pipeline.agency.reidentify.fieldwork import fieldwork
from pipeline.agency.reidentify.lists import (
    ADDRESS,
    COMMUNE,
    CONTACT_DATE,
    OUTCOME,
    QUARTIER,
    TYPED_HEADERS,
    ListHeader,
)
from pipeline.agency.reidentify.xlsx import workbook_bytes

CONFIDENTIAL = "Confidentiel — données personnelles"
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
EURO_FORMAT = '#,##0.00 "€"'
DATE_FORMAT = "DD/MM/YYYY"
WRAP = Alignment(wrap_text=True, vertical="top")
NO_WRAP_ALIGN = Alignment(vertical="top")
SMALL_FONT = Font(size=6)  # the 32-character reference fits its column without widening the page
WIDTHS = {
    "Priorité": 7,
    "Droit principal": 16,
    "Motif": 32,
    "Action proposée": 15,
    "Autres droits repérés": 22,
    "Nom": 11,
    "Prénom": 10,
    "Rôle": 6,
    "Qualité": 8,
    "Nb adultes": 6,
    "Nb enfants": 6,
    "Tranche d'âge": 8,
    "Téléphone": 11,
    "Comment joindre": 11,
    ADDRESS: 16,
    "Code postal": 6,
    COMMUNE: 10,
    QUARTIER: 11,
    "N° allocataire": 9,
    **dict.fromkeys(TYPED_HEADERS.values(), 11),
    OUTCOME: 12,
    CONTACT_DATE: 10,
    "Commentaire": 14,
    "Référence": 19,
    "Avertissement": 24,
    "Rue": 28,
    "N°": 7,
    "Passage (date, résultat)": 30,
}
LINE_HEIGHT = 11.5  # points per wrapped line of the 9 pt body font
CHARS_PER_UNIT = 1.2  # 9 pt characters per column-width unit (widths count 11 pt characters)
NO_WRAP = {"Référence"}
BODY_FONT = Font(size=9)
LEGEND_WIDTHS = (30, 110)  # legend columns; also the characters per line of its 10 pt text
TOUR_COLUMNS = (
    "Rue",
    "N°",
    ADDRESS,
    COMMUNE,
    "Nom",
    "Prénom",
    "Téléphone",
    "Priorité",
    "Droit principal",
)


def _print_layout(ws: Worksheet, title_row: int) -> None:
    """Landscape A4 fitted to the width, header row on every page, page numbers, mark."""
    ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{title_row}:{title_row}"
    ws.oddHeader.center.text = CONFIDENTIAL
    ws.oddHeader.center.size = 9
    ws.oddFooter.center.text = "Page &P / &N"
    ws.oddFooter.center.size = 9
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.75
    ws.page_margins.header = ws.page_margins.footer = 0.3


def _table(ws: Worksheet, frame: pl.DataFrame, first: int) -> int:
    """Write `frame` with its header on row `first`; return the last row used."""
    for j, name in enumerate(frame.columns, start=1):
        cell = ws.cell(row=first, column=j, value=name)
        cell.font = Font(bold=True, size=9)
        cell.fill = HEADER_FILL
        cell.alignment = WRAP
        ws.column_dimensions[get_column_letter(j)].width = WIDTHS.get(name, 14)
    formats = {
        j: EURO_FORMAT if dtype == pl.Float64 else DATE_FORMAT if dtype == pl.Date else None
        for j, dtype in enumerate(frame.dtypes, start=1)
    }
    heights = _row_heights(frame)
    for i, (row, height) in enumerate(
        zip(frame.iter_rows(), heights, strict=True), start=first + 1
    ):
        for j, value in enumerate(row, start=1):
            cell = ws.cell(row=i, column=j, value=value)
            small = frame.columns[j - 1] in NO_WRAP
            cell.alignment = NO_WRAP_ALIGN if small else WRAP
            cell.font = SMALL_FONT if small else BODY_FONT
            if formats[j]:
                cell.number_format = formats[j]
        ws.row_dimensions[i].height = height
    ws.row_dimensions[first].height = LINE_HEIGHT * 4.6
    last = first + frame.height
    ws.freeze_panes = ws.cell(row=first + 1, column=1)
    ws.auto_filter.ref = f"A{first}:{get_column_letter(frame.width)}{last}"
    _print_layout(ws, first)
    return last


def _row_heights(frame: pl.DataFrame) -> list[float]:
    """Row heights fitting the wrapped text (LibreOffice and Excel keep a stored height)."""
    lines = [
        pl.col(c)
        .cast(pl.String)
        .fill_null("")
        .str.split("\n")
        .list.eval(
            (pl.element().str.len_chars() / (WIDTHS.get(c, 14) * CHARS_PER_UNIT)).ceil().clip(1)
        )
        .list.sum()
        for c in frame.columns
        if frame.schema[c] == pl.String and c not in NO_WRAP
    ]
    if not lines:
        return [LINE_HEIGHT] * frame.height
    most = frame.select(pl.max_horizontal(lines).clip(1).alias("n"))["n"]
    return [round(float(n) * LINE_HEIGHT + 2, 1) for n in most]


def _outcome_dropdown(ws: Worksheet, frame: pl.DataFrame, first: int, last: int) -> None:
    if last <= first:
        return
    labels = ",".join(o.libelle for o in fieldwork().outcomes)
    dv = DataValidation(
        type="list",
        formula1=f'"{labels}"',
        allow_blank=True,
        showErrorMessage=True,
        errorTitle="Résultat du contact",
        error="Choisir un résultat dans la liste (voir l'onglet Légende).",
    )
    ws.add_data_validation(dv)
    col = get_column_letter(frame.columns.index(OUTCOME) + 1)
    dv.add(f"{col}{first + 1}:{col}{last}")
    date_col = get_column_letter(frame.columns.index(CONTACT_DATE) + 1)
    dates = DataValidation(
        type="date",
        operator="greaterThan",
        formula1="36526",  # 01/01/2000
        allow_blank=True,
        showErrorMessage=True,
        errorTitle="Date du contact",
        error="Saisir une date (JJ/MM/AAAA).",
    )
    ws.add_data_validation(dates)
    dates.add(f"{date_col}{first + 1}:{date_col}{last}")


def _header_block(ws: Worksheet, header: ListHeader) -> int:
    """Title, warning, provenance; returns the next free row (after one blank row)."""
    block = [(header.title, Font(bold=True, size=14))]
    if header.warning:
        block.append(("ATTENTION : " + header.warning, Font(bold=True, color="C00000", size=12)))
    block += [
        (f"Édité le {header.run_date:%d/%m/%Y} — convention « {header.convention_id} »", None),
        (
            "Données au "
            + (f"{header.reference_date:%d/%m/%Y}" if header.reference_date else "?")
            + " — "
            + header.css_table,
            None,
        ),
        (
            "Au premier contact, dire la mention de l'onglet « Légende » (droit d'information "
            "et d'opposition, art. L.114-8 II CRPA). Noter le résultat dans les colonnes "
            f"« {OUTCOME} » et « {CONTACT_DATE} ».",
            Font(italic=True),
        ),
    ]
    for row, (text, font) in enumerate(block, start=1):
        cell = ws.cell(row=row, column=1, value=text)
        if font:
            cell.font = font
    return len(block) + 2


def tour_frame(display: pl.DataFrame) -> pl.DataFrame:
    """Households by quartier, street name, then house number (door-to-door order)."""
    address = pl.col(ADDRESS).fill_null("").str.strip_chars().str.to_uppercase()
    house = address.str.extract(r"^(\d+(?:\s*(?:BIS|TER|QUATER|[A-D]\b))?)", 1)
    number = address.str.extract(r"^(\d+)", 1).cast(pl.Int64, strict=False)
    street = address.str.slice(house.str.len_chars().fill_null(0)).str.strip_chars(" ,")
    cols = [c for c in TOUR_COLUMNS if c in display.columns or c in ("Rue", "N°")]
    by_name = "Nom" if "Nom" in display.columns else QUARTIER
    return (
        display.with_columns(street.alias("Rue"), house.alias("N°"), number.alias("_n"))
        .sort([QUARTIER, "Rue", "_n", "N°", by_name], nulls_last=True)
        .select(QUARTIER, *cols, pl.lit(None, dtype=pl.String).alias("Passage (date, résultat)"))
    )


def _legend(ws: Worksheet, roles: Sequence[str], rules: Sequence[dict[str, str]]) -> None:
    fw = fieldwork()
    ws.column_dimensions["A"].width = LEGEND_WIDTHS[0]
    ws.column_dimensions["B"].width = LEGEND_WIDTHS[1]
    rows: list[tuple[str, str, bool]] = [
        ("Mention à dire au premier contact", "", True),
        ("", fw.legal_notice, False),
        ("", "", False),
        ("Résultat du contact (choix de la liste)", "", True),
        *[(o.libelle, o.explication, False) for o in fw.outcomes],
        ("", "", False),
        ("Priorité", "", True),
        *[(str(k), v, False) for k, v in sorted(fw.priorities.items())],
        ("", "", False),
        ("Rôle / qualité", "", True),
        *[(r, fw.roles.get(r, ""), False) for r in roles],
        ("", "", False),
        ("Droits repérés (règles)", "", True),
    ]
    for rule in rules:
        rows.append((rule["titre"], f"Pourquoi : {rule['motif']}", False))
        rows.append(("", f"Action : {rule['action']} — source : {rule['source']}", False))
        for limit in rule.get("limites", []):
            rows.append(("", f"Limite : {limit}", False))
    for i, (a, b, bold) in enumerate(rows, start=1):
        ca = ws.cell(row=i, column=1, value=a or None)
        cb = ws.cell(row=i, column=2, value=b or None)
        if bold:  # a heading: one line, overflowing into the empty column B
            ca.font = Font(bold=True, size=12)
            ws.row_dimensions[i].height = 20
            continue
        ca.alignment = cb.alignment = WRAP
        ca.font = cb.font = Font(size=10)
        lines = max(-(-len(a) // LEGEND_WIDTHS[0]), -(-len(b) // LEGEND_WIDTHS[1]), 1)
        ws.row_dimensions[i].height = lines * 13.5 + 2
    _print_layout(ws, 1)
    ws.print_title_rows = None


def xlsx_bytes(
    display: pl.DataFrame,
    header: ListHeader,
    *,
    roles: Sequence[str],
    rules: Sequence[dict[str, str]],
) -> bytes:
    """Liste + Tournée + Légende, byte-reproducible (dated by the run date)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Liste"
    first = _header_block(ws, header)
    last = _table(ws, display, first)
    _outcome_dropdown(ws, display, first, last)
    tour = wb.create_sheet("Tournée")
    tour.cell(row=1, column=1, value=f"Tournée — {header.title}").font = Font(bold=True, size=13)
    tour.cell(
        row=2,
        column=1,
        value="Adresses par rue puis numéro ; reporter le résultat dans l'onglet « Liste ».",
    )
    _table(tour, tour_frame(display), 4)
    _legend(wb.create_sheet("Légende"), roles, rules)
    stamp = dt.datetime.combine(header.run_date, dt.time(0, 0))
    return workbook_bytes(wb, stamp)
