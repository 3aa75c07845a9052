"""Shape the CCAS lists: French headers, readable cells, XLSX header block, CSV twin.

One job: turn the re-identified frame into the bytes of one XLSX and one CSV. The header block
says where the list comes from (run date, convention, reference date, CSS table used) and
repeats the loud warning when the CSS table of the reference date was not confirmed.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from pipeline.common.french import euros
from pipeline.reidentify.xlsx import workbook_bytes

CONTACT_HEADERS = {
    "nom": "Nom",
    "prenom": "Prénom",
    "telephone": "Téléphone",
    "adresse": "Adresse",
    "code_postal": "Code postal",
    "code_commune": "Commune (INSEE)",
    "matricule": "N° allocataire",
    "qualite": "Qualité",
    "role": "Rôle",
}
WIDTHS = {
    "Motifs": 70,
    "Actions proposées": 45,
    "Situation repérée": 40,
    "Adresse": 32,
    "Référence": 34,
    "Avertissement": 50,
}
LEGAL_NOTICE = (
    "Au premier contact, informer la personne de l'origine de ces informations (échange "
    "CAF-CPAM, art. L.114-8 II CRPA) et de son droit de s'opposer à tout moment à ce traitement."
)


@dataclass(frozen=True)
class ListHeader:
    """What the header block of every list says."""

    title: str
    run_date: dt.date
    convention_id: str
    reference_date: dt.date | None
    css_table: str
    warning: str | None


def css_table_text(desc: dict[str, Any]) -> str:
    """One line describing the CSS table used (period, free / contribution ceilings)."""
    metro = desc["plafonds_metropole"]
    g, p = metro["gratuite"], metro["participation"]
    cells = " / ".join(euros(g[k]) for k in ("1", "2", "3", "4"))
    cells_p = " / ".join(euros(p[k]) for k in ("1", "2", "3", "4"))
    status = "confirmé" if desc["confirme"] else "NON CONFIRMÉ"
    period = desc.get("periode_fr", desc["periode"])
    return (
        f"barème CSS {period} ({status}) — plafonds annuels 1 à 4 personnes, "
        f"CSS gratuite : {cells} (+{euros(g['extra'])} par personne en plus) ; "
        f"avec participation : {cells_p} (+{euros(p['extra'])}) ; outre-mer : +11,3 %"
    )


def to_display(
    df: pl.DataFrame, contact_fields: Sequence[str], rule_titles: dict[str, str], *, joiner: str
) -> pl.DataFrame:
    """French-headed columns in reading order; lists joined with `joiner`."""
    cols: list[pl.Expr] = [
        pl.col("priorite").alias("Priorité"),
        pl.col("quartier").alias("Quartier"),
    ]
    cols += [pl.col(c).cast(pl.String).alias(CONTACT_HEADERS.get(c, c)) for c in contact_fields]
    cols += [
        pl.col("regles")
        .list.eval(pl.element().replace(rule_titles))
        .list.join(joiner)
        .alias("Situation repérée"),
        pl.col("motifs").list.join(joiner).alias("Motifs"),
        pl.col("actions")
        .list.unique(maintain_order=True)
        .list.join(joiner)
        .alias("Actions proposées"),
        pl.col("foyer").alias("Référence"),
    ]
    out = df.select(cols)
    if df["avertissement"].drop_nulls().len():
        out = out.with_columns(df["avertissement"].alias("Avertissement"))
    return out


def csv_bytes(display: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    buf.write(b"\xef\xbb\xbf")
    display.write_csv(buf, separator=";")
    return buf.getvalue()


def xlsx_bytes(display: pl.DataFrame, header: ListHeader) -> bytes:
    """A one-sheet workbook: header block, then the table with a bold frozen header row."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Liste"
    bold = Font(bold=True)
    block = [
        (header.title, Font(bold=True, size=14)),
        (f"Édité le {header.run_date:%d/%m/%Y} — convention « {header.convention_id} »", None),
        (
            "Données au "
            + (f"{header.reference_date:%d/%m/%Y}" if header.reference_date else "?")
            + " — "
            + header.css_table,
            None,
        ),
        (LEGAL_NOTICE, Font(italic=True)),
    ]
    if header.warning:
        block.insert(1, ("ATTENTION : " + header.warning, Font(bold=True, color="C00000", size=12)))
    for text, font in block:
        ws.append([text])
        if font:
            ws.cell(row=ws.max_row, column=1).font = font
    ws.append([])
    first = ws.max_row + 1
    ws.append(display.columns)
    for cell in ws[first]:
        cell.font = bold
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for row in display.iter_rows():
        ws.append(list(row))
        for cell in ws[ws.max_row]:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    for idx, name in enumerate(display.columns, start=1):
        values = display[name].cast(pl.String).fill_null("")
        longest = max([len(name), *[min(len(v), 60) for v in values.to_list()]])
        ws.column_dimensions[get_column_letter(idx)].width = min(WIDTHS.get(name, longest + 2), 80)
    ws.freeze_panes = ws.cell(row=first + 1, column=1)
    if display.height:
        ws.auto_filter.ref = f"A{first}:{get_column_letter(display.width)}{first + display.height}"
    ws.page_setup.orientation = "landscape"
    stamp = dt.datetime.combine(header.run_date, dt.time(0, 0))
    return workbook_bytes(wb, stamp)
