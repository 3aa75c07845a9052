"""Load and check the declarative linkage model (comparisons.yaml).

The model is data, not code: passes, blocking rules and comparison levels are SQL conditions over
the aliases `l` (CAF) and `r` (CPAM), so adding a token means editing the YAML only. This module
turns the YAML into small frozen dataclasses and refuses a malformed file with a readable error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pipeline.common import yaml_safe
from pipeline.common.errors import InputError

DEFAULT_CONFIG = Path(str(resources.files("pipeline.shared") / "comparisons.yaml"))
_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
# The role of the pass keyed on the identifier alone: its links give EM its starting m.
IDENTIFIER_ROLE = "identifiant"
_COLUMN_REF = re.compile(r"\b([lr])\.([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Pass:
    name: str
    label: str
    joins: tuple[str, ...]
    consistent: str
    tie_break: str | None
    short: str = ""
    role: str | None = None


@dataclass(frozen=True)
class BlockingRule:
    name: str
    on: str


@dataclass(frozen=True)
class Level:
    name: str
    label: str
    when: str
    tf: str | None


@dataclass(frozen=True)
class Comparison:
    name: str
    label: str
    null: str
    levels: tuple[Level, ...]  # most specific first; "else" is implicit

    @property
    def n_levels(self) -> int:
        """Number of agreement levels including the implicit `else` (level 0)."""
        return len(self.levels) + 1

    def level_index(self, position: int) -> int:
        """Gamma value of the level at `position` in the YAML list: highest = most specific."""
        return len(self.levels) - position

    def level_label(self, gamma: int) -> str:
        if gamma < 0:
            return "non comparable"
        if gamma == 0:
            return "différent"
        return self.levels[len(self.levels) - gamma].label

    def level_name(self, gamma: int) -> str:
        if gamma < 0:
            return "null"
        if gamma == 0:
            return "else"
        return self.levels[len(self.levels) - gamma].name


@dataclass(frozen=True)
class Config:
    path: Path
    required_columns: tuple[str, ...]
    passes: tuple[Pass, ...]
    blocking_rules: tuple[BlockingRule, ...]
    comparisons: tuple[Comparison, ...]
    u_sample_pairs: int
    seed: int
    em_max_iterations: int
    em_tolerance: float
    em_m_prior_pairs: float
    link_weight: float
    review_weight: float
    deterministic_recall: float
    probabilistic_pass: Pass
    # the residue stage (`residue:`): its pass, and its settings as read by
    # pipeline/central/match/residue.py
    residue_pass: Pass | None = None
    residue: dict[str, Any] | None = None

    def pass_names(self) -> list[str]:
        """Every value links.parquet's `pass` column may take, in funnel order."""
        extra = [self.residue_pass.name] if self.residue_pass else []
        return [p.name for p in self.passes] + [self.probabilistic_pass.name] + extra

    def role_pass(self, role: str) -> Pass | None:
        """The deterministic pass declared with `role` (None when no pass has it)."""
        return next((p for p in self.passes if p.role == role), None)

    def referenced_columns(self, alias: str) -> set[str]:
        """Every column a condition reads on side `alias` ('l' or 'r')."""
        texts: list[str] = []
        for p in self.passes:
            texts += [*p.joins, p.consistent, p.tie_break or ""]
        texts += [b.on for b in self.blocking_rules]
        for c in self.comparisons:
            texts.append(c.null)
            texts += [lv.when for lv in c.levels]
        cols = {m.group(2) for t in texts for m in _COLUMN_REF.finditer(t) if m.group(1) == alias}
        for c in self.comparisons:
            cols |= {lv.tf for lv in c.levels if lv.tf}
        return cols


def variant_conditions(family: str, against: str | None = None) -> list[str]:
    """Equality conditions under which a CAF record's `family` shares a value with a CPAM
    record's `against` family (default: the same), both `variants` token families of
    tokens.yaml (deletion neighbourhoods D_00..D_NN of a key O, one subkey): the same position
    (a substitution there), neighbouring positions (an adjacent transposition), or one side's
    deletion against the other's key (an insertion or a deletion). Each is an equi-join."""
    from pipeline.shared.token_catalogue import load_catalogue

    cat = load_catalogue()
    left, l_orig = cat.variant_family(family)
    right, r_orig = cat.variant_family(against or family)
    out = []
    for i, (lc, rc) in enumerate(zip(left, right, strict=False)):
        out += [f"l.{lc} = r.{rc}", f"l.{lc} = r.{r_orig}", f"l.{l_orig} = r.{rc}"]
        if i + 1 < min(len(left), len(right)):
            out += [f"l.{lc} = r.{right[i + 1]}", f"l.{left[i + 1]} = r.{rc}"]
    return out


def _variants(entry: Any, path: Path, where: str) -> list[str] | None:
    """The conditions of a `{variants: <family>[, against: <family>]}` entry (None for a plain
    entry)."""
    if not isinstance(entry, dict) or "variants" not in entry:
        return None
    try:
        return variant_conditions(str(entry["variants"]), entry.get("against"))
    except KeyError as exc:
        raise InputError(path, f"famille de variantes inconnue dans {where} : "
                         f"{exc.args[0]}", column="variants") from exc


def _need(d: dict[str, Any], key: str, path: Path, where: str) -> Any:
    if key not in d or d[key] is None or d[key] == "":
        raise InputError(path, f"clé « {key} » manquante dans {where}", column=key)
    return d[key]


def _name(value: Any, path: Path, where: str) -> str:
    if not isinstance(value, str) or not _IDENT.match(value):
        raise InputError(path, f"nom invalide dans {where} (attendu : minuscules, chiffres, _)")
    return value


_CONDITION_REF = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def _expander(raw: dict, path: Path) -> Any:
    """`{name}` -> the condition declared once under `conditions:`; an unknown name is refused."""
    conditions = raw.get("conditions") or {}
    if not isinstance(conditions, dict):
        raise InputError(path, "« conditions » doit être un dictionnaire nom -> SQL",
                         column="conditions")

    def expand(text: str | None, where: str) -> str | None:
        if text is None:
            return None

        def one(m: re.Match[str]) -> str:
            if m.group(1) not in conditions:
                raise InputError(path, f"{where} : condition inconnue « {m.group(1)} »",
                                 column="conditions")
            return f"({' '.join(str(conditions[m.group(1)]).split())})"

        return _CONDITION_REF.sub(one, str(text))

    return expand


def load_config(path: Path | None = None) -> Config:
    """Read comparisons.yaml (the packaged default when `path` is None) into a Config."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    try:
        raw = yaml_safe.load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(path, "fichier de configuration introuvable") from exc
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise InputError(path, "YAML illisible", line=None if line is None else line + 1) from exc
    if not isinstance(raw, dict):
        raise InputError(path, "la configuration doit être un dictionnaire YAML")

    expand = _expander(raw, path)
    passes = []
    for i, p in enumerate(_need(raw, "passes", path, "la racine")):
        where = f"passes[{i}]"
        joins = _need(p, "joins", path, where)
        if not isinstance(joins, list) or not joins:
            raise InputError(path, f"{where}.joins doit être une liste non vide", column="joins")
        passes.append(Pass(
            name=_name(_need(p, "name", path, where), path, where),
            label=str(p.get("label", p["name"])),
            joins=tuple(expand(c, where) for j in joins
                        for c in (_variants(j, path, where) or [str(j)])),
            consistent=expand(str(p.get("consistent", "TRUE")), where),
            tie_break=expand(p.get("tie_break"), where),
            short=str(p.get("short", p.get("label", p["name"]))),
            role=None if p.get("role") is None else str(p["role"]),
        ))
    roles = [p.role for p in passes if p.role]
    if len(roles) != len(set(roles)):
        raise InputError(path, "un rôle de passe est déclaré deux fois", column="role")

    prob = _need(raw, "probabilistic", path, "la racine")
    rules = [
        BlockingRule(_name(_need(b, "name", path, f"blocking_rules[{i}]"), path, "blocking_rules"),
                     str(_need(b, "condition", path, f"blocking_rules[{i}]")))
        for i, b in enumerate(_need(prob, "blocking_rules", path, "probabilistic"))
    ]
    comparisons = []
    for i, c in enumerate(_need(prob, "comparisons", path, "probabilistic")):
        where = f"comparisons[{i}]"
        levels = tuple(
            Level(
                name=_name(_need(lv, "name", path, f"{where}.levels[{j}]"), path, where),
                label=str(lv.get("label", lv["name"])),
                when=str(_need(lv, "when", path, f"{where}.levels[{j}]")),
                tf=lv.get("tf"),
            )
            for j, lv in enumerate(_need(c, "levels", path, where))
        )
        comparisons.append(Comparison(
            name=_name(_need(c, "name", path, where), path, where),
            label=str(c.get("label", c["name"])),
            null=str(c.get("null", "FALSE")),
            levels=levels,
        ))
    names = [c.name for c in comparisons]
    if len(set(names)) != len(names):
        raise InputError(path, "deux comparaisons portent le même nom")

    link_weight = float(prob.get("link_weight", 6.0))
    review_weight = float(prob.get("review_weight", 0.0))
    if review_weight > link_weight:
        raise InputError(path, "review_weight doit être inférieur ou égal à link_weight")
    em = prob.get("em", {}) or {}
    return Config(
        path=path,
        required_columns=tuple(raw.get("required_columns", ["handle"])),
        passes=tuple(passes),
        blocking_rules=tuple(rules),
        comparisons=tuple(comparisons),
        u_sample_pairs=int(prob.get("u_sample_pairs", 1_000_000)),
        seed=int(prob.get("seed", 0)),
        em_max_iterations=int(em.get("max_iterations", 200)),
        em_tolerance=float(em.get("tolerance", 1e-6)),
        em_m_prior_pairs=float(em.get("m_prior_pairs", 1000)),
        link_weight=link_weight,
        review_weight=review_weight,
        deterministic_recall=float(prob.get("deterministic_recall", 0.9)),
        probabilistic_pass=_probabilistic_pass(prob.get("pass"), path),
        residue_pass=(_probabilistic_pass((raw.get("residue") or {}).get("pass"), path)
                      if raw.get("residue") else None),
        residue=dict(raw["residue"]) if raw.get("residue") else None,
    )


def _probabilistic_pass(raw: Any, path: Path) -> Pass:
    """`probabilistic.pass`: the name and labels of the links Fellegi–Sunter makes."""
    if not isinstance(raw, dict) or "name" not in raw:
        raise InputError(path, "probabilistic.pass doit donner le nom (name) des liens "
                         "probabilistes", column="pass")
    name = _name(raw["name"], path, "probabilistic.pass")
    label = str(raw.get("label", name))
    return Pass(name=name, label=label, joins=(), consistent="TRUE", tie_break=None,
                short=str(raw.get("short", label)))
