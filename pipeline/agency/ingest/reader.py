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
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.agency.ingest.layout import Layout, header_key
from pipeline.common.errors import InputError

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
    physical_lines: int = 0  # lines of the file, header included (a record may span several)


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


# Control bytes that have no business in a text extract (tab, LF and CR are allowed).
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NOT_CONTROL = bytes(b for b in range(256) if not _CONTROL.match(bytes([b])))


def check_control_bytes(data: bytes, path: Path) -> None:
    """Refuse NUL and other control bytes, naming the line and byte position, never the content."""
    if not data.translate(None, _NOT_CONTROL):  # fast path: deletes every allowed byte
        return
    found = _CONTROL.search(data)
    assert found is not None
    offset = found.start()
    line = data.count(b"\n", 0, offset) + 1
    position = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    hint = " (fichier en UTF-16 ou binaire ?)" if data[offset] == 0 else ""
    raise InputError(
        path,
        f"octet de contrôle 0x{data[offset]:02X} à la position {position} de la ligne{hint} : "
        "fichier corrompu ; réexporter l'extrait",
        line=line,
    )


def _records(path: Path, df: pl.DataFrame, layout: Layout) -> pl.DataFrame:
    """Group physical lines into CSV records (RFC 4180: a quoted field may hold line breaks).

    `line` becomes the first physical line of each record. A line continues the previous record
    when the quotes seen so far are unbalanced (doubled quotes count twice, so they never flip).
    """
    q = pl.col("raw").str.count_matches(layout.quote, literal=True).fill_null(0)
    df = df.with_columns(open_after=(q.cum_sum() % 2 == 1))
    if not df["open_after"].any():
        return df.drop("open_after")
    df = df.with_columns(start=~pl.col("open_after").shift(1, fill_value=False))
    df = df.with_columns(record=pl.col("start").cum_sum())
    if df["open_after"][-1]:
        first = int(df.filter(pl.col("record") == df["record"][-1])["line"][0])
        raise InputError(
            path, "guillemet ouvert et jamais fermé : le fichier semble tronqué ou mal exporté",
            line=first,
        )
    grouped = df.group_by("record", maintain_order=True).agg(
        line=pl.col("line").first(),
        raw=pl.col("raw").fill_null("").str.join("\n"),
        n_lines=pl.len(),
    )
    limit = layout.max_record_lines
    too_long = grouped.filter(pl.col("n_lines") > limit)
    if too_long.height:
        raise InputError(
            path,
            f"un champ entre guillemets s'étend sur plus de {limit} lignes : guillemet non "
            "fermé ou mal placé",
            line=int(too_long["line"][0]),
        )
    return grouped.select("line", "raw")


def _field_counts(df: pl.DataFrame, layout: Layout) -> pl.Expr:
    """Number of fields per record; quoted sections (separators, line breaks) count as text."""
    sep = layout.separator
    raw = pl.col("raw")
    if layout.quote:
        q = re.escape(layout.quote)
        unquoted = raw.str.replace_all(f"{q}(?:[^{q}]|{q}{q})*{q}", "")
        raw = pl.when(raw.str.contains(layout.quote, literal=True)).then(unquoted).otherwise(raw)
    return raw.str.count_matches(sep, literal=True) + 1


def read_raw(path: Path, layout: Layout) -> RawTable:
    """Read `path` with `layout`; raise InputError for anything that prevents parsing."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "fichier introuvable")
    original = path.read_bytes()
    check_control_bytes(original, path)
    data = to_utf8(original, path, layout)
    if not data.strip():
        raise InputError(path, "fichier vide (aucun en-tête)", line=1)
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
    physical = df.height
    if layout.quote:
        df = _records(path, df, layout)
    df = df.with_columns(
        blank=pl.col("raw").str.strip_chars().str.len_bytes().fill_null(0) == 0,
        n=_field_counts(df, layout),
    )
    df = df.with_columns(ragged=(pl.col("n") != n_fields) & ~pl.col("blank"))
    records = df.height
    # Blank lines at the very end of a file are not rows (exports often add some); blank lines
    # between rows are reported as rejected rows.
    last = df.filter(~pl.col("blank"))["line"].max()
    df = df.filter(pl.col("line") <= (last if last is not None else 0))
    trailing_blank = records - df.height
    rows_read = df.height
    if rows_read == 0:
        raise InputError(path, "aucune ligne de données après l'en-tête : extrait vide", line=1)
    if not data.endswith(b"\n") and df["ragged"][-1] and df["n"][-1] < n_fields:
        raise InputError(
            path,
            f"dernière ligne incomplète ({df['n'][-1]} champs sur {n_fields}, sans fin de "
            "ligne) : le fichier semble tronqué ; refaire l'export ou le transfert",
            line=int(df["line"][-1]),
        )
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
    if fields.height != records:  # pragma: no cover - the record grouping mirrors the parser
        raise InputError(path, "structure CSV ambiguë (guillemets mal placés)")
    value_cols = []
    missing_optional = []
    for spec in layout.columns:
        j = index.get(spec.name)
        if j is None:
            missing_optional.append(spec.source)
            value_cols.append(pl.lit(None, dtype=pl.String).alias(spec.name))
        else:
            value_cols.append(pl.col(f"column_{j}").alias(spec.name))
    # Values are not trimmed here: convert.py trims them, once per distinct value where it can.
    # Ragged rows are kept (flagged) so that their dossier can be held back; they are rejected.
    frame = fields.head(rows_read).with_columns(line=df["line"], __ragged=df["ragged"])
    frame = frame.filter(~df["blank"]).select("line", "__ragged", *value_cols)
    _check_sizes(path, frame.filter(~pl.col("__ragged")), layout)
    used = set(index.values())
    ignored = tuple(h for i, h in enumerate(header) if i not in used)
    return RawTable(
        frame=frame, structural=structural, rows_read=rows_read, header=tuple(header),
        missing_optional=tuple(missing_optional), ignored_columns=ignored,
        trailing_blank_lines=trailing_blank, physical_lines=physical + 1,
    )


def _check_sizes(path: Path, frame: pl.DataFrame, layout: Layout) -> None:
    """Refuse the file if a field exceeds its declared maximum length (in characters)."""
    names = [c.name for c in layout.columns]
    longest = frame.select(pl.col(names).str.len_bytes().max()).row(0)
    for spec, size in zip(layout.columns, longest, strict=True):
        if size is None or size <= spec.max_length:
            continue  # bytes >= characters: nothing can be too long
        over = frame.filter(pl.col(spec.name).str.len_chars() > spec.max_length)
        if over.height:
            raise InputError(
                path,
                f"champ de {over[spec.name].str.len_chars()[0]} caractères, au-delà de la "
                f"limite de {spec.max_length} fixée par la disposition : fichier refusé",
                line=int(over["line"][0]), column=spec.source,
            )


def _header_index(path: Path, header: list[str], layout: Layout) -> dict[str, int]:
    """Canonical name -> field index; a missing required column is a file-level error."""
    lowered = [header_key(h) for h in header]
    seen: set[str] = set()
    for i, h in enumerate(lowered):
        if h in seen:
            raise InputError(path, "colonne présente deux fois dans l'en-tête", line=1,
                             column=header[i])
        seen.add(h)
    index: dict[str, int] = {}
    for spec in layout.columns:
        key = header_key(spec.source)
        if key in lowered:
            index[spec.name] = lowered.index(key)
        elif spec.required:
            hint = ""
            if len(header) == 1:
                hint = f" (séparateur « {layout.separator} » absent de l'en-tête ?)"
            raise InputError(path, f"colonne obligatoire absente de l'en-tête{hint}", line=1,
                             column=spec.source)
    return index
