"""The agency side of the residue exchange: the centre's request -> signed Bloom-filter export.

After its exact-key stage the centre sends each agency the handles it could not link
(`demande_<agency>.csv`, one column `handle`). The agency encodes those rows only
(pipeline/shared/bloom.py) from the same normalised components as its tokens
(pipeline/agency/pseudonymise/prepare.py), and writes `residu.parquet` (`handle` + the Int64
lanes, sorted by handle, owner-only) with a manifest signed like the main export's. Refusals
before anything is written: a convention that does not list the residue columns for this agency,
a request that is not a list of this agency's handles (file and line named). A handle of an
opposed person's household is never encoded: it is left out and counted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import polars as pl

from pipeline.agency.pseudonymise.prepare import prepare_components
from pipeline.common.errors import InputError, PipelineError
from pipeline.common.files import check_private, sha256_file, write_text
from pipeline.common.progress import info, step
from pipeline.common.tables import read_parquet, write_parquet
from pipeline.shared import bloom
from pipeline.shared.contract import EXPORT_SCHEMA_VERSION, malformed_handle
from pipeline.shared.leak_scan import LeakageFound, scan_frame
from pipeline.shared.providers import PROVIDERS, modele

RESIDUE_KIND = "residu"  # the manifest's `extra.export`: which exchange this file answers
ATTACK_SAMPLE_ROWS = 1_000  # rows the central attacks are run on (graph attack: O(n^2))


@dataclasses.dataclass(frozen=True)
class ResidueResult:
    """What was written and the aggregate counts (no identifier)."""

    agency: str
    residue_file: Path
    manifest_file: Path | None
    leakage_file: Path
    counts: dict
    key_fingerprint: str


def read_request(path: Path) -> pl.Series:
    """The requested handles, in file order; refuses (file and line named) anything but one
    `handle` column of distinct 32-character lower-case hex values."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "demande introuvable (fichier écrit par l'opérateur central)")
    try:
        text = path.read_text("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(path, "fichier illisible : encodage UTF-8 attendu") from exc
    lines = text.splitlines()
    if not lines or lines[0].strip() != bloom.REQUEST_COLUMN:
        raise InputError(path, f"en-tête « {bloom.REQUEST_COLUMN} » attendu", line=1)
    values = pl.Series(bloom.REQUEST_COLUMN, [v.strip() for v in lines[1:]], dtype=pl.String)
    bad = values.to_frame().select(malformed_handle(pl.col(values.name))).to_series()
    if bad.any():
        line = int(bad.arg_true()[0]) + 2
        raise InputError(path, "handle mal formé (32 caractères hexadécimaux attendus)",
                         line=line, column=bloom.REQUEST_COLUMN)
    dup = values.is_duplicated()
    if dup.any():
        line = int(dup.arg_true()[1]) + 2
        raise InputError(path, "handle demandé deux fois", line=line,
                         column=bloom.REQUEST_COLUMN)
    return values


def check_convention_allows(allowed: list[str], agency: str, convention: Path | str) -> None:
    """Refuse unless the convention lists every residue column for `agency`."""
    missing = [c for c in bloom.RESIDUE_FIELDS if c not in set(allowed)]
    if missing:
        raise PipelineError(
            f"{convention} : la convention n'autorise pas l'envoi du résidu pour « {agency} » "
            f"(residue_fields sans {', '.join(missing[:3])}"
            f"{' ...' if len(missing) > 3 else ''}) ; aucun résidu ne peut être transmis")


def select_rows(request: pl.Series, handles: pl.DataFrame, ingested: pl.DataFrame,
                request_file: Path, agency: str) -> tuple[pl.DataFrame, dict]:
    """Ingested rows of the requested, non-opposed handles (with `handle`), and the counts.

    An unknown handle refuses the whole request (file and line named): the centre asked for
    rows this agency never sent, so the request belongs to another agency or another run."""
    req = pl.DataFrame({"handle": request}).with_row_index("_pos")
    known = req.join(handles.select("handle", "line", "opposition"), on="handle", how="left")
    unknown = known.filter(pl.col("line").is_null())
    if unknown.height:
        line = int(unknown["_pos"].min()) + 2
        raise InputError(request_file, f"handle inconnu de la table des handles de « {agency} » "
                         f"({unknown.height} sur {req.height}) : demande d'un autre organisme "
                         "ou d'un autre export", line=line, column=bloom.REQUEST_COLUMN)
    opposed = known["opposition"].fill_null(False)
    kept = known.filter(~opposed).select("handle", "line")
    rows = kept.join(ingested, on="line", how="inner")
    if rows.height != kept.height:
        raise PipelineError(f"{request_file} : {kept.height - rows.height} handle(s) demandé(s) "
                            "sans ligne dans l'extrait normalisé : table des handles et extrait "
                            "d'exports différents (relancez la pseudonymisation)")
    counts = {"demandes": req.height, "encodes": rows.height,
              "exclus_opposition": int(opposed.sum())}
    return rows.sort("line"), counts


def build_residue(rows: pl.DataFrame, agency: str, secret: bytes) -> pl.DataFrame:
    """`handle` + lanes, sorted by handle: pure computation, no file touched."""
    prepared = prepare_components(rows, modele(agency))
    lanes = bloom.encode(bloom.components_of(prepared), secret)
    return pl.concat([rows.select("handle"), lanes], how="horizontal").sort("handle")


def attack_figures(residue: pl.DataFrame, rows: pl.DataFrame, agency: str) -> dict:
    """The central operator's attacks on the residue lanes (pattern mining, Hamming weight,
    graph matching: pipeline/agency/pseudonymise/attacks/bloom_attacks.py), scored against
    this agency's plaintext, on at most ATTACK_SAMPLE_ROWS rows (a fixed-seed sample): French
    aggregate figures for the leakage file, no value."""
    try:
        from pipeline.agency.pseudonymise.attacks.bloom_attacks import measure
    except ImportError:  # a release without the attacks module
        return {"statut": "non mesuré : module des attaques absent de cette version"}
    plain = (rows.select("handle", pl.col("nom_naissance" if modele(agency) == "caf" else "nom")
                         .alias("nom"), "prenom1", "naiss_annee", "naiss_mois", "naiss_jour",
                         "sexe", "code_commune")
             .join(residue.select("handle", *bloom.LANES), on="handle").sort("handle"))
    if plain.height > ATTACK_SAMPLE_ROWS:
        plain = plain.sample(ATTACK_SAMPLE_ROWS, seed=0).sort("handle")
    if plain.height < 2:
        return {"statut": "non mesuré : moins de deux lignes", "lignes": plain.height}
    return measure(plain.select(bloom.LANES), plain.drop("handle", *bloom.LANES))


def _read_private(path: Path, what: str) -> pl.DataFrame:
    if not path.exists():
        raise InputError(path, f"{what} introuvable (lancez d'abord « pseudonymise »)")
    check_private(path)
    return read_parquet(path, what)


def encode_residue(agency: str, workdir: Path, keys: Path, convention: Path,
                   request_csv: Path, export_dir: Path, *, sign: bool = True,
                   today: dt.date | None = None) -> Path:
    """Encode the rows the centre asked for; returns the path of residu.parquet.

    `sign=False` (benchmarks) writes no manifest; the convention and the key are checked
    either way."""
    return encode_residue_result(agency, workdir, keys, convention, request_csv, export_dir,
                                 sign=sign, today=today).residue_file


def encode_residue_result(agency: str, workdir: Path, keys: Path, convention: Path,
                          request_csv: Path, export_dir: Path, *, sign: bool = True,
                          today: dt.date | None = None) -> ResidueResult:
    """`encode_residue` with the counts (the CLI prints them and audits the files)."""
    from pipeline.agency.pseudonymise.core import load_materials
    from pipeline.trust.convention import load_convention

    if agency not in PROVIDERS:
        raise PipelineError(f"organisme inconnu : « {agency} » ({', '.join(PROVIDERS)})")
    workdir, export_dir, request_csv = Path(workdir), Path(export_dir), Path(request_csv)
    mat = load_materials(Path(keys), Path(convention), agency, today)
    check_convention_allows(load_convention(convention).residue_fields(agency), agency,
                            convention)
    request = read_request(request_csv)
    with step("Lecture de la table des handles et de l'extrait normalisé"):
        handles = _read_private(workdir / "handles.parquet", "table des handles")
        ingested = _read_private(workdir / "ingested.parquet", "extrait normalisé")
    rows, counts = select_rows(request, handles, ingested, request_csv, agency)
    with step(f"Encodage de {rows.height} lignes (filtres de Bloom durcis)"):
        residue = build_residue(rows, agency, mat.secret)
    scan = scan_frame(residue, rows, agency)
    if not scan["ok"]:
        raise LeakageFound(scan)
    export_dir.mkdir(parents=True, exist_ok=True)
    residue_file = write_parquet(residue, export_dir / bloom.RESIDUE_FILE, sort_by=["handle"],
                                 private=True)
    parameters = {"fichier": "pipeline/shared/bloom.yaml", "version": bloom.PARAMS.version,
                  "sha256": sha256_file(Path(bloom.__file__).with_name("bloom.yaml"))}
    with step("Attaques de l'opérateur sur le résidu (échantillon)"):
        attacks = attack_figures(residue, rows, agency)
    leakage = {"agency": agency, "export": RESIDUE_KIND, "scan": scan, "comptes": counts,
               "parametres_bloom": parameters, "attaques": attacks}
    leakage_file = write_text(export_dir / bloom.RESIDUE_LEAKAGE.format(provider=agency),
                              json.dumps(leakage, indent=2, sort_keys=True, ensure_ascii=False))
    manifest_file = None
    if sign:
        try:
            from pipeline.trust.manifest import write_manifest

            manifest_file = write_manifest(
                residue_file, agency=agency, convention_id=mat.convention_id,
                key_fingerprint=mat.fingerprint, keys_dir=Path(keys),
                schema_version=EXPORT_SCHEMA_VERSION, reference=mat.reference,
                extra={"export": RESIDUE_KIND, "residu": counts,
                       "parametres_bloom": parameters})
        except BaseException:
            residue_file.unlink(missing_ok=True)
            raise
    info(f"{agency} : résidu de {counts['encodes']} lignes encodées sur {counts['demandes']} "
         f"demandées ({counts['exclus_opposition']} exclues : opposition)")
    return ResidueResult(agency, residue_file, manifest_file, leakage_file, counts,
                         mat.fingerprint)
