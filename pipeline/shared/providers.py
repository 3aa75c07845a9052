"""The data providers whose exports a convention crosses, declared once as data (providers.yaml).

Agency code (ingest, pseudonymise, reidentify), central code (match, detect, central), the trust
layer, the territory set-up and the benches read the profiles here instead of branching on a
provider's name: a third provider (the MSA) is a profile, a layout and a convention entry, not a
branch in every module.

Two lists come out of the profiles, and they are not the same thing:
- `PROVIDERS`: every provider a convention may name (caf, cpam, msa), in reading order;
- `AGENCIES`: the data contracts those providers follow (`modele`: caf and cpam). Features,
  token families, validation suites, rules and the ingested schema are written per contract,
  so code keyed by contract reads `modele(agency)` and an MSA file goes through the CPAM code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.common.errors import PipelineError

PROFILES = Path(__file__).with_name("providers.yaml")
BENEFITS = "prestations"  # the CAF side: left-hand table of the link, households and benefits
COVERAGE = "couverture"  # health-insurance side: right-hand table = union of its providers
SIDES = (BENEFITS, COVERAGE)


@dataclass(frozen=True)
class Provider:
    """One provider's profile (providers.yaml)."""

    id: str
    sigle: str
    libelle: str
    cote: str
    modele: str
    disposition: str
    reidentifie: tuple[str, ...]


def _load(path: Path = PROFILES) -> dict[str, Provider]:
    """Read and check the profiles; a typo fails at import, naming the provider and the key."""
    data = yaml.safe_load(path.read_text("utf-8")) or {}
    out: dict[str, Provider] = {}
    for pid, p in (data.get("fournisseurs") or {}).items():
        keys = ("sigle", "libelle", "cote", "modele", "disposition", "reidentifie")
        missing = [k for k in keys if k not in (p or {})]
        if missing:
            raise PipelineError(f"{path} : fournisseur « {pid} » sans {', '.join(missing)}")
        if p["cote"] not in SIDES:
            raise PipelineError(f"{path} : fournisseur « {pid} », côté « {p['cote']} » inconnu "
                                f"(attendu : {' ou '.join(SIDES)})")
        out[pid] = Provider(pid, str(p["sigle"]), str(p["libelle"]), p["cote"], str(p["modele"]),
                            str(p["disposition"]), tuple(p["reidentifie"]))
    unknown = sorted({p.modele for p in out.values()} - set(out))
    if unknown:  # a contract is named after the provider that defines it
        raise PipelineError(f"{path} : modèle(s) sans fournisseur de référence : {unknown}")
    for side in SIDES:
        if not any(p.cote == side for p in out.values()):
            raise PipelineError(f"{path} : aucun fournisseur du côté « {side} »")
    return out


PROVIDERS: dict[str, Provider] = _load()
AGENCIES: tuple[str, ...] = tuple(dict.fromkeys(p.modele for p in PROVIDERS.values()))


def provider(agency: str) -> Provider:
    """The profile of `agency`; a French error naming the known providers otherwise."""
    try:
        return PROVIDERS[agency]
    except KeyError:
        raise PipelineError(f"organisme inconnu : « {agency} » (connus : "
                            f"{', '.join(PROVIDERS)})") from None


def modele(agency: str) -> str:
    """The data contract `agency` follows (an MSA file goes through the CPAM code)."""
    return provider(agency).modele


def is_benefits(agency: str) -> bool:
    """True for the benefits side (the CAF): households, benefits, quartiers."""
    return provider(agency).cote == BENEFITS


def sigle(agency: str) -> str:
    return provider(agency).sigle


def ordered(agencies: Iterable[str]) -> list[str]:
    """`agencies` (each checked) in the profiles' reading order, once each."""
    wanted = {provider(a).id for a in agencies}
    return [a for a in PROVIDERS if a in wanted]


def on_side(agencies: Iterable[str], side: str) -> list[str]:
    """The providers of `agencies` standing on `side`, in reading order."""
    return [a for a in ordered(agencies) if PROVIDERS[a].cote == side]


def benefits_provider(agencies: Iterable[str]) -> str:
    """The one benefits-side provider of a run (the link has exactly one left-hand table)."""
    found = on_side(agencies, BENEFITS)
    if len(found) != 1:
        raise PipelineError(f"il faut exactement un fournisseur côté « {BENEFITS} » "
                            f"(trouvés : {', '.join(found) or 'aucun'})")
    return found[0]


def dataset_providers(dataset: Path) -> list[str]:
    """The providers whose raw extract a dataset folder holds (raw/<provider>_extract.csv), in
    reading order: what the chain runs and the demo convention lists."""
    return [a for a in PROVIDERS if (Path(dataset) / "raw" / f"{a}_extract.csv").is_file()]


def holders(agencies: Iterable[str], kind: str) -> list[str]:
    """The providers of `agencies` that can re-identify targets of `kind` (a detection view)."""
    return [a for a in ordered(agencies) if kind in PROVIDERS[a].reidentifie]
