"""Demo trust material: DEMO ONLY keys, the demo linkage key and the signed demo convention.

Everything is derived from a published seed, so `python -m pipeline.trust.demo` regenerates
sample_data/keys/ and conventions/demo-flers.yaml byte for byte; it also recomputes the
convention's `fichiers_reference` (pipeline.trust.reference) and re-signs it, which is the one
command to run after a rule catalogue, token catalogue, comparison or parameter file changed.
These keys protect nothing (the seed is in this file): they only let `make match` run end to end
on synthetic people. Real conventions refuse them (load_linkage_key, demo flag).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from pipeline.common.errors import PipelineError, RefusalError
from pipeline.common.files import private_dir, write_private, write_text
from pipeline.shared.providers import (
    PROVIDERS,
    benefits_provider,
    dataset_providers,
    is_benefits,
    modele,
)
from pipeline.trust.convention import OTHER_PARTIES, create_convention, sign_convention
from pipeline.trust.keys import (
    PRIVATE_FORMAT,
    create_linkage_key,
    generate_agency_keys,
    unwrap_linkage_key,
)

REPO = Path(__file__).resolve().parents[2]
DEMO_SEED = b"nonrecours/demo-seed/v1 - DEMO ONLY, published in the repository"
DEMO_CONVENTION_ID = "demo-flers"
PARTIES = (*PROVIDERS, *OTHER_PARTIES)  # every party that has published demo keys
SAMPLE = REPO / "sample_data"
SPEC = Path(__file__).with_name("demo_convention.yaml")
TOKENS = REPO / "pipeline" / "shared" / "tokens.yaml"

README = """# DEMO ONLY — clés de démonstration

Ces clés sont **publiques** (elles sont dans le dépôt et dérivées d'une graine publiée dans
`pipeline/trust/demo.py`). Elles ne protègent rien et ne servent qu'à faire tourner la chaîne de
démonstration (`make match`) sur des personnes **synthétiques**, sous la convention de
démonstration `conventions/demo-flers.yaml` (`demo: true`).

- `<partie>/<partie>.ed25519.pub.pem`, `<partie>/<partie>.x25519.pub.pem` : clés publiques.
- `<partie>/private/*.key.json` : clés privées DEMO ONLY (champ `"demo": true` et avertissement
  dans chaque fichier).
- `caf/demo-flers.caf.wrapped.json`, `cpam/demo-flers.cpam.wrapped.json` : la clé de liaison de
  démonstration, chiffrée pour chaque organisme (X25519 + HKDF-SHA256 + AES-256-GCM).

Git ne conserve pas les permissions : installez-les avec
`python -m pipeline keys install-demo --agency caf --dest out/caf/keys` (copie en 0600 et
déchiffre la clé de liaison). Une convention réelle (`demo: false`) refuse ces clés.
Regénération : `python -m pipeline.trust.demo`.
"""


def demo_public_keys(*agencies: str) -> set[bytes]:
    """Raw public bytes of every published demo key (Ed25519 and X25519) of the demo parties and
    of `agencies`: anyone holding the repository can derive their private halves."""
    from cryptography.hazmat.primitives import serialization

    from pipeline.trust.keys import seeded_exchange_key, seeded_signing_key

    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    out: set[bytes] = set()
    for agency in {*PARTIES, *agencies}:
        out.add(seeded_signing_key(DEMO_SEED, agency).public_key().public_bytes(*raw))
        out.add(seeded_exchange_key(DEMO_SEED, agency).public_key().public_bytes(*raw))
    return out


def demo_fingerprints(*convention_ids: str) -> set[str]:
    """Fingerprints of the published demo linkage keys (the demo convention's and, for each given
    id, the one the demo seed derives for it)."""
    from pipeline.trust.keys import fingerprint, seeded_linkage_secret

    return {fingerprint(seeded_linkage_secret(DEMO_SEED, cid))
            for cid in {DEMO_CONVENTION_ID, *convention_ids}}


def default_demo_keys() -> Path:
    for candidate in (Path.cwd() / "sample_data" / "keys", REPO / "sample_data" / "keys"):
        if candidate.is_dir():
            return candidate
    raise PipelineError("dossier sample_data/keys introuvable (clés de démonstration)")


def _token_fields() -> dict[str, list[str]]:
    """The tok_* columns of each data contract (tokens.yaml `agencies`: caf, cpam)."""
    out: dict[str, list[str]] = {}
    if not TOKENS.exists():
        return out
    from pipeline.shared.token_catalogue import load_catalogue

    for token in load_catalogue(TOKENS).tokens:  # `variants` entries expanded per position
        for agency in token.get("agencies", {}):
            out.setdefault(agency, []).append(token["name"])
    return out


def demo_spec(providers: list[str] | None = None) -> dict[str, Any]:
    """The demo convention's content for `providers` (default: those with an extract in
    sample_data/raw). A provider without its own `fields` / `contact_fields` entry in
    demo_convention.yaml (the MSA) sends what its data contract's provider sends."""
    providers = providers or dataset_providers(SAMPLE)
    spec = yaml.safe_load(SPEC.read_text("utf-8"))
    tokens = _token_fields()
    spec["parties"] = {p: v for p, v in spec["parties"].items()
                       if p in providers or p in OTHER_PARTIES}
    for section in ("fields", "contact_fields"):
        given = spec[section]
        spec[section] = {a: list(given.get(a) or given[modele(a)]) for a in providers}
    for agency in providers:
        spec["fields"][agency] += tokens.get(modele(agency), [])
    from pipeline.shared.bloom import RESIDUE_FIELDS  # the residue exchange (bloom.yaml)

    spec["residue_fields"] = {a: list(RESIDUE_FIELDS) for a in providers}
    from pipeline.shared import separation  # contract 6: who receives which columns

    benefits = next((a for a in providers if is_benefits(a)), None)  # readiness says if none
    for agency in providers:
        spec["fields"][agency] += separation.linker_fields(agency == benefits)
    spec |= separation.convention_sections(providers, benefits)
    return spec


def build(keys_root: Path | None = None, convention_out: Path | None = None,
          providers: list[str] | None = None) -> str:
    """(Re)generate demo keys, wrapped linkage key and signed convention; return the fingerprint.

    `providers`: the data providers of the demo dataset (default: those with an extract in
    sample_data/raw); a dataset with an MSA extract gets a three-provider convention."""
    keys_root = Path(keys_root or SAMPLE / "keys")
    convention_out = Path(convention_out or REPO / "conventions" / f"{DEMO_CONVENTION_ID}.yaml")
    providers = providers or dataset_providers(SAMPLE)
    parties = (*providers, *OTHER_PARTIES)
    for party in parties:
        if (keys_root / party).exists():
            shutil.rmtree(keys_root / party)
        generate_agency_keys(party, keys_root / party, seed=DEMO_SEED)
    with tempfile.TemporaryDirectory() as tmp:
        fp = create_linkage_key(DEMO_CONVENTION_ID, keys_root / benefits_provider(providers),
                                {a: keys_root / a for a in providers}, Path(tmp), seed=DEMO_SEED)
        for agency in providers:
            name = f"{DEMO_CONVENTION_ID}.{agency}.wrapped.json"
            shutil.copyfile(Path(tmp) / name, keys_root / agency / name)
    write_text(keys_root / "README.md", README)
    spec = {**demo_spec(providers), "linkage_key_fingerprint": fp}
    create_convention(spec, {p: keys_root / p for p in parties}, convention_out)
    for party in parties:
        sign_convention(convention_out, party, keys_root / party)
    return fp


def install_demo_keys(agency: str, dest: Path, *, source: Path | None = None) -> None:
    """Copy an agency's DEMO keys into `dest` owner-only and unwrap the demo linkage key.

    Git does not keep file modes, so the committed private keys come back 0644; this restores
    0700/0600. Refuses anything not marked as demo material.
    """
    src = Path(source or default_demo_keys()) / agency
    if not (src / "private").is_dir():
        raise PipelineError(f"{src} : pas de clés de démonstration pour « {agency} »")
    dest = Path(dest)
    for existing in sorted((dest / "private").glob("*.key.json")):
        if json.loads(existing.read_text("utf-8")).get("demo") is not True:
            raise RefusalError(f"{existing} : une vraie clé est déjà installée ici ; refus de la "
                               "remplacer par une clé de démonstration")
    dest = private_dir(dest)
    private_dir(dest / "private")
    for pem in sorted(src.glob("*.pub.pem")):
        write_text(dest / pem.name, pem.read_text("ascii"))
    for key_file in sorted((src / "private").glob("*.key.json")):
        doc = json.loads(key_file.read_text("utf-8"))
        if doc.get("format") != PRIVATE_FORMAT or doc.get("demo") is not True:
            raise RefusalError(f"{key_file} : n'est pas une clé marquée DEMO ONLY ; refus de "
                               "l'installer comme clé de démonstration")
        write_private(dest / "private" / key_file.name, key_file.read_bytes())
    for wrapped in sorted(src.glob("*.wrapped.json")):
        unwrap_linkage_key(wrapped, dest)


if __name__ == "__main__":
    print(build())
