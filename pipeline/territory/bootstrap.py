"""`territoire init`: a new territory's keys, convention and configuration in one step.

For a rehearsal (or a pilot where one team prepares everything) init generates every party's
key pairs under `<dossier>/cles/<partie>`; in production each party generates its own on its
premises (`keys generate`) and passes the folder with `--cles partie=dossier` (only its public
keys are needed, except for the CAF, which runs the linkage-key ceremony). Then:

1. the linkage key K is created by the CAF and wrapped for the CAF and the CPAM (never for the
   operator); each provider whose private key is at hand gets it unwrapped;
2. the convention is written unsigned, its field lists read from the catalogues (tokens,
   export attributes, contact fields, detection rules) and K's fingerprint recorded in it;
3. `territoire.toml` records every path, so the later commands only need `--config`.

Demo keys are refused: a real convention never runs on published keys.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.common.errors import PipelineError, RefusalError
from pipeline.common.files import private_dir, write_text
from pipeline.shared.providers import AGENCIES, benefits_provider, modele, ordered
from pipeline.territory.config import KEYS, load_config
from pipeline.trust.convention import LINKER_PARTY, OTHER_PARTIES

MODEL = Path(__file__).with_name("convention_modele.yaml")
CONFIG_NAME = "territoire.toml"
DEFAULT_PATHS = {
    "caf": {"extrait": "brut/caf_extract.csv", "dossier": "caf", "cles": "cles/caf",
            "table_iris": "territoire/iris_quartiers.csv", "opposition": "caf/opposition.csv",
            "contacts": "caf/contacts.csv"},
    "cpam": {"extrait": "brut/cpam_extract.csv", "dossier": "cpam", "cles": "cles/cpam",
             "opposition": "cpam/opposition.csv", "contacts": "cpam/contacts.csv"},
    "central": {"recu_caf": "transfert/caf", "recu_cpam": "transfert/cpam",
                "sortie": "central", "journal": "central-audit.jsonl",
                "cles_operateur": "cles/operateur"},
    "detection": {"recu_detection": "transfert/detection", "sortie_detection": "detection",
                  "journal_detection": "detection-audit.jsonl"},
}


def default_paths(providers: list[str]) -> dict[str, dict[str, str]]:
    """DEFAULT_PATHS, plus the same layout for any other provider (the MSA)."""
    paths = {section: dict(values) for section, values in DEFAULT_PATHS.items()}
    for a in providers:
        paths.setdefault(a, {"extrait": f"brut/{a}_extract.csv", "dossier": a, "cles": f"cles/{a}",
                             "opposition": f"{a}/opposition.csv", "contacts": f"{a}/contacts.csv"})
        paths["central"].setdefault(f"recu_{a}", f"transfert/{a}")
    return paths


@dataclass(frozen=True)
class InitResult:
    config: Path
    convention: Path
    keys: dict[str, Path]
    fingerprint: str
    wrapped: dict[str, Path]
    unwrapped: list[str]


def slug(name: str) -> str:
    """A convention id from a territory name (ASCII, lower case, dashes)."""
    import unicodedata

    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "tznr-" + (re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or "territoire")


def export_fields(agency: str, benefits: bool) -> list[str]:
    """Every column the export of `agency` carries for the linking operator (contract 6):
    structure, the CAF's adult flag, tokens, then the masked columns."""
    from pipeline.shared import separation
    from pipeline.shared.attributes import STRUCTURE
    from pipeline.shared.token_catalogue import load_catalogue

    return [*STRUCTURE, *(separation.LINKER_ATTRIBUTES if benefits else ()),
            *load_catalogue().names(modele(agency)), *separation.linker_fields(benefits)]


def convention_spec(name: str, convention_id: str, valid_from: dt.date, valid_until: dt.date,
                    fingerprint: str, *, departement: str | None = None,
                    retention_days: int | None = None,
                    providers: list[str] | None = None) -> dict[str, Any]:
    """The unsigned content: the model's wording, lists read from the catalogues; `providers`
    (default: the CAF and the CPAM) are the data providers, each sending the columns of its
    data contract (pipeline/shared/providers.yaml `modele`)."""
    from pipeline.agency.pseudonymise.core import CONTACT_FIELDS
    from pipeline.central.detect.predicates import load_checked_rules as load_rules
    from pipeline.shared import separation
    from pipeline.shared.bloom import RESIDUE_FIELDS

    model = yaml.safe_load(MODEL.read_text("utf-8"))
    providers = ordered(providers or AGENCIES)
    benefits = benefits_provider(providers)
    fill = {"territoire": name}
    territory = {"name": name, **({"departement": departement} if departement else {})}
    return {
        "id": convention_id, "demo": False,
        "title": model["title"].format(**fill),
        "purpose": model["purpose"].format(**fill),
        "legal_basis": list(model["legal_basis"]),
        "territory": territory,
        "parties": {pid: {"name": p["name"].format(**fill), "roles": list(p["roles"])}
                    for pid, p in model["parties"].items()
                    if pid in providers or pid in OTHER_PARTIES},
        "fields": {a: export_fields(a, a == benefits) for a in providers},
        "contact_fields": {a: list(CONTACT_FIELDS[modele(a)]) for a in providers},
        "residue_fields": {a: list(RESIDUE_FIELDS) for a in providers},
        **separation.convention_sections(providers, benefits),
        "rules": [rule.id for rule in load_rules()],
        "retention_days": int(retention_days or model["retention_days"]),
        "valid_from": valid_from,
        "valid_until": valid_until,
        "linkage_key_fingerprint": fingerprint,
    }


def _refuse_demo_keys(keys_dir: Path) -> None:
    for key_file in sorted((keys_dir / "private").glob("*.key.json")):
        if json.loads(key_file.read_text("utf-8")).get("demo") is True:
            raise RefusalError(f"{key_file} : clé de DÉMONSTRATION refusée pour une convention "
                               "réelle ; générez de vraies clés (« keys generate »)")


def _party_keys(root: Path, given: dict[str, Path], parties: tuple[str, ...]) -> dict[str, Path]:
    from pipeline.trust.keys import generate_agency_keys

    unknown = sorted(set(given) - set(parties))
    if unknown:
        raise PipelineError(f"--cles : partie inconnue {', '.join(unknown)} "
                            f"(parties : {', '.join(parties)})")
    keys: dict[str, Path] = {}
    for party in parties:
        if party in given:
            keys[party] = Path(given[party])
        else:
            keys[party] = root / "cles" / party
            generate_agency_keys(party, keys[party])
        _refuse_demo_keys(keys[party])
    return keys


def _toml_text(name: str, convention: str, paths: dict[str, dict[str, str]]) -> str:
    def line(key: str, value: str) -> str:
        return f"{key} = {json.dumps(value, ensure_ascii=False)}"

    out = [f"# Territoire « {name} » : chemins utilisés par « --config » (écrit par",
           "# « nonrecours territoire init »). Chemins relatifs au dossier de ce fichier.",
           "# Sur site, chaque organisme ne garde que [territoire] et sa section ;",
           "# opposition et contacts ne sont lus que si le fichier existe.",
           "", "[territoire]", line("nom", name), line("convention", convention)]
    for section in paths:
        out += ["", f"[{section}]", *(line(k, v) for k, v in paths[section].items())]
    return "\n".join(out) + "\n"


def _paths(root: Path, keys: dict[str, Path], overrides: dict[str, str],
           providers: list[str]) -> dict[str, dict]:
    every = default_paths(providers)
    paths = {s: every[s] for s in (*providers, "central", "detection")}
    paths["central"] = {k: v for k, v in paths["central"].items()
                        if not k.startswith("recu_") or k[len("recu_"):] in providers}
    for agency in providers:
        paths[agency]["cles"] = _relative(keys[agency], root)
    if LINKER_PARTY in keys:  # the linking operator signs its masked sums
        paths["central"]["cles_operateur"] = _relative(keys[LINKER_PARTY], root)
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        kind = "agence" if section in providers else section
        if kind not in ("agence", "central", "detection") or key not in KEYS[kind]:
            raise PipelineError(f"--chemin : clé inconnue « {dotted} » (ex. caf.extrait, "
                                "cpam.contacts, central.sortie)")
        paths[section][key] = _relative(Path(value), root)
    return paths


def _relative(path: Path, root: Path) -> str:
    path = Path(path).resolve()
    try:
        return str(path.relative_to(root.resolve()))
    except ValueError:
        return str(path)


def init_territory(
    root: Path, name: str, *, convention_id: str | None = None, departement: str | None = None,
    valid_from: dt.date | None = None, valid_until: dt.date | None = None,
    retention_days: int | None = None, party_keys: dict[str, Path] | None = None,
    paths: dict[str, str] | None = None, providers: list[str] | None = None,
) -> InitResult:
    """Create keys (where not given), the linkage key, the unsigned convention and the config.

    `providers`: the data providers (default: the CAF and the CPAM; add the MSA to cross it).
    The benefits-side provider (the CAF) creates the linkage key and wraps it for the others."""
    from pipeline.trust.convention import create_convention
    from pipeline.trust.keys import check_convention_id, create_linkage_key, unwrap_linkage_key

    root = Path(root)
    config = root / CONFIG_NAME
    if config.exists():
        raise PipelineError(f"{config} : ce territoire est déjà initialisé ; refus de remplacer "
                            "ses clés et sa convention")
    if not name.strip():
        raise PipelineError("--nom : le nom du territoire est vide")
    convention_id = check_convention_id(convention_id or slug(name))
    valid_from = valid_from or dt.date.today()
    valid_until = valid_until or valid_from + dt.timedelta(days=730)
    if valid_until <= valid_from:
        raise PipelineError("la fin de validité doit suivre le début")
    private_dir(root)
    private_dir(root / "cles")
    providers = ordered(providers or AGENCIES)
    creator = benefits_provider(providers)
    keys = _party_keys(root, party_keys or {}, (*providers, *OTHER_PARTIES))
    envoi = root / "cles" / "envoi"
    fingerprint = create_linkage_key(convention_id, keys[creator],
                                     {a: keys[a] for a in providers}, envoi)
    wrapped = {a: envoi / f"{convention_id}.{a}.wrapped.json" for a in providers}
    unwrapped = []
    for agency in providers:
        if (keys[agency] / "private" / f"{agency}.x25519.key.json").exists():
            unwrap_linkage_key(wrapped[agency], keys[agency])
            unwrapped.append(agency)
    convention = root / "conventions" / f"{convention_id}.yaml"
    spec = convention_spec(name, convention_id, valid_from, valid_until, fingerprint,
                           departement=departement, retention_days=retention_days,
                           providers=providers)
    create_convention(spec, keys, convention)
    for folder in ("brut", "territoire"):
        (root / folder).mkdir(exist_ok=True)
    write_text(config, _toml_text(name, _relative(convention, root),
                                  _paths(root, keys, paths or {}, providers)))
    load_config(config)  # what was written must read back
    return InitResult(config, convention, keys, fingerprint, wrapped, unwrapped)
