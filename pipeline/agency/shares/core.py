"""The CAF's shares of the masked household sums, after the links (docs/SEPARATION.md, step 4).

The linking operator L sends the CAF the list of its links (`liens_caf.parquet`: caf_handle,
cpam_handle; pipeline/shared/separation.py). From it and the file `pseudonymise` kept here
(separation.LOCAL_FILE: handle, foyer, adulte, opposition, a_rsa, a_ppa per person), the CAF
writes for the detecting operator D:

- `caf.parts.parquet` (foyer, t_<bit>): T_Hj = rho_Hj * the sum of the coverage side's pads
  m_ij = PRF_K(cpam_handle) over the persons linked to a member of H
  (pipeline/agency/pseudonymise/status_masks.py). D subtracts it from L's sum S_Hj. L sends a
  sum only for a household not opposed at the CAF whose adult is linked (« found »,
  pipeline/central/match/status_sums.py): the CAF sends a share for exactly those households,
  so that D learns nothing of the others (not even that one of their members is linked);
- `caf.minima.parquet` (cpam_handle, a_minima): per linked coverage person, its CAF household's
  RSA-or-PPA flag (pipeline/shared/detector_files.py: `caf_minima`), no CAF household id.

Each file has its own signed manifest. Refusals before anything is written: a coverage
provider (only the CAF holds households), a convention without these columns in its
`shares_fields`, a links file that is not a list of pairs of handles whose CAF side this agency
issued (file, line and column named).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import polars as pl

from pipeline.agency.pseudonymise.status_masks import caf_shares, factors
from pipeline.common.errors import InputError, PipelineError
from pipeline.common.files import check_private
from pipeline.common.progress import info, step
from pipeline.common.tables import read_parquet, write_parquet
from pipeline.shared import separation
from pipeline.shared.contract import EXPORT_SCHEMA_VERSION, malformed_handle
from pipeline.shared.detector_files import caf_minima
from pipeline.shared.leak_scan import LeakageFound, scan_frame
from pipeline.shared.providers import PROVIDERS, is_benefits


@dataclasses.dataclass(frozen=True)
class SharesResult:
    """What was written and the aggregate counts (no identifier)."""

    agency: str
    shares_file: Path
    shares_manifest: Path | None
    minima_file: Path
    minima_manifest: Path | None
    counts: dict
    key_fingerprint: str


def check_agency(agency: str) -> None:
    """Only the benefits provider (the CAF) holds households, hence shares."""
    if agency not in PROVIDERS:
        raise PipelineError(f"organisme inconnu : « {agency} » ({', '.join(PROVIDERS)})")
    if not is_benefits(agency):
        raise PipelineError(f"« {agency} » : seule la CAF calcule les parts des sommes masquées "
                            "(ses foyers) ; un organisme de couverture n'a pas d'étape « parts »")


def check_convention_allows(allowed: list[str], agency: str, convention: Path | str) -> None:
    """Refuse unless the convention's shares_fields list every column of both files."""
    needed = list(dict.fromkeys([*separation.SHARES_FIELDS, *separation.MINIMA_FIELDS]))
    missing = [c for c in needed if c not in set(allowed)]
    if missing:
        raise PipelineError(
            f"{convention} : la convention n'autorise pas l'envoi des parts de « {agency} » à "
            f"l'opérateur de détection (shares_fields sans {', '.join(missing[:3])}"
            f"{' ...' if len(missing) > 3 else ''}) ; aucune part ne peut être transmise")


def _bad_handle(column: str) -> pl.Expr:
    c = pl.col(column)
    return (c.is_null() | malformed_handle(c)).fill_null(True)


def read_links(path: Path, issued: pl.Series, agency: str) -> pl.DataFrame:
    """The links (caf_handle, cpam_handle) in file order; refuses (file, line = row number from
    1, column named) anything but exactly these two text columns of 32-character lower-case hex
    handles, a pair given twice, or a CAF handle that `issued` (this agency's) does not hold."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "liste des liens introuvable (fichier écrit par l'opérateur "
                               "d'appariement)")
    links = read_parquet(path, "liste des liens")
    for column in links.columns:
        if column not in separation.LINKS_FIELDS:
            raise InputError(path, "colonne inattendue (attendues : "
                             f"{', '.join(separation.LINKS_FIELDS)})", column=column[:40])
    for column in separation.LINKS_FIELDS:
        if column not in links.columns:
            raise InputError(path, "colonne obligatoire absente", column=column)
        if links.schema[column] != pl.String:
            raise InputError(path, "type inattendu : handles en texte attendus", column=column)
    links = links.select(separation.LINKS_FIELDS)
    for column in separation.LINKS_FIELDS:
        bad = links.select(_bad_handle(column)).to_series()
        if bad.any():
            raise InputError(path, "handle mal formé (32 caractères hexadécimaux minuscules "
                             "attendus)", line=int(bad.arg_true()[0]) + 1, column=column)
    repeated = ~links.select(pl.struct(separation.LINKS_FIELDS).is_first_distinct()).to_series()
    if repeated.any():
        raise InputError(path, "lien en double", line=int(repeated.arg_true()[0]) + 1,
                         column=separation.LINKS_FIELDS[0])
    unknown = ~links["caf_handle"].is_in(issued.implode())
    if unknown.any():
        raise InputError(path, f"handle inconnu des personnes de « {agency} » "
                         f"({int(unknown.sum())} sur {links.height}) : liens d'un autre organisme "
                         "ou d'un autre export", line=int(unknown.arg_true()[0]) + 1,
                         column="caf_handle")
    return links


def compute_shares(local: pl.DataFrame, links: pl.DataFrame, secret: bytes,
                   engine: str | None = None) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """(shares, minima, counts) from the local rows (separation.LOCAL_FIELDS) and the links.

    Shares for the households L sends a sum for: not opposed at the CAF, an adult linked (the
    same flags as pipeline/central/match/status_sums.py reads in the CAF's export)."""
    linked = pl.col("handle").is_in(links["caf_handle"].implode())
    households = local.with_columns(_linked=linked).group_by("foyer").agg(
        _opposed=pl.col("opposition").fill_null(False).any(),
        _found=(pl.col("adulte").fill_null(False) & pl.col("_linked")).any(),
        _any_link=pl.col("_linked").any())
    sent = households.filter(pl.col("_found") & ~pl.col("_opposed"))["foyer"]
    members = local.filter(pl.col("foyer").is_in(sent.implode())).select("handle", "foyer")
    rho = factors(members["foyer"], secret, engine=engine)
    their_links = links.filter(pl.col("caf_handle").is_in(members["handle"].implode()))
    shares = (caf_shares(members, rho, their_links, secret, engine)
              .select(separation.SHARES_FIELDS).sort("foyer"))
    minima = caf_minima(local, links).select(separation.MINIMA_FIELDS)
    counts = {
        "liens": links.height,
        "foyers_parts": shares.height,
        "foyers_lies_opposes": households.filter(pl.col("_any_link") & pl.col("_opposed")).height,
        "foyers_lies_non_trouves": households.filter(
            pl.col("_any_link") & ~pl.col("_found") & ~pl.col("_opposed")).height,
        "personnes_minima": minima.height,
    }
    return shares, minima, counts


def _read_local(workdir: Path) -> pl.DataFrame:
    path = Path(workdir) / separation.LOCAL_FILE
    if not path.exists():
        raise InputError(path, "fichier local introuvable (lancez d'abord « pseudonymise » avec "
                               "cette version)")
    check_private(path)
    return read_parquet(path, "fichier local de la séparation",
                        required=separation.LOCAL_FIELDS)


def write_shares(agency: str, workdir: Path, keys: Path, convention: Path, links_file: Path,
                 export_dir: Path, *, sign: bool = True, today: dt.date | None = None,
                 engine: str | None = None) -> SharesResult:
    """The whole `parts` step: checks, shares and minima, owner-only files, manifests."""
    from pipeline.agency.pseudonymise.core import load_materials
    from pipeline.trust.convention import load_convention

    check_agency(agency)
    workdir, export_dir, links_file = Path(workdir), Path(export_dir), Path(links_file)
    mat = load_materials(Path(keys), Path(convention), agency, today)
    check_convention_allows(load_convention(convention).shares_fields(agency), agency,
                            convention)
    with step("Lecture du fichier local et des liens"):
        local = _read_local(workdir)
        links = read_links(links_file, local["handle"], agency)
    with step(f"Parts des sommes masquées ({links.height} liens)"):
        shares, minima, counts = compute_shares(local, links, mat.secret, engine)
    for frame in (shares, minima):  # cpam_handle: 32 lower-case hex, checked by read_links
        scan = scan_frame(frame.drop(separation.LINKS_FIELDS, strict=False))
        if not scan["ok"]:
            raise LeakageFound(scan)
    export_dir.mkdir(parents=True, exist_ok=True)
    shares_file = export_dir / separation.SHARES_FILE.format(provider=agency)
    minima_file = export_dir / separation.MINIMA_FILE.format(provider=agency)
    written = [write_parquet(shares, shares_file, sort_by=["foyer"], private=True),
               write_parquet(minima, minima_file, sort_by=["cpam_handle"], private=True)]
    manifests: list[Path | None] = [None, None]
    if sign:
        from pipeline.trust.manifest import write_manifest

        try:
            for i, (path, kind) in enumerate(((shares_file, separation.SHARES_KIND),
                                              (minima_file, separation.MINIMA_KIND))):
                manifests[i] = write_manifest(
                    path, agency=agency, convention_id=mat.convention_id,
                    key_fingerprint=mat.fingerprint, keys_dir=Path(keys),
                    schema_version=EXPORT_SCHEMA_VERSION, reference=mat.reference,
                    per_file=True, extra={"export": kind})  # counts stay here (audit)
        except BaseException:  # no unsigned file beside the signed ones
            for path in (*written, *manifests):
                if path is not None:
                    path.unlink(missing_ok=True)
            raise
    info(f"{agency} : parts de {counts['foyers_parts']} foyers et {counts['personnes_minima']} "
         f"indicateurs de minima sur {counts['liens']} liens ({counts['foyers_lies_opposes']} "
         "foyers liés exclus : opposition)")
    return SharesResult(agency, shares_file, manifests[0], minima_file, manifests[1], counts,
                        mat.fingerprint)
