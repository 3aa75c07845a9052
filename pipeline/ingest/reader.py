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
    """Data rows as raw strings (null when empty, not yet trimmed), renamed to canonical names."""

    frame: pl.DataFrame  # `line` + one String column per layout column
    structural: pl.DataFrame  # rejected lines: line, column, reason
    rows_read: int
    header: tuple[str, ...]
    missing_optional: tuple[str, ...]  # optional layout columns absent from the header
    ignored_columns: tuple[str, ...]  # header columns the layout does not use
    trailing_blank_lines: int = 0  # blank lines after the last row (not rows, only counted)


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


def to_utf8(data: bytes, path: Path, layout: Layout) -> bytes:
    """UTF-8 bytes for polars. UTF-8 input is passed through (polars validates it and
    `decode` locates the bad byte if it does not); other encodings are decoded strictly once."""
    codec = _codec_name(layout.encoding)
    if codec == "utf-8":
        return data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data
    return decode(data, path, layout).encode("utf-8")


def _read_lines(data: bytes) -> pl.Series:
    """Every physical line as one string (blank lines as null), with polars' native reader."""
    return pl.read_csv(
        data, has_header=False, separator="\x1f", quote_char=None, infer_schema=False,
        new_columns=["raw"],
    )["raw"]


def read_raw(path: Path, layout: Layout) -> RawTable:
    """Read `path` with `layout`; raise InputError for anything that prevents parsing."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "fichier introuvable")
    original = path.read_bytes()
    data = to_utf8(original, path, layout)
    if not data.strip():
        raise InputError(path, "fichier vide (aucun en-tête)", line=1)
    if b"\x1f" in data:
        offset = data.index(b"\x1f")
        line, column = _locate(data, offset, layout)
        raise InputError(path, "caractère de contrôle inattendu (0x1F)", line=line, column=column)
    try:
        lines = _read_lines(data)
    except pl.exceptions.ComputeError:
        decode(original, path, layout)  # raises with the line and column of the bad byte
        raise
    header = [h.strip() for h in _split_header(lines[0] or "", layout)]
    index = _header_index(path, header, layout)
    n_fields = len(header)
    sep = layout.separator

    df = pl.DataFrame({"raw": lines.slice(1)}).with_row_index("line", offset=2)
    df = df.with_columns(pl.col("line").cast(pl.Int64))
    quoted = (
        pl.col("raw").str.contains(layout.quote, literal=True).fill_null(False)
        if layout.quote else pl.lit(False)
    )
    df = df.with_columns(
        quoted=quoted,
        blank=pl.col("raw").str.strip_chars().str.len_bytes().fill_null(0) == 0,
        n=pl.col("raw").str.count_matches(sep, literal=True) + 1,
    )
    quoted_rows = df.filter(pl.col("quoted"))
    if quoted_rows.height:
        counts = _count_quoted(path, quoted_rows, layout)
        df = df.update(counts, on="line")
    df = df.with_columns(ragged=(pl.col("n") != n_fields) & ~pl.col("blank"))
    physical = df.height
    # Blank lines at the very end of a file are not rows (exports often add some); blank lines
    # between rows are reported as rejected rows.
    last = df.filter(~pl.col("blank"))["line"].max()
    df = df.filter(pl.col("line") <= (last if last is not None else 0))
    trailing_blank = physical - df.height
    rows_read = df.height
    non_blank = rows_read - int(df["blank"].sum())
    n_ragged = int(df["ragged"].sum())
    if n_ragged and n_ragged > MAX_RAGGED_SHARE * non_blank:
        first = int(df.filter(pl.col("ragged"))["line"][0])
        raise InputError(
            path,
            f"{n_ragged} lignes sur {non_blank} n'ont pas {n_fields} champs comme l'en-tête : "
            f"séparateur (« {sep} ») ou format incorrect",
            line=first,
        )
    bad = df.filter(pl.col("blank") | pl.col("ragged"))
    structural = bad.select(
        "line",
        column=pl.lit(None, dtype=pl.String),
        reason=pl.when(pl.col("blank")).then(pl.lit(REASON_EMPTY))
        .otherwise(pl.lit(REASON_FIELDS.format(expected=n_fields))),
    )

    wanted = sorted({j for j in index.values()})
    fields = pl.read_csv(
        data, has_header=False, skip_rows=1, separator=sep, quote_char=layout.quote,
        schema={f"column_{j}": pl.String for j in range(n_fields)},
        columns=[f"column_{j}" for j in wanted],
        truncate_ragged_lines=True,
    )
    if fields.height != physical:  # a quoted field spans several lines
        odd = df.filter(pl.col("raw").str.count_matches(layout.quote or "\x00", literal=True) % 2
                        == 1)
        first = int(odd["line"][0]) if odd.height else None
        raise InputError(
            path, "guillemet non fermé (un champ ne peut pas s'étendre sur plusieurs lignes)",
            line=first,
        )
    value_cols = []
    missing_optional = []
    for spec in layout.columns:
        j = index.get(spec.name)
        if j is None:
            missing_optional.append(spec.source)
            value_cols.append(pl.lit(None, dtype=pl.String).alias(spec.name))
        else:
            value_cols.append(pl.col(f"column_{j}").alias(spec.name))
    keep = ~(df["blank"] | df["ragged"])
    # Values are not trimmed here: convert.py trims them, once per distinct value where it can.
    frame = fields.head(rows_read).with_columns(line=df["line"]).filter(keep)
    frame = frame.select("line", *value_cols)
    used = set(index.values())
    ignored = tuple(h for i, h in enumerate(header) if i not in used)
    return RawTable(
        frame=frame, structural=structural, rows_read=rows_read, header=tuple(header),
        missing_optional=tuple(missing_optional), ignored_columns=ignored,
        trailing_blank_lines=trailing_blank,
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


def _count_quoted(path: Path, rows: pl.DataFrame, layout: Layout) -> pl.DataFrame:
    """Field counts of the few lines that contain quotes, with the csv module (not hot)."""
    lines = rows["line"].to_list()
    counts = []
    for line, raw in zip(lines, rows["raw"].to_list(), strict=True):
        if raw.count(layout.quote) % 2:
            raise InputError(
                path, "guillemet non fermé (un champ ne peut pas s'étendre sur plusieurs lignes)",
                line=line,
            )
        counts.append(len(next(csv.reader([raw], delimiter=layout.separator,
                                          quotechar=layout.quote))))
    return pl.DataFrame({"line": lines, "n": counts}, schema={"line": pl.Int64, "n": pl.UInt32})
