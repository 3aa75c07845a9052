"""Commands of the trust stage: keys, convention, manifest, gate, audit, purge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.common.errors import PipelineError
from pipeline.common.outputs import parse_day
from pipeline.shared.contract import EXPORT_SCHEMA_VERSION

keys_app = typer.Typer(help="Clés des organismes et cérémonie de la clé de liaison.",
                       no_args_is_help=True)
convention_app = typer.Typer(help="Conventions signées (création, signature, vérification).",
                             no_args_is_help=True)
manifest_app = typer.Typer(help="Manifestes signés des fichiers pseudonymisés.",
                           no_args_is_help=True)
audit_app = typer.Typer(help="Journal d'audit chaîné.", no_args_is_help=True)




def _pairs(values: list[str] | None, option: str) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise PipelineError(f"{option} attend ORGANISME=CHEMIN, reçu « {value} »")
        out[name] = Path(path)
    return out


def _json(obj: object) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str))


TodayOpt = Annotated[
    str | None, typer.Option(help="Date du jour AAAA-MM-JJ (défaut : aujourd'hui).")]


# --- keys -----------------------------------------------------------------------------------


@keys_app.command("generate")
def keys_generate(
    agency: Annotated[str, typer.Option(help="Organisme : caf, cpam, operateur, ccas…")],
    dest: Annotated[Path, typer.Option(help="Dossier de clés (créé en 0700).")],
) -> None:
    """Create the agency's X25519 + Ed25519 key pairs (private parts 0600)."""
    from pipeline.trust.keys import generate_agency_keys

    generate_agency_keys(agency, dest)
    typer.echo(f"Clés de « {agency} » créées dans {dest}")


@keys_app.command("install-demo")
def keys_install_demo(
    agency: Annotated[str, typer.Option(help="caf ou cpam (ou operateur, ccas).")],
    dest: Annotated[Path, typer.Option(help="Dossier de clés de l'organisme, ex. out/caf/keys.")],
    source: Annotated[Path | None, typer.Option(help="Défaut : sample_data/keys.")] = None,
) -> None:
    """Install the DEMO ONLY keys owner-only and unwrap the demo linkage key."""
    from pipeline.trust.demo import install_demo_keys

    install_demo_keys(agency, dest, source=source)
    typer.echo(f"Clés de DÉMONSTRATION de « {agency} » installées dans {dest}")


@keys_app.command("create-linkage")
def keys_create_linkage(
    convention_id: Annotated[str, typer.Option(help="Identifiant de la convention.")],
    creator_keys: Annotated[Path, typer.Option(help="Dossier de clés de l'organisme créateur.")],
    recipient: Annotated[list[str], typer.Option(
        help="ORGANISME=clé publique X25519 (.pem) ou dossier de clés ; répétable.")],
    out: Annotated[Path, typer.Option(help="Dossier des fichiers de clé enveloppée.")],
) -> None:
    """Create the convention's linkage key once and wrap it for every data provider."""
    from pipeline.trust.keys import create_linkage_key

    fp = create_linkage_key(convention_id, creator_keys, _pairs(recipient, "--recipient"), out)
    typer.echo(f"Clé de liaison créée ; empreinte {fp} (à reporter dans la convention)")


@keys_app.command("unwrap")
def keys_unwrap(
    wrapped: Annotated[Path, typer.Argument(help="Fichier <convention>.<organisme>.wrapped.json")],
    keys_dir: Annotated[Path, typer.Option(help="Dossier de clés de l'organisme destinataire.")],
) -> None:
    """Decrypt a wrapped linkage key and install it owner-only."""
    from pipeline.trust.keys import unwrap_linkage_key

    unwrap_linkage_key(wrapped, keys_dir)
    typer.echo(f"Clé de liaison installée dans {keys_dir}")


@keys_app.command("fingerprint")
def keys_fingerprint(
    keys_dir: Annotated[Path, typer.Option(help="Dossier de clés de l'organisme.")],
    convention: Annotated[Path, typer.Option(help="Fichier YAML de la convention.")],
) -> None:
    """Print the installed linkage key's fingerprint (never the key)."""
    from pipeline.trust.convention import load_convention
    from pipeline.trust.keys import load_linkage_key

    conv = load_convention(convention)
    typer.echo(load_linkage_key(keys_dir, conv.id, convention=conv).fingerprint)


# --- convention -----------------------------------------------------------------------------


@convention_app.command("create")
def convention_create(
    spec: Annotated[Path, typer.Argument(help="YAML du contenu (sans clés ni signatures).")],
    out: Annotated[Path, typer.Option(help="Convention à écrire (non signée).")],
    party_keys: Annotated[list[str], typer.Option(
        help="PARTIE=dossier de clés (ou .pem Ed25519) ; une par partie.")],
) -> None:
    """Write an unsigned convention with each party's public signing key."""
    import yaml

    from pipeline.trust.convention import create_convention

    create_convention(yaml.safe_load(spec.read_text("utf-8")),
                      _pairs(party_keys, "--party-keys"), out)
    typer.echo(f"Convention écrite (non signée) : {out}")


@convention_app.command("sign")
def convention_sign(
    path: Annotated[Path, typer.Argument(help="Fichier YAML de la convention.")],
    party: Annotated[str, typer.Option(help="Partie qui signe.")],
    keys_dir: Annotated[Path, typer.Option(help="Dossier de clés de cette partie.")],
) -> None:
    """Add this party's Ed25519 signature over the canonical content."""
    from pipeline.trust.convention import sign_convention

    sign_convention(path, party, keys_dir)
    typer.echo(f"Convention signée par « {party} »")


@convention_app.command("verify")
def convention_verify(
    path: Annotated[Path, typer.Argument(help="Fichier YAML de la convention.")],
    today: TodayOpt = None,
) -> None:
    """Check every party's signature and the validity dates (non-zero exit on refusal)."""
    from pipeline.trust.convention import load_verified_convention

    conv = load_verified_convention(path, parse_day(today))
    typer.echo(f"Convention « {conv.id} » valide : signée par {', '.join(sorted(conv.parties))}, "
               f"en vigueur du {conv.valid_from:%d/%m/%Y} au {conv.valid_until:%d/%m/%Y}")


@convention_app.command("show")
def convention_show(
    path: Annotated[Path, typer.Argument(help="Fichier YAML de la convention.")],
) -> None:
    """Print the convention's summary (parties, signature status, dates, rules) as JSON."""
    from pipeline.trust.convention import load_convention

    conv = load_convention(path)
    _json({**conv.summary(), "fields": conv.content["fields"],
           "contact_fields": conv.content["contact_fields"]})


# --- manifest -------------------------------------------------------------------------------


@manifest_app.command("write")
def manifest_write(
    data_file: Annotated[Path, typer.Argument(help="Fichier <organisme>.pseudo.parquet")],
    agency: Annotated[str, typer.Option(help="Organisme signataire.")],
    convention: Annotated[Path, typer.Option(help="Convention (YAML).")],
    keys_dir: Annotated[Path, typer.Option(help="Dossier de clés de l'organisme.")],
    schema_version: Annotated[str, typer.Option(help="Version du schéma d'export.")] = (
        EXPORT_SCHEMA_VERSION),
    today: TodayOpt = None,
) -> None:
    """Write and sign <agency>.manifest.json beside the data file (convention verified first)."""
    from pipeline.trust.agency import verify_for_agency
    from pipeline.trust.convention import load_convention
    from pipeline.trust.keys import load_linkage_key
    from pipeline.trust.manifest import write_manifest

    conv = load_convention(convention)
    checked = verify_for_agency(conv, agency, keys_dir, parse_day(today))
    key = load_linkage_key(keys_dir, conv.id, convention=conv)
    path = write_manifest(data_file, agency=agency, convention_id=conv.id,
                          key_fingerprint=key.fingerprint, keys_dir=keys_dir,
                          schema_version=schema_version, reference=checked.as_manifest())
    typer.echo(f"Manifeste signé : {path}")


@manifest_app.command("verify")
def manifest_verify(
    manifest: Annotated[Path, typer.Argument(help="Fichier <organisme>.manifest.json")],
    convention: Annotated[Path, typer.Option(help="Convention (YAML).")],
) -> None:
    """Check the manifest's signature against the convention and its file's hash."""
    from pipeline.trust.convention import load_convention
    from pipeline.trust.manifest import verify_manifest

    m = verify_manifest(manifest, load_convention(convention))
    typer.echo(f"Manifeste de « {m.agency} » valide : {m.rows} lignes, SHA-256 {m.sha256}")


# --- gate, audit, purge ---------------------------------------------------------------------


def gate(
    convention: Annotated[Path, typer.Option(help="Convention (YAML).")],
    export: Annotated[list[str], typer.Option(
        help="ORGANISME=fichier .pseudo.parquet ou dossier export ; une par fournisseur.")],
    rule: Annotated[list[str] | None, typer.Option(
        help="Règle demandée (répétable ; défaut : toutes celles de la convention).")] = None,
    today: TodayOpt = None,
) -> None:
    """Run the central gate alone and print its verdict as JSON (non-zero exit on refusal)."""
    from pipeline.trust.convention import load_convention
    from pipeline.trust.gate import verify_central_inputs

    rules = list(rule or load_convention(convention).allowed_rules)
    result = verify_central_inputs(convention, _pairs(export, "--export"), rules,
                                   parse_day(today))
    _json(result.to_dict())


@audit_app.command("verify")
def audit_verify(
    log: Annotated[Path, typer.Option(help="Journal d'audit (JSON lines).")] = Path(
        "out/audit.jsonl"),
    head: Annotated[str | None, typer.Option(
        help="Empreinte attendue de la dernière ligne (détecte une fin tronquée).")] = None,
) -> None:
    """Verify the hash chain; exit non-zero and name the first broken line."""
    from pipeline.common.errors import RefusalError
    from pipeline.trust.audit import verify

    status = verify(log, expected_head=head)
    if not status.ok:
        raise RefusalError(f"journal d'audit altéré — {status.reason}")
    typer.echo(f"Journal d'audit intact : {status.entries} entrées, tête {status.head}")


def purge_cmd(
    convention: Annotated[Path, typer.Option(help="Convention (durée de conservation).")],
    run_root: Annotated[Path, typer.Option(help="Racine des sorties.")] = Path("out"),
    audit_log: Annotated[Path, typer.Option(help="Journal d'audit.")] = Path("out/audit.jsonl"),
    today: TodayOpt = None,
    dry_run: Annotated[bool, typer.Option(help="Lister sans supprimer.")] = False,
) -> None:
    """Delete run outputs and handles tables older than the convention's retention period."""
    from pipeline.trust.purge import purge

    deleted = purge(run_root, convention, parse_day(today), audit_log, dry_run=dry_run)
    verb = "à supprimer" if dry_run else "supprimé"
    for path in deleted:
        typer.echo(f"{verb} : {path}")
    typer.echo(f"{len(deleted)} élément(s) " + ("à supprimer" if dry_run else "supprimé(s)"))


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.add_typer(keys_app, name="keys")
    app.add_typer(convention_app, name="convention")
    app.add_typer(manifest_app, name="manifest")
    app.add_typer(audit_app, name="audit")
    app.command("gate")(gate)
    app.command("purge")(purge_cmd)
