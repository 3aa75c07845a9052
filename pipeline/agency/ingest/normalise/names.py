"""French name normalisation: one spelling per name, whatever the agency's data entry habits.

Rules (docs/CONTRACTS.md "Ingested"): Unicode NFKD with accents stripped, upper case ASCII,
apostrophes and hyphens (and any other non-letter) turned into spaces, spaces collapsed, civility
titles stripped, placeholder values ("X", "INCONNU", "SANS NOM"...) turned into null. Particles
(DE, DU, DES, DE LA, LE, LA, D') are kept as words, never dropped: dropping them would merge
distinct families. "DUPONT EPOUSE MARTIN" is split into a birth and a usage name.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import polars as pl
import yaml

_LEXICON_PATH = Path(__file__).with_name("lexicon.yaml")


@dataclass(frozen=True)
class Lexicon:
    transliterations: dict[str, str]
    titles: tuple[str, ...]
    usage_markers: tuple[str, ...]
    birth_markers: tuple[str, ...]
    placeholders: tuple[str, ...]

    @property
    def title_re(self) -> str:
        return r"^(?:(?:" + "|".join(self.titles) + r") )+(.+)$"

    @property
    def usage_re(self) -> str:
        return r"^(?P<a>.+?) (?:" + "|".join(self.usage_markers) + r") (?P<b>.+)$"

    @property
    def birth_re(self) -> str:
        return r"^(?P<b>.+?) (?:" + "|".join(self.birth_markers) + r") (?P<a>.+)$"

    @property
    def leading_marker_re(self) -> str:
        markers = self.usage_markers + self.birth_markers
        return r"^(?:" + "|".join(markers) + r") (.+)$"


@cache
def lexicon() -> Lexicon:
    """Load the word lists once."""
    data = yaml.safe_load(_LEXICON_PATH.read_text(encoding="utf-8"))
    return Lexicon(
        transliterations=dict(data["transliterations"]),
        titles=tuple(data["titles"]),
        usage_markers=tuple(data["usage_markers"]),
        birth_markers=tuple(data["birth_markers"]),
        placeholders=tuple(data["placeholders"]),
    )


_DOTTED_M = r"^\s*M\.\s*"  # "M. DUPONT": the only safe way to spot the bare "M" title
_NON_LETTERS = r"[^A-Z]+"
_ONLY_X = r"^X+$"


def clean_name(raw: pl.Expr) -> pl.Expr:
    """Normalise a name column: ASCII upper case, single spaces, titles and placeholders removed."""
    lx = lexicon()
    e = raw.str.replace(_DOTTED_M, "")
    e = e.str.replace_many(list(lx.transliterations), list(lx.transliterations.values()))
    e = e.str.normalize("NFKD").str.replace_all(r"\p{M}", "").str.to_uppercase()
    e = e.str.replace_all(_NON_LETTERS, " ").str.strip_chars(" ")
    e = e.str.replace(lx.title_re, "${1}")
    return pl.when(
        (e.str.len_bytes() > 0) & ~e.is_in(list(lx.placeholders)) & ~e.str.contains(_ONLY_X)
    ).then(e)


def split_birth_usage(clean: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Split a cleaned name into (birth name, usage name or null).

    "DUPONT EPOUSE MARTIN" / "DUPONT EP MARTIN" / "DUPONT VVE MARTIN" -> (DUPONT, MARTIN);
    "MARTIN NEE DUPONT" -> (DUPONT, MARTIN); a name without marker -> (name, null).
    """
    lx = lexicon()
    usage = clean.str.extract_groups(lx.usage_re)
    birth = clean.str.extract_groups(lx.birth_re)
    birth_name = pl.coalesce(usage.struct.field("a"), birth.struct.field("a"), clean)
    usage_name = pl.coalesce(usage.struct.field("b"), birth.struct.field("b"))
    return birth_name, usage_name


def strip_leading_marker(clean: pl.Expr) -> pl.Expr:
    """"EP MARTIN" in a usage-name field -> "MARTIN"."""
    return clean.str.replace(lexicon().leading_marker_re, "${1}")


def given_names(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(prenoms, prenom1) from a raw given-names field.

    The first given name is the part before the first comma when the field uses commas, else the
    first whitespace-separated word; a hyphenated name ("Jean-Pierre") stays one given name
    ("JEAN PIERRE"). `prenom1` is null whenever `prenoms` is (placeholders such as "NON RENSEIGNE").
    """
    prenoms = clean_name(raw)
    first_raw = (
        pl.when(raw.str.contains(","))
        .then(raw.str.extract(r"^\s*([^,]*)"))
        .otherwise(raw.str.extract(r"^\s*(\S*)"))
    )
    prenom1 = pl.when(prenoms.is_not_null()).then(
        pl.coalesce(clean_name(first_raw), prenoms.str.extract(r"^(\S+)"))
    )
    return prenoms, prenom1


# ---------------------------------------------------------------- scalar reference functions


def clean_name_scalar(raw: str | None) -> str | None:
    """Scalar twin of `clean_name`, for property tests."""
    if raw is None:
        return None
    lx = lexicon()
    s = re.sub(_DOTTED_M, "", raw)
    for k, v in lx.transliterations.items():
        s = s.replace(k, v)
    s = unicodedata.normalize("NFKD", s)
    s = "".join(ch for ch in s if not unicodedata.category(ch).startswith("M")).upper()
    s = re.sub(_NON_LETTERS, " ", s).strip(" ")
    s = re.sub(lx.title_re, r"\1", s)
    if not s or s in lx.placeholders or re.match(_ONLY_X, s):
        return None
    return s
