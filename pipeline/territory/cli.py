"""`territoire init`: the guided start of a new (non-demo) territory."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from pipeline.common.errors import PipelineError
from pipeline.shared.providers import AGENCIES

territory_app = typer.Typer(help="Nouveau territoire : clés, convention et configuration.",
                            no_args_is_help=True)


def _date(value: str | None, option: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise PipelineError(f"{option} : date invalide « {value} » (format AAAA-MM-JJ)") from None


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise PipelineError(f"{option} attend NOM=CHEMIN, reçu « {value} »")
        out[name] = path
    return out


@territory_app.command("init")
def init_cmd(
    dossier: Annotated[Path, typer.Option("--dossier", help="Dossier du territoire (créé, 0700).")],
    nom: Annotated[str, typer.Option("--nom", help="Nom du territoire (ex. « Flers »).")],
    convention_id: Annotated[str | None, typer.Option(
        "--id", help="Identifiant de la convention (défaut : tznr-<nom>).")] = None,
    departement: Annotated[str | None, typer.Option(
        "--departement", help="Département (ex. 61).")] = None,
    debut: Annotated[str | None, typer.Option(
        "--debut", help="Début de validité AAAA-MM-JJ (défaut : aujourd'hui).")] = None,
    fin: Annotated[str | None, typer.Option(
        "--fin", help="Fin de validité AAAA-MM-JJ (défaut : début + 730 jours).")] = None,
    conservation: Annotated[int | None, typer.Option(
        "--conservation", help="Durée de conservation des résultats, en jours.")] = None,
    cles: Annotated[list[str] | None, typer.Option(
        "--cles", help="PARTIE=dossier de clés déjà créé par cette partie (répétable).")] = None,
    chemin: Annotated[list[str] | None, typer.Option(
        "--chemin", help="SECTION.CLE=CHEMIN dans territoire.toml, ex. caf.extrait=… "
        "(répétable).")] = None,
    fournisseur: Annotated[list[str] | None, typer.Option(
        "--fournisseur", help="Fournisseur de données en plus de la CAF et de la CPAM, ex. msa "
        "(répétable).")] = None,
) -> None:
    """Create the parties' keys, the linkage key, the unsigned convention and territoire.toml."""
    from pipeline.territory.bootstrap import init_territory

    res = init_territory(
        dossier, nom, convention_id=convention_id, departement=departement,
        valid_from=_date(debut, "--debut"), valid_until=_date(fin, "--fin"),
        retention_days=conservation,
        party_keys={k: Path(v) for k, v in _pairs(cles, "--cles").items()},
        paths=_pairs(chemin, "--chemin"),
        providers=[*AGENCIES, *(fournisseur or [])])
    conv, cfg = res.convention, res.config
    pending = [a for a in res.wrapped if a not in res.unwrapped]
    lines = [
        f"Territoire « {nom} » initialisé dans {dossier}",
        f"  configuration : {cfg}",
        f"  convention (non signée) : {conv}",
        f"  empreinte de la clé de liaison : {res.fingerprint}",
        "Étapes suivantes (détail : docs/KEY-CEREMONY.md) :",
        *(f"  {a} : nonrecours keys unwrap {res.wrapped[a]} --keys-dir <clés de {a}>"
          for a in pending),
        *(f"  {p} signe : nonrecours convention sign {conv} --party {p} --keys-dir "
          + (str(k) if (k / "private" / f"{p}.ed25519.key.json").exists() else f"<clés de {p}>")
          for p, k in res.keys.items()),
        f"  vérifier : nonrecours convention verify {conv}",
        f"  puis : nonrecours ingest --agency caf --config {cfg} (et cpam), "
        f"pseudonymise --agency caf --config {cfg}, match --config {cfg}, "
        f"reidentify --agency caf --config {cfg}",
    ]
    typer.echo("\n".join(lines))


def register(app: typer.Typer) -> None:
    """Add the `territoire` group to the top-level app."""
    app.add_typer(territory_app, name="territoire")
