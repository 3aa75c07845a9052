"""The territory configuration file (`territoire.toml`): the paths every command would repeat.

`nonrecours territoire init` writes it; `ingest`, `pseudonymise`, `residu`, `parts`, `match`,
`detecter` and `reidentify` accept `--config territoire.toml` and take from it every path option
not given on the command line (an explicit option always wins). Relative paths are relative to
the file's folder. Sections:

- `[territoire]`: `nom`, `convention`;
- `[caf]`, `[cpam]`: `extrait`, `dossier`, `cles`, and optionally `table_iris`, `disposition`,
  `export` (default `<dossier>/export`), `listes` (default `<dossier>/listes`), `cibles` (default
  `<detection.sortie_detection>/targets.parquet`), `liens` (the CAF's link list from the linking
  operator, default `<central.sortie>/separation/liens_caf.parquet`), `opposition` and `contacts`
  (used only if the file exists, as in `make match`);
- `[central]` (the linking operator): `recu_caf`, `recu_cpam`, `sortie`, `journal`,
  `cles_operateur` (its keys: it signs the masked sums);
- `[detection]` (the detecting operator): `recu_detection` (one folder per provider, `parts`,
  `separation`), `sortie_detection`, `journal_detection`.

On site each party keeps only its own section: a file with a single agency section also
supplies `--agency`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.common.errors import InputError
from pipeline.shared.providers import AGENCIES, PROVIDERS
from pipeline.shared.separation import HANDOFF_DIR, LINKS_FILE, SHARES_DIR

KEYS = {
    "territoire": ("nom", "convention"),
    "agence": ("extrait", "dossier", "cles", "table_iris", "disposition", "export", "listes",
               "cibles", "liens", "opposition", "contacts"),
    "central": (*(f"recu_{a}" for a in PROVIDERS), "sortie", "journal", "cles_operateur"),
    # the detecting operator (contract 6): its inbox (one folder per provider, `parts`,
    # `separation`), its results and its own audit log
    "detection": ("recu_detection", "sortie_detection", "journal_detection"),
}
OPTIONAL_FILES = frozenset({"opposition", "contacts"})
# command -> {option (parameter name) -> configuration key}
COMMAND_OPTIONS: dict[str, dict[str, str]] = {
    "ingest": {"input": "extrait", "out": "dossier", "layout": "disposition"},
    "pseudonymise": {"workdir": "dossier", "keys": "cles", "convention": "convention",
                     "export": "export", "territory": "table_iris", "opposition": "opposition"},
    "residu": {"workdir": "dossier", "keys": "cles", "convention": "convention"},
    "parts": {"workdir": "dossier", "keys": "cles", "convention": "convention",
              "liens": "liens"},
    "detecter": {"convention": "convention", "out": "sortie_detection",
                 "audit_log": "journal_detection"},
    "reidentify": {"targets": "cibles", "workdir": "dossier", "out": "listes",
                   "convention": "convention", "opposition": "opposition",
                   "contacts": "contacts", "territory": "table_iris"},
    "match": {"convention": "convention", "caf": "recu_caf", "cpam": "recu_cpam",
              "out": "sortie", "audit_log": "journal", "keys": "cles_operateur"},
}


@dataclass(frozen=True)
class TerritoryConfig:
    """A parsed `territoire.toml`; `path()` resolves one key for one agency."""

    file: Path
    data: dict[str, dict[str, Any]]

    @property
    def agencies(self) -> list[str]:
        return [a for a in PROVIDERS if a in self.data]

    def _raw(self, section: str, key: str) -> str | None:
        value = self.data.get(section, {}).get(key)
        return str(value) if value not in (None, "") else None

    def _resolve(self, value: str | None) -> Path | None:
        return None if value is None else (self.file.parent / value)

    def path(self, key: str, agency: str | None = None) -> Path | None:
        """The path of `key` (for `agency` when it is an agency key), or None if unset."""
        if key in KEYS["territoire"]:
            return self._resolve(self._raw("territoire", key))
        if key in KEYS["central"]:
            return self._resolve(self._raw("central", key))
        if key in KEYS["detection"]:
            return self._resolve(self._raw("detection", key))
        if agency is None and len(self.agencies) == 1:
            agency = self.agencies[0]
        if agency not in self.agencies:
            return None
        found = self._resolve(self._raw(str(agency), key))
        if found is None:
            found = self._derived(key, str(agency))
        if key in OPTIONAL_FILES and found is not None and not found.exists():
            return None
        return found

    def _derived(self, key: str, agency: str) -> Path | None:
        folder = self.path("dossier", agency)
        if key in ("export", "listes") and folder is not None:
            return folder / key
        if key == "cibles" and (found := self.path("sortie_detection")) is not None:
            return found / "targets.parquet"  # the detecting operator's targets
        if key == "liens" and (central := self.path("sortie")) is not None:
            return central / HANDOFF_DIR / LINKS_FILE.format(provider=agency)
        return None


def load_config(path: Path | str) -> TerritoryConfig:
    """Read and check a territory file; a syntax error or unknown key names the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "fichier de configuration du territoire introuvable "
                               "(créez-le avec « territoire init »)")
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"configuration TOML illisible ({exc})") from None
    for section, table in data.items():
        kind = "agence" if section in PROVIDERS else section
        if kind not in KEYS or not isinstance(table, dict):
            raise InputError(path, f"section [{section}] inconnue (attendu : territoire, "
                                   f"{', '.join(PROVIDERS)}, central)")
        unknown = sorted(set(table) - set(KEYS[kind]))
        if unknown:
            raise InputError(path, f"clé inconnue dans [{section}] : {', '.join(unknown)}")
    return TerritoryConfig(file=path.resolve(), data=data)


def _lazy(ctx: typer.Context, cfg: TerritoryConfig, key: str) -> Callable[[], str | None]:
    """A default resolved when click needs it, once `--agency` has been read."""

    def value() -> str | None:
        agency = ctx.params.get("agency")
        found = cfg.path(key, str(agency) if agency is not None else None)
        return str(found) if found is not None else None

    return value


def apply_config(ctx: typer.Context, value: Path | None) -> Path | None:
    """Eager `--config` callback: the file's paths become the command's option defaults."""
    if value is None:
        return None
    cfg = load_config(value)
    defaults: dict[str, Any] = {param: _lazy(ctx, cfg, key)
                                for param, key in COMMAND_OPTIONS.get(ctx.info_name or "",
                                                                      {}).items()}
    if len(cfg.agencies) == 1:
        defaults["agency"] = cfg.agencies[0]
    if ctx.info_name == "detecter" and (inbox := cfg.path("recu_detection")) is not None:
        defaults["detection"] = [f"{a}={inbox / a}" for a in cfg.agencies]
        defaults["separation"] = str(inbox / HANDOFF_DIR)
        defaults["parts"] = str(inbox / SHARES_DIR)
    if ctx.info_name == "match":  # providers without an option of their own (the MSA)
        defaults["fournisseur"] = [f"{a}={cfg.path(f'recu_{a}')}" for a in cfg.agencies
                                   if a not in AGENCIES and cfg.path(f"recu_{a}") is not None]
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", is_eager=True, callback=apply_config,
    help="territoire.toml : chemins par défaut (une option donnée explicitement l'emporte)")]
