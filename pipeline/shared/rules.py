"""Load the rule catalogue (rules.yaml) and compile each rule into SQL.

Rules are data: a predicate and a French reason template per rule. This module validates them
(known view, known columns in templates, integer parameters) so that a typo in the catalogue
fails loudly before any data is read, and compiles the reason template into a SQL expression so
reasons are built in columns by DuckDB, never row by row in Python.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pipeline.common.errors import InputError
from pipeline.shared.features import load_catalogue
from pipeline.shared.providers import AGENCIES

VIEWS = {"foyers", "assures_cpam"}
PERIMETERS = {
    "trouves_cpam": ("foyers", "trouve_cpam"),
    "non_trouves_cpam": ("foyers", "NOT trouve_cpam"),
    "assures": ("assures_cpam", "TRUE"),
}
LISTS = {"cible", "a_verifier"}
FORMATS = {"eur", "date", "personnes", "int", "texte"}
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)(?:\|([a-z]+))?\}")

# SQL macros used by compiled reason templates (French number and date formatting).
# Thousands separator: U+202F (narrow no-break space); before the euro sign: U+00A0.
SQL_MACROS = """
CREATE OR REPLACE TEMP MACRO fr_int(x) AS
    replace(format('{:,}', CAST(round(x) AS BIGINT)), ',', '\u202f');
CREATE OR REPLACE TEMP MACRO fr_eur(x) AS
    CASE WHEN x IS NULL THEN 'non connues'
         WHEN round(x, 2) = round(x) THEN fr_int(x) || '\u00a0€'
         ELSE replace(format('{:,}', CAST(trunc(round(x, 2)) AS BIGINT)), ',', '\u202f')
              || ',' || lpad(CAST(CAST(round((round(x, 2) - trunc(round(x, 2))) * 100) AS BIGINT)
                                   AS VARCHAR), 2, '0') || '\u00a0€' END;
CREATE OR REPLACE TEMP MACRO fr_date(d) AS coalesce(strftime(d, '%d/%m/%Y'), 'date inconnue');
CREATE OR REPLACE TEMP MACRO fr_personnes(n) AS
    CAST(n AS VARCHAR) || CASE WHEN n > 1 THEN ' personnes' ELSE ' personne' END;
"""

_FORMAT_SQL = {
    "eur": "fr_eur({})",
    "date": "fr_date({})",
    "personnes": "fr_personnes({})",
    "int": "coalesce(fr_int({}), '?')",
    "texte": "coalesce(CAST({} AS VARCHAR), '?')",
}


@dataclass(frozen=True)
class Rule:
    """One catalogue entry, validated."""

    id: str
    titre: str
    source: str
    du: dt.date
    au: dt.date | None
    vue: str
    perimetre: str
    liste: str
    agence: str
    priorite: int
    predicat: str
    motif: str
    action: str
    parametres: dict[str, int] = field(default_factory=dict)
    # French sentences naming the simplifications that can affect the rule (AGREEMENTS contract 3:
    # list legends and reports read them from here)
    limites: tuple[str, ...] = ()
    # the features of pipeline/shared/features.yaml the predicate reads (computed at source)
    features: tuple[str, ...] = ()

    def applies_on(self, reference_date: dt.date) -> bool:
        return self.du <= reference_date and (self.au is None or reference_date <= self.au)

    def predicate_sql(self, overrides: dict[str, int] | None = None) -> str:
        """The predicate with its integer parameters substituted (overrides win)."""
        params = {**self.parametres, **(overrides or {})}
        try:
            return self.predicat.format(**{k: int(v) for k, v in params.items()})
        except (KeyError, IndexError, ValueError) as exc:
            raise InputError(
                default_rules_path(), f"règle {self.id} : paramètre manquant {exc}"
            ) from exc

    def gate_sql(self) -> str:
        return PERIMETERS[self.perimetre][1]

    def motif_sql(self, columns: set[str]) -> str:
        return compile_template(self.motif, columns, where=f"règle {self.id}")


def default_rules_path() -> Path:
    return Path(str(resources.files("pipeline.shared") / "rules.yaml"))


def compile_template(template: str, columns: set[str], *, where: str = "modèle") -> str:
    """Turn 'ressources {ressources_css|eur}' into a SQL string expression over `columns`."""
    parts: list[str] = []
    pos = 0
    text = " ".join(template.split())
    for m in _PLACEHOLDER.finditer(text):
        if m.start() > pos:
            parts.append(_sql_literal(text[pos : m.start()]))
        name, fmt = m.group(1), m.group(2) or "texte"
        if name not in columns:
            raise InputError(
                default_rules_path(), f"{where} : colonne inconnue « {name} » dans le motif"
            )
        if fmt not in FORMATS:
            raise InputError(
                default_rules_path(), f"{where} : format inconnu « {fmt} » dans le motif"
            )
        parts.append(_FORMAT_SQL[fmt].format(name))
        pos = m.end()
    if pos < len(text):
        parts.append(_sql_literal(text[pos:]))
    if any(c in _PLACEHOLDER.sub("", text) for c in "{}"):
        raise InputError(default_rules_path(), f"{where} : accolade invalide dans le motif")
    return "(" + " || ".join(parts or ["''"]) + ")"


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _date(value: Any, rule_id: str, key: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise InputError(
            default_rules_path(), f"règle {rule_id} : date « {key} » invalide"
        ) from exc


def load_rules(path: Path | None = None) -> list[Rule]:
    """Read and validate the catalogue; any structural problem names the rule and the key."""
    path = path or default_rules_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(path, f"catalogue de règles illisible ({type(exc).__name__})") from exc
    entries = (data or {}).get("regles")
    if not isinstance(entries, list) or not entries:
        raise InputError(path, "liste « regles » absente ou vide")
    rules: list[Rule] = []
    seen: set[str] = set()
    required = (
        "id",
        "titre",
        "source",
        "effet",
        "vue",
        "perimetre",
        "liste",
        "agence",
        "priorite",
        "predicat",
        "motif",
        "action",
    )
    for i, e in enumerate(entries, start=1):
        missing = [k for k in required if k not in e]
        if missing:
            raise InputError(path, f"règle n° {i} : clés manquantes {missing}")
        rid = str(e["id"])
        if rid in seen:
            raise InputError(path, f"règle {rid} en double")
        seen.add(rid)
        if e["vue"] not in VIEWS or e["perimetre"] not in PERIMETERS:
            raise InputError(path, f"règle {rid} : vue ou périmètre inconnu")
        if PERIMETERS[e["perimetre"]][0] != e["vue"]:
            raise InputError(path, f"règle {rid} : périmètre incompatible avec la vue")
        if e["liste"] not in LISTS or e["agence"] not in AGENCIES:
            raise InputError(path, f"règle {rid} : liste ou agence inconnue")
        params = e.get("parametres") or {}
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in params.values()):
            raise InputError(path, f"règle {rid} : les paramètres doivent être des entiers")
        features = e.get("features")
        if not isinstance(features, list) or not features:
            raise InputError(path, f"règle {rid} : liste « features » absente ou vide")
        unknown = sorted(set(features) - set(load_catalogue().features))
        if unknown:
            raise InputError(path, f"règle {rid} : variable(s) inconnue(s) {unknown}")
        limites = e.get("limites") or []
        if not isinstance(limites, list) or not all(
            isinstance(x, str) and x.strip() for x in limites
        ):
            raise InputError(path, f"règle {rid} : « limites » doit être une liste de phrases")
        rules.append(
            Rule(
                id=rid,
                titre=str(e["titre"]),
                source=str(e["source"]),
                du=_date(e["effet"].get("du"), rid, "du") or dt.date.min,
                au=_date(e["effet"].get("au"), rid, "au"),
                vue=e["vue"],
                perimetre=e["perimetre"],
                liste=e["liste"],
                agence=e["agence"],
                priorite=int(e["priorite"]),
                predicat=" ".join(str(e["predicat"]).split()),
                motif=str(e["motif"]),
                action=str(e["action"]),
                parametres=dict(params),
                limites=tuple(" ".join(x.split()) for x in limites),
                features=tuple(str(f) for f in features),
            )
        )
    return rules


def required_features(path: Path | None = None) -> list[str]:
    """Every feature some rule needs, plus `features_communes`: what the convention allows.

    Refuses a catalogue computing a feature no rule reads (it would leave for nothing)."""
    path = path or default_rules_path()
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    common = list(data.get("features_communes") or [])
    needed = set(common).union(*(r.features for r in load_rules(path)))
    catalogue = load_catalogue().features
    unknown = sorted(set(common) - set(catalogue))
    if unknown:
        raise InputError(path, f"features_communes : variable(s) inconnue(s) {unknown}")
    unused = sorted(set(catalogue) - needed)
    if unused:
        raise InputError(path, f"variable(s) calculée(s) mais lue(s) par aucune règle : {unused}")
    return [f for f in catalogue if f in needed]
