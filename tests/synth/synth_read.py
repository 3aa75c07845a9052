"""Readers for the raw synthetic files, as plain strings (no normalisation, on purpose)."""

from __future__ import annotations

from pathlib import Path

import polars as pl


def raw_lines(path: Path, encoding: str) -> list[list[str]]:
    """Physical lines split on ';' (index 0 = header = line 1)."""
    text = path.read_bytes().decode(encoding)
    eol = "\r\n" if "\r\n" in text else "\n"
    return [line.split(";") for line in text.split(eol)[:-1]]


def caf(out: Path) -> list[list[str]]:
    return raw_lines(out / "raw" / "caf_extract.csv", "utf-8")


def cpam(out: Path) -> list[list[str]]:
    return raw_lines(out / "raw" / "cpam_extract.csv", "cp1252")


def truth(out: Path, name: str) -> pl.DataFrame:
    return pl.read_csv(out / "truth" / name, separator=";", infer_schema=False)


def malformed_lines(out: Path, fichier: str) -> set[int]:
    m = truth(out, "malformed.csv")
    return {int(x) for x in m.filter(pl.col("fichier") == fichier)["line"]}
