"""Raw-extract layouts as data: load a YAML layout and check it against the ingest contract.

The defaults (layouts/caf.yaml, layouts/cpam.yaml) are the documented default exports; a
territory whose exports name their columns differently supplies its own file instead of patching
code.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.agency.ingest.household import HouseholdSpec, load_household
from pipeline.agency.ingest.normalise.dates import format_regex
from pipeline.agency.ingest.schema import CANONICAL_VALUES, EXPECTED_TYPES, UNKNOWN_CODES
from pipeline.common.errors import InputError
from pipeline.shared.providers import PROVIDERS, modele

LAYOUT_DIR = Path(__file__).with_name("layouts")
# Defaults when a layout does not declare them (README "File-level refusals").
MAX_FIELD_LENGTH = 500  # characters per field
MAX_RECORD_LINES = 10  # physical lines one quoted record may span
TYPES = ("code", "enum", "nir", "name", "given_names", "date", "phone", "text", "bool",
         "decimal", "int", "list")


@dataclass(frozen=True)
class ColumnSpec:
    """One canonical column and how to read it from the raw file."""

    name: str
    source: str
    type: str
    required: bool = True
    mandatory: bool = False
    allowed: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    pattern: str | None = None
    true_values: tuple[str, ...] = ("O",)
    false_values: tuple[str, ...] = ("N",)
    max_length: int = MAX_FIELD_LENGTH  # characters; a longer field refuses the file
    unknown_value: str | None = None  # enum: unreadable value kept as this code (with a warning)


@dataclass(frozen=True)
class Layout:
    """File format and column mapping of one raw extract."""

    agency: str
    path: Path
    encoding: str
    separator: str
    quote: str | None
    date_format: str
    decimal: str
    list_separator: str
    columns: tuple[ColumnSpec, ...]
    max_record_lines: int = MAX_RECORD_LINES
    household: HouseholdSpec | None = None

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


def header_key(name: str) -> str:
    """Header name as compared with the layout: case, accents, spaces and hyphens ignored
    ("Prénoms", "PRENOMS", "date naissance" and "date-naissance" all match)."""
    plain = unicodedata.normalize("NFKD", name.lstrip("\ufeff").strip())
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch)).lower()
    return re.sub(r"[\s\-]+", "_", plain)


def default_layout_path(agency: str) -> Path:
    return LAYOUT_DIR / PROVIDERS[agency].disposition


def _bad(path: Path, reason: str, column: str | None = None) -> InputError:
    return InputError(path, f"disposition (layout) invalide : {reason}", column=column)


def load_layout(agency: str, path: Path | None = None) -> Layout:
    """Load and check a layout; any inconsistency is an InputError naming the layout key."""
    if agency not in PROVIDERS:
        raise InputError(path or "layout", f"agence inconnue « {agency} » (attendu : "
                         f"{', '.join(PROVIDERS)})")
    path = Path(path) if path is not None else default_layout_path(agency)
    if not path.is_file():
        raise InputError(path, "fichier de disposition (layout) introuvable")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _bad(path, f"YAML illisible ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise _bad(path, "un dictionnaire YAML est attendu")
    if data.get("agency") != agency:
        raise _bad(path, f"ce fichier décrit l'agence « {data.get('agency')} », pas « {agency} »")
    encoding = str(data.get("encoding", "utf-8"))
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise _bad(path, f"encodage inconnu « {encoding} »") from None
    separator = str(data.get("separator", ";"))
    if len(separator) != 1:
        raise _bad(path, "le séparateur doit être un seul caractère")
    quote = data.get("quote", '"')
    date_format = str(data.get("date_format", "%Y-%m-%d"))
    try:
        format_regex(date_format)
    except ValueError as exc:
        raise _bad(path, str(exc)) from None
    decimal = str(data.get("decimal", ","))
    if decimal not in (",", "."):
        raise _bad(path, "decimal doit valoir « , » ou « . »")

    raw_columns = data.get("columns")
    if not isinstance(raw_columns, dict):
        raise _bad(path, "la clé « columns » doit lister les colonnes")
    expected = EXPECTED_TYPES[modele(agency)]
    missing = sorted(set(expected) - set(raw_columns))
    if missing:
        raise _bad(path, f"colonne canonique non déclarée : {', '.join(missing)}")
    unknown = sorted(set(raw_columns) - set(expected))
    if unknown:
        raise _bad(path, f"colonne canonique inconnue : {', '.join(unknown)}")
    max_length = _positive(path, data, "max_field_length", MAX_FIELD_LENGTH)
    columns = [_column(path, name, spec, expected[name], max_length)
               for name, spec in raw_columns.items()]
    sources = [header_key(c.source) for c in columns]
    dupes = sorted({s for s in sources if sources.count(s) > 1})
    if dupes:
        raise _bad(path, f"colonne source utilisée deux fois : {', '.join(dupes)}")
    return Layout(
        agency=agency, path=path, encoding=encoding, separator=separator,
        quote=str(quote) if quote else None, date_format=date_format, decimal=decimal,
        list_separator=str(data.get("list_separator", ",")), columns=tuple(columns),
        max_record_lines=_positive(path, data, "max_record_lines", MAX_RECORD_LINES),
        household=load_household(path, data.get("dossier"), [c.name for c in columns]),
    )


def _unknown_value(path: Path, name: str, spec: dict) -> str | None:
    """`keep_unreadable: true` keeps an unreadable code as the contract's unknown code."""
    if not spec.get("keep_unreadable"):
        return None
    if name not in UNKNOWN_CODES:
        raise _bad(path, "keep_unreadable n'est prévu que pour : " + ", ".join(UNKNOWN_CODES),
                   name)
    return UNKNOWN_CODES[name]


def _positive(path: Path, data: dict, key: str, default: int) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _bad(path, f"« {key} » doit être un entier positif")
    return value


def _column(path: Path, name: str, spec: object, expected_type: str,
            max_length: int) -> ColumnSpec:
    if not isinstance(spec, dict) or "source" not in spec:
        raise _bad(path, "chaque colonne doit avoir une clé « source »", name)
    ctype = spec.get("type", expected_type)
    if ctype != expected_type:
        raise _bad(path, f"type « {ctype} » au lieu de « {expected_type} »", name)
    allowed = tuple(str(v).upper() for v in spec.get("allowed", ()))
    aliases = {str(k).upper(): str(v).upper() for k, v in (spec.get("aliases") or {}).items()}
    canonical = CANONICAL_VALUES.get(name)
    if canonical is not None:
        if not allowed:
            allowed = tuple(sorted(canonical))
        extra = sorted((set(allowed) | set(aliases.values())) - canonical)
        if extra:
            raise _bad(path, f"valeurs hors contrat : {', '.join(extra)}", name)
    pattern = spec.get("pattern")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error:
            raise _bad(path, "expression régulière invalide", name) from None
    return ColumnSpec(
        name=name,
        source=str(spec["source"]),
        type=ctype,
        required=bool(spec.get("required", True)),
        mandatory=bool(spec.get("mandatory", False)),
        allowed=allowed,
        aliases=aliases,
        pattern=pattern,
        true_values=tuple(str(v).upper() for v in spec.get("true_values", ("O",))),
        false_values=tuple(str(v).upper() for v in spec.get("false_values", ("N",))),
        max_length=_positive(path, spec, "max_length", max_length),
        unknown_value=_unknown_value(path, name, spec),
    )
