"""Read a raw extract into string columns, keeping each row's physical line number.

The file is decoded once with Python's codec (strict: a byte that is not valid in the declared
encoding is a file-level error naming its line and column), then split into lines and fields in
polars. Lines are split on the separator directly; only the rare lines containing a quote go
through the `csv` module. Lines whose field count differs from the header are rejected rows; when
most lines are like that the file cannot be parsed and an InputError is raised instead.
"""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.common.errors import InputError
from pipeline.ingest.layout import Layout

REASON_FIELDS = "nombre de champs différent de l'en-tête ({expected} attendus)"
REASON_EMPTY = "ligne vide"
# Above this share of malformed lines, the separator or the format is wrong: refuse the file.
MAX_RAGGED_SHARE = 0.5

_CODEC_LABELS = {"utf-8": "UTF-8", "cp1252": "Windows-1252"}


@dataclass(frozen=True)
class RawTable:
    """Data rows as trimmed strings (null when empty), renamed to canonical names."""

    frame: pl.DataFrame  # `line` + one String column per layout column
    structural: pl.DataFrame  # rejected lines: line, column, reason
    rows_read: int
    header: tuple[str, ...]
    missing_optional: tuple[str, ...]  # optional layout columns absent from the header
    ignored_columns: tuple[str, ...]  # header columns the layout does not use


def _codec_name(encoding: str) -> str:
    return codecs.lookup(encoding).name


def decode(data: bytes, path: Path, layout: Layout) -> str:
    """Decode strictly; locate the first bad byte by line and column."""
    codec = _codec_name(layout.encoding)
    label = _CODEC_LABELS.get(codec, layout.encoding)
    if codec == "utf-8" and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    if codec != "utf-8" and not data.isascii():
        # A Windows-1252 file with accents is almost never valid UTF-8; a UTF-8 file read as
        # Windows-1252 would silently turn "é" into "Ã©". Refuse it instead.
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            offset = next(i for i, b in enumerate(data) if b >= 0x80)
            line, column = _locate(data, offset, layout)
            raise InputError(
                path,
                f"le fichier semble encodé en UTF-8 alors que la disposition attend {label} ; "
                "réexporter le fichier ou fournir une disposition (--layout) adaptée",
                line=line, column=column,
            )
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line, column = _locate(data, exc.start, layout)
        raise InputError(
            path, f"octet invalide pour l'encodage {label} : le fichier n'est pas en {label}",
            line=line, column=column,
        ) from None


def _locate(data: bytes, offset: int, layout: Layout) -> tuple[int, str | None]:
    """Physical line (1-based) and header column name of a byte offset."""
    sep = layout.separator.encode("ascii", "replace")
    line = data.count(b"\n", 0, offset) + 1
    start = data.rfind(b"\n", 0, offset) + 1
    index = data.count(sep, start, offset)
    header = data[: data.find(b"\n")] if b"\n" in data else data
    names = header.decode("ascii", "replace").strip().split(layout.separator)
    return line, (names[index].strip() if index < len(names) else None)


def _split_header(line: str, layout: Layout) -> list[str]:
    if layout.quote and layout.quote in line:
        return next(csv.reader([line], delimiter=layout.separator, quotechar=layout.quote))
    return line.split(layout.separator)


def read_raw(path: Path, layout: Layout) -> RawTable:
    """Read `path` with `layout`; raise InputError for anything that prevents parsing."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "fichier introuvable")
    text = decode(path.read_bytes(), path, layout)
    if not text.strip():
        raise InputError(path, "fichier vide (aucun en-tête)", line=1)

    lines = pl.Series("raw", [text]).str.split("\n").explode()
    lines = lines.str.strip_suffix("\r")
    if lines.len() > 1 and lines[-1] == "":
        lines = lines.head(lines.len() - 1)  # the final newline does not start a row
    header = [h.strip() for h in _split_header(lines[0], layout)]
    index = _header_index(path, header, layout)
    n_fields = len(header)

    df = pl.DataFrame({"raw": lines.slice(1)}).with_row_index("line", offset=2)
    df = df.with_columns(pl.col("line").cast(pl.Int64))
    sep = layout.separator
    has_quote = (
        pl.col("raw").str.contains(layout.quote, literal=True) if layout.quote else pl.lit(False)
    )
    df = df.with_columns(quoted=has_quote)
    plain = df.filter(~pl.col("quoted")).select(
        "line", "raw", fields=pl.col("raw").str.split(sep, literal=True)
    )
    quoted_rows = df.filter(pl.col("quoted"))
    if quoted_rows.height:
        parsed = _parse_quoted(path, quoted_rows, layout)
        plain = pl.concat([plain, parsed]).sort("line")

    blank = pl.col("raw").str.strip_chars().str.len_bytes() == 0
    ragged = pl.col("fields").list.len() != n_fields
    plain = plain.with_columns(blank=blank, ragged=ragged & ~blank)
    bad = plain.filter(pl.col("blank") | pl.col("ragged"))
    rows_read = plain.height
    non_blank = rows_read - int(plain["blank"].sum())
    n_ragged = int(plain["ragged"].sum())
    if n_ragged and n_ragged > MAX_RAGGED_SHARE * non_blank:
        first = int(bad.filter(pl.col("ragged"))["line"][0])
        raise InputError(
            path,
            f"{n_ragged} lignes sur {non_blank} n'ont pas {n_fields} champs comme l'en-tête : "
            f"séparateur (« {sep} ») ou format incorrect",
            line=first,
        )
    structural = bad.select(
        "line",
        column=pl.lit(None, dtype=pl.String),
        reason=pl.when(pl.col("blank")).then(pl.lit(REASON_EMPTY))
        .otherwise(pl.lit(REASON_FIELDS.format(expected=n_fields))),
    )
    good = plain.filter(~pl.col("blank") & ~pl.col("ragged"))
    value_cols = []
    missing_optional = []
    for spec in layout.columns:
        j = index.get(spec.name)
        if j is None:
            missing_optional.append(spec.source)
            value_cols.append(pl.lit(None, dtype=pl.String).alias(spec.name))
            continue
        v = pl.col("fields").list.get(j, null_on_oob=True).str.strip_chars()
        value_cols.append(pl.when(v.str.len_bytes() > 0).then(v).alias(spec.name))
    frame = good.select("line", *value_cols)
    used = {index[c.name] for c in layout.columns if c.name in index}
    ignored = tuple(h for i, h in enumerate(header) if i not in used)
    return RawTable(
        frame=frame, structural=structural, rows_read=rows_read, header=tuple(header),
        missing_optional=tuple(missing_optional), ignored_columns=ignored,
    )


def _header_index(path: Path, header: list[str], layout: Layout) -> dict[str, int]:
    """Canonical name -> field index; a missing required column is a file-level error."""
    lowered = [h.lower().lstrip("\ufeff") for h in header]
    seen: set[str] = set()
    for i, h in enumerate(lowered):
        if h in seen:
            raise InputError(path, "colonne présente deux fois dans l'en-tête", line=1,
                             column=header[i])
        seen.add(h)
    index: dict[str, int] = {}
    for spec in layout.columns:
        key = spec.source.strip().lower()
        if key in lowered:
            index[spec.name] = lowered.index(key)
        elif spec.required:
            hint = ""
            if len(header) == 1:
                hint = f" (séparateur « {layout.separator} » absent de l'en-tête ?)"
            raise InputError(path, f"colonne obligatoire absente de l'en-tête{hint}", line=1,
                             column=spec.source)
    return index


def _parse_quoted(path: Path, rows: pl.DataFrame, layout: Layout) -> pl.DataFrame:
    """Parse the few lines that contain quotes with the csv module (not on the hot path)."""
    lines = rows["line"].to_list()
    raws = rows["raw"].to_list()
    fields = []
    for line, raw in zip(lines, raws, strict=True):
        if raw.count(layout.quote) % 2:
            raise InputError(
                path, "guillemet non fermé (un champ ne peut pas s'étendre sur plusieurs lignes)",
                line=line,
            )
        fields.append(next(csv.reader([raw], delimiter=layout.separator,
                                      quotechar=layout.quote)))
    return pl.DataFrame(
        {"line": lines, "raw": raws, "fields": fields},
        schema={"line": pl.Int64, "raw": pl.String, "fields": pl.List(pl.String)},
    )
