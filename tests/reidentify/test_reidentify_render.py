"""The list as printed: LibreOffice renders the XLSX to PDF, then PNG; layout checked on the output.

Needs `soffice` (libreoffice-calc) and poppler-utils (pdfinfo, pdftotext, pdftoppm), installed in
CI by scripts/install_test_tools.sh (called from .ci/run); skipped, saying so, when missing.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import struct
import subprocess
from pathlib import Path

import polars as pl
import pytest
from reid_builders import write_agency, write_lists

from pipeline.agency.reidentify import reidentify
from pipeline.agency.reidentify.lists import ListHeader
from pipeline.agency.reidentify.sheets import CONFIDENTIAL, xlsx_bytes

TOOLS = ("soffice", "pdfinfo", "pdftotext", "pdftoppm")
MISSING = [t for t in TOOLS if shutil.which(t) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"outil(s) absent(s) : {', '.join(MISSING)} — lancer scripts/install_test_tools.sh",
)


def _to_pdf(xlsx: Path, tmp: Path) -> Path:
    profile = tmp / "lo-profile"
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp),
            str(xlsx),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    pdf = tmp / (xlsx.stem + ".pdf")
    assert pdf.exists()
    return pdf


def _pages(pdf: Path) -> list[tuple[float, float]]:
    info = subprocess.run(
        ["pdfinfo", "-f", "1", "-l", "999", str(pdf)], capture_output=True, text=True, check=True
    ).stdout
    return [
        (float(w), float(h)) for w, h in re.findall(r"Page\s+\d+ size:\s+([\d.]+) x ([\d.]+)", info)
    ]


def _text(pdf: Path, page: int) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", "-f", str(page), "-l", str(page), str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_list_prints_landscape_fitted_with_header_mark_and_page_numbers(tmp_path: Path) -> None:
    out = write_lists(tmp_path, {"run_date": "2026-11-22", "convention_id": "demo-test"})
    pdf = _to_pdf(out / "cible_Q1.xlsx", tmp_path)
    pages = _pages(pdf)
    # Liste (1 page for 4 households) + Tournée (1) + Légende (its length follows the rule
    # catalogue: each rule's reason, action and limits)
    assert 3 <= len(pages) <= 6, pages
    assert all(w > h for w, h in pages), "every page must be landscape"
    first = _text(pdf, 1)
    assert CONFIDENTIAL in first
    assert re.search(r"Page 1 / \d", first)
    # fitted to the width: the first and the last columns are on the same page
    flat = " ".join(first.split())
    assert "Priorité" in flat and "Commentaire" in flat and "Référence" in flat
    for name in ("MARTIN", "BERNARD", "LEROY", "ABADIE"):
        assert name in first
    assert "Saint-Michel" in first
    assert "RUE DES LILAS" in _text(pdf, 2)  # the tour sheet
    png = tmp_path / "liste"
    subprocess.run(
        ["pdftoppm", "-r", "100", "-f", "1", "-l", "1", "-png", "-singlefile", str(pdf), str(png)],
        check=True,
    )
    head = png.with_suffix(".png").read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])  # IHDR: width, height
    assert width > height


def test_long_list_repeats_its_header_row_on_every_page(tmp_path: Path) -> None:
    paths = write_agency(tmp_path, opposed_handle=None)
    out = tmp_path / "listes"
    reidentify("caf", paths["targets"], paths["work"], out, run_info={"run_date": "2026-11-22"})
    raw = (out / "cible_Q1.csv").read_bytes()[3:]
    one = pl.read_csv(io.BytesIO(raw), separator=";", infer_schema=False)
    many = pl.concat([one] * 40)  # 160 rows: several printed pages
    header = ListHeader("CAF — test", dt.date(2026, 11, 22), "demo-test", None, "barème", None)
    xlsx = tmp_path / "long.xlsx"
    xlsx.write_bytes(xlsx_bytes(many, header, roles=["DEM"], rules=[]))
    pdf = _to_pdf(xlsx, tmp_path)
    texts = [_text(pdf, i) for i in range(1, len(_pages(pdf)) + 1)]
    # the Liste sheet's pages come first, up to the tour sheet (its « Passage » column)
    liste = [t for t in texts[: next(i for i, t in enumerate(texts) if "Passage" in t)]]
    assert len(liste) >= 3, len(liste)
    for i, page in enumerate(liste, start=1):
        flat = " ".join(page.split())
        assert "Priorité" in flat and "Commentaire" in flat, f"page {i} sans en-tête"
        assert "MARTIN" in flat
        assert CONFIDENTIAL in page and f"Page {i} / {len(texts)}" in page
