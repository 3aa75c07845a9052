"""The agency-side pseudonymisation step: ingested extract -> export + handles table + manifest,
and (export contract 6, pipeline/shared/separation.py) the detection file for the detecting
operator with its own manifest, and the CAF's local file for its `parts` step.

Order matters for "nothing half-written": everything is computed and the export frame is scanned
for leaks in memory first; only then are the handles table, the export and the manifest written
(each atomically). If signing fails, the export is removed again so that no unsigned file sits in
the export folder.

The handles table is not encrypted at rest, on purpose: it holds the same contact data as the
ingested extract beside it, on the same agency premises, with the same protection (owner-only
0600 file in a 0700 folder, checked on read). Encrypting it with a key stored next to it would
add nothing; encrypting it with K would let the other agency, which also holds K, read it if it
ever got the file. Disk or volume encryption on the agency side is the right layer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from pipeline.agency.pseudonymise.handles import (
    FOYER_NUMBER,
    assign_handles,
    handle_order,
    keyed_person_handles,
)
from pipeline.agency.pseudonymise.leakage import (
    STEP_SAMPLE_ROWS,
    agency_truth,
    frequency_leakage_frame,
    household_sample,
)
from pipeline.agency.pseudonymise.opposition import OppositionList, flag_opposition, read_opposition
from pipeline.agency.pseudonymise.prepare import prepare_components
from pipeline.agency.pseudonymise.status_masks import factors, mask
from pipeline.agency.pseudonymise.tokens import TokenCatalogue, compute_tokens, packaged_catalogue
from pipeline.common.errors import InputError, PipelineError, RefusalError
from pipeline.common.files import check_private, private_dir, write_text
from pipeline.common.progress import info, step, warn
from pipeline.common.tables import read_parquet, write_parquet
from pipeline.shared import separation
from pipeline.shared.attributes import (
    STRUCTURE,
    add_attributes,
    add_features,
    export_attributes,
    local_place,
    minimal_opposition,
    read_territory,
)
from pipeline.shared.contract import EXPORT_SCHEMA_VERSION
from pipeline.shared.detector_files import FEATURES, household_rows, insured_rows
from pipeline.shared.kanonymity import attribute_columns, export_k
from pipeline.shared.leak_scan import LeakageFound, scan_frame
from pipeline.shared.masked_sums import person_bits
from pipeline.shared.providers import PROVIDERS, is_benefits, modele

T = TypeVar("T")

CONTACT_FIELDS = {
    "caf": ["matricule", "role", "nom", "prenom", "telephone", "adresse", "code_postal",
            "code_commune"],
    "cpam": ["qualite", "nom", "prenom", "adresse", "code_postal", "code_commune"],
}


def _timed(fn: Callable[..., T], *args: object, **kwargs: object) -> tuple[T, float]:
    """`fn(*args, **kwargs)` and its wall time (for a step run in another thread)."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - t0, 3)


@dataclasses.dataclass(frozen=True)
class PseudonymiseResult:
    """What was written and the aggregate counts (no identifier)."""

    agency: str
    export_file: Path
    manifest_file: Path | None
    handles_file: Path
    leakage_file: Path
    rows: int
    columns: list[str]
    counts: dict
    key_fingerprint: str
    timings: dict = dataclasses.field(default_factory=dict)
    detection_file: Path | None = None  # for the detecting operator (contract 6)
    detection_manifest: Path | None = None
    local_file: Path | None = None  # CAF: kept here for its `parts` step


@dataclasses.dataclass(frozen=True)
class Materials:
    """The key and the convention facts the step needs (from pipeline.trust, or given)."""

    secret: bytes
    fingerprint: str
    convention_id: str
    allowed_fields: list[str] | None
    contact_fields: list[str] | None
    demo: bool
    reference: dict = dataclasses.field(default_factory=dict)  # signed into the manifest
    # the convention's detection_fields for this agency: None = no allow-list (tests), [] = no
    # separated detection (no detection file)
    detection_fields: list[str] | None = None


def load_materials(keys_dir: Path, convention: Path, agency: str,
                   today: dt.date | None = None) -> Materials:
    """Read the convention and the linkage key through pipeline.trust; refuses, before anything
    is written, a convention the central gate would refuse (pipeline.trust.agency)."""
    from pipeline.trust.agency import verify_for_agency
    from pipeline.trust.convention import load_convention
    from pipeline.trust.keys import load_linkage_key

    conv = load_convention(convention)
    checked = verify_for_agency(conv, agency, Path(keys_dir), today or dt.date.today())
    key = load_linkage_key(keys_dir, conv.id, convention=conv)
    return Materials(key.secret, key.fingerprint, conv.id, conv.allowed_fields(agency),
                     conv.contact_fields(agency), bool(conv.demo), checked.as_manifest(),
                     conv.detection_fields(agency))


def detection_columns(agency: str, mat: Materials, convention: Path | str) -> list[str] | None:
    """The columns of the agency's detection file (pipeline/shared/separation.py), or None when
    the convention has no separated detection for it (then no detection file, with a warning).
    Refuses, before anything is written, a convention whose detection_fields lack one of them."""
    fields = separation.detection_fields(is_benefits(agency))
    if mat.detection_fields is None:
        return fields
    if not mat.detection_fields:
        warn(f"la convention « {mat.convention_id} » ne prévoit pas de fichier de détection "
             f"pour « {agency} » (detection_fields) : aucun fichier de détection écrit")
        return None
    missing = [c for c in fields if c not in set(mat.detection_fields)]
    if missing:
        raise PipelineError(
            f"{convention} : la convention n'autorise pas le fichier de détection de "
            f"« {agency} » (detection_fields sans {', '.join(missing[:3])}"
            f"{' ...' if len(missing) > 3 else ''}) ; aucun fichier n'a été écrit")
    return fields


def refuse_seed_outside_demo(seed: int | None, mat: Materials) -> None:
    """A fixed seed gives the same handles run after run: demo conventions only."""
    if seed is not None and not mat.demo:
        raise RefusalError(
            f"graine de handles (--seed) refusée : la convention « {mat.convention_id} » n'est "
            "pas une convention de démonstration ; des handles reproductibles relieraient les "
            "exports d'un run à l'autre")


def _read_ingested(workdir: Path) -> pl.DataFrame:
    path = Path(workdir) / "ingested.parquet"
    if not path.exists():
        raise InputError(path, "fichier introuvable (lancez d'abord « ingest »)")
    check_private(path)
    return read_parquet(path, "extrait normalisé")


def _household_key(agency: str) -> pl.Expr:
    if agency == "caf":
        return pl.coalesce(pl.col("matricule").cast(pl.String),
                           pl.format("ligne:{}", pl.col("line")))
    return pl.coalesce(pl.col("nir_ouvrant_droit"), pl.col("nir"),
                       pl.format("ligne:{}", pl.col("line")))


def _contacts(frame: pl.DataFrame, agency: str) -> pl.DataFrame:
    nom = pl.coalesce("nom_usage", "nom_naissance") if agency == "caf" else pl.col("nom")
    return frame.with_columns(nom=nom, prenom=pl.col("prenom1"))


@dataclasses.dataclass(frozen=True)
class Built:
    """What `build_files` computes (no file touched)."""

    export: pl.DataFrame  # for the linking operator
    handles: pl.DataFrame  # kept here (re-identification)
    counts: dict
    detection: pl.DataFrame | None = None  # for the detecting operator (contract 6)
    local: pl.DataFrame | None = None  # CAF: kept here for its `parts` step (LOCAL_FIELDS)


def _ordered(frame: pl.DataFrame, order: pl.Series, roles: pl.Series,
             columns: list[str]) -> pl.DataFrame:
    """handle, foyer, opposition and `columns` of the frame, in the export's row order, an
    opposed household's values emptied as in the export (nothing of it leaves, masked or not)."""
    wanted = list(dict.fromkeys([*STRUCTURE, *columns]))
    return minimal_opposition(frame.select(c for c in wanted if c in frame.columns)[order],
                              roles)


def linker_columns(rows: pl.DataFrame, benefits: bool, secret: bytes,
                   engine: str | None = None) -> pl.DataFrame:
    """The masked columns for L, aligned with `rows` (export order): coverage side, the pads
    c_<bit> of each person's status bits (from `statut_css`); CAF, the factors rho_<bit> of its
    household (the same on every row of it). pipeline/shared/masked_sums.py."""
    if benefits:
        rho = factors(rows["foyer"], secret, engine=engine)
        return rows.select("foyer").join(rho, on="foyer", how="left",
                                         maintain_order="left").drop("foyer")
    return mask(person_bits(rows), secret, engine).drop("handle")


def separated_files(frame: pl.DataFrame, order: pl.Series, roles: pl.Series, benefits: bool
                    ) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """(detection file, local file) from the full frame (features the export may not carry):
    the CAF's household file and its per-person LOCAL_FIELDS, or the coverage side's insured
    perimeter (no local file). Columns exactly as pipeline/shared/separation.py declares."""
    if benefits:
        rows = _ordered(frame, order, roles, [*FEATURES, "a_ppa", "date_reference",
                                              *separation.LOCAL_FIELDS])
        return (household_rows(rows).select(separation.HOUSEHOLD_FIELDS),
                rows.select(separation.LOCAL_FIELDS))
    rows = _ordered(frame, order, roles, ["css_gratuite_en_cours"])
    return insured_rows(rows).select(separation.INSURED_FIELDS), None


def build(
    ingested: pl.DataFrame,
    agency: str,
    secret: bytes,
    **kwargs: Any,
) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """Pure computation: (export frame, handles frame, counts). No file is touched. Arguments:
    those of `build_files`, without the detection and local frames."""
    built = build_files(ingested, agency, secret, separated=False, **kwargs)
    return built.export, built.handles, built.counts


def export_in_the_clear(workdir: Path, agency: str, convention: Path, today: dt.date, *,
                        seed: int | None, territory: Path | None = None,
                        opposition: Path | None = None) -> pl.DataFrame:
    """The export one central operator received before contract 6 (features included, no
    allow-list), for the same ingested rows, key, seed and opposition list as the agency's run:
    the reference the separated detection is checked against (tests, `make
    bench-kanon-separation`). Never written, never sent."""
    workdir = Path(workdir)
    mat = load_materials(workdir / "keys", convention, agency, today)
    export, _, _ = build(
        _read_ingested(workdir), agency, mat.secret,
        territory=read_territory(territory) if territory else None,
        opposition=read_opposition(opposition, agency) if opposition else None,
        seed=seed, allowed_fields=None, contact_fields=mat.contact_fields)
    return export


def build_files(
    ingested: pl.DataFrame,
    agency: str,
    secret: bytes,
    *,
    territory: pl.DataFrame | None = None,
    opposition: OppositionList | None = None,
    seed: int | None = None,
    allowed_fields: list[str] | None = None,
    contact_fields: list[str] | None = None,
    engine: str | None = None,
    catalogue: TokenCatalogue | None = None,
    beside_tokens: Callable[[pl.DataFrame, pl.DataFrame], None] | None = None,
    separated: bool = True,
) -> Built:
    """Pure computation: the export, handles, counts and (`separated`) the detection and local
    frames. No file is touched.

    The export carries, when the convention allows them (produced ∩ allowed, as every column),
    the masked columns for L (`linker_columns`), computed after the tokens from the full frame.

    `catalogue`: the token scheme (default tokens.yaml, version 2; the attacks' tests pass the
    version 1 control). `beside_tokens(plain, handles)`: work on the export without its token
    columns (same rows, order and emptied opposition rows, plus the household number
    FOYER_NUMBER) and on the handles table, run in this thread while the other computes the
    tokens (pseudonymise's k-anonymity figures)."""
    provider, agency = agency, modele(agency)  # an MSA file goes through the CPAM's contract
    benefits = is_benefits(provider)
    if not ingested["line"].is_sorted():  # tokens and attributes are row-aligned in line order
        ingested = ingested.sort("line")
    catalogue = catalogue or packaged_catalogue()
    token_names = catalogue.names(agency)
    # The person handles first (they depend on row positions only), while another thread
    # prepares the components: the export's row order, by handle, is then known when the tokens
    # start, so they come out in that order and no 128-bit token column is ever gathered (~1.5 s
    # on 1M rows, and a scattered write after). The tokens are then computed in that thread
    # while this one derives everything else that does not need them (households, attributes,
    # features, the export's plain columns, the handles table, `beside_tokens`): polars, AES
    # and most numpy steps release the GIL, and both threads only read their frames.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending_prepared = pool.submit(prepare_components, ingested, agency)
        person, person_key = keyed_person_handles(ingested.height, provider, secret=secret,
                                                  seed=seed)
        order = handle_order(person, person_key)
        prepared = pending_prepared.result()
        pending = pool.submit(compute_tokens, prepared, agency, secret, engine=engine,
                              prepared=True, catalogue=catalogue, order=order)
        frame = assign_handles(prepared, _household_key(agency), provider, secret=secret,
                               seed=seed, person=person)
        frame = add_attributes(frame, agency, territory)
        frame, opp_counts = flag_opposition(frame, agency, opposition)
        frame = add_features(frame, agency, group=FOYER_NUMBER)

        attributes = export_attributes(agency, frame.columns)
        masked = separation.linker_fields(benefits)
        produced = STRUCTURE + attributes + token_names + masked
        wanted = produced if allowed_fields is None else [c for c in produced
                                                          if c in allowed_fields]
        missing = [c for c in STRUCTURE if c not in wanted]
        if missing:
            raise PipelineError(
                "la convention n'autorise pas les colonnes indispensables " + ", ".join(missing))
        unknown = sorted(set(allowed_fields or []) - set(produced))
        if unknown:
            warn("colonnes autorisées par la convention mais non produites : "
                 + ", ".join(unknown))
        plain = [c for c in wanted if c not in token_names and c not in masked]
        roles = frame["role"][order]
        plain_export = minimal_opposition(frame.select(plain)[order], roles).with_columns(
            pl.col("handle").set_sorted())

        contacts = contact_fields or CONTACT_FIELDS[agency]
        local = _contacts(frame, agency)
        absent = [c for c in contacts if c not in local.columns]
        if absent:
            raise PipelineError("champs de contact de la convention inconnus de l'extrait : "
                                + ", ".join(absent))
        handles = local.select(
            "handle", "foyer", "line", *[c for c in contacts if c != "line"], "opposition",
            *local_place(local, agency, FOYER_NUMBER))
        if not handles["line"].is_sorted():  # the frame is in line order: no 1M-row sort
            handles = handles.sort("line")
        if beside_tokens is not None:
            beside_tokens(plain_export.with_columns(frame[FOYER_NUMBER][order]), handles)
        tokens = pending.result()

    parts = [plain_export, tokens.select(c for c in tokens.columns if c in wanted)]
    if any(c in wanted for c in masked):  # pads or factors (same rows and order as the export)
        status = ["statut_css"] if not benefits else []
        linker = linker_columns(_ordered(frame, order, roles, status), benefits, secret, engine)
        parts.append(linker.select(c for c in linker.columns if c in wanted))
    # The opposed households' token cells are emptied here (their plain cells already are);
    # their pads and factors are kept (minimal_opposition).
    export = minimal_opposition(pl.concat(parts, how="horizontal").select(wanted),
                                roles).with_columns(pl.col("handle").set_sorted())
    detection, local = (separated_files(frame, order, roles, benefits) if separated
                        else (None, None))

    quartier_hors = 0
    if "quartier" in handles.columns:  # household level, kept at the agency (contract 3)
        quartier_hors = int((handles["quartier"] == "HORS_TERRITOIRE").sum())
    counts = {
        "personnes": frame.height,
        "foyers": frame[FOYER_NUMBER].n_unique(),
        "opposition": opp_counts,
        "hors_territoire": quartier_hors,
        "jetons_non_nuls": {t: tokens.height - tokens[t].null_count() for t in tokens.columns},
    }
    return Built(export, handles, counts, detection, local)


def pseudonymise(
    agency: str,
    workdir: Path,
    keys_dir: Path,
    convention: Path,
    export_dir: Path,
    territory: Path | None = None,
    opposition: Path | None = None,
    seed: int | None = None,
    *,
    materials: Materials | None = None,
    engine: str | None = None,
    sign: bool = True,
    today: dt.date | None = None,
    detection_dir: Path | None = None,
) -> PseudonymiseResult:
    """Run the whole agency-side step; see docs/CONTRACTS.md for every file written.

    `detection_dir` (default `<workdir>/detection`): the detection file for the detecting
    operator, `<agency>.detection.parquet` with its manifest (pipeline/shared/separation.py)."""
    if agency not in PROVIDERS:
        raise PipelineError(f"organisme inconnu : « {agency} » ({', '.join(PROVIDERS)})")
    workdir, export_dir = Path(workdir), Path(export_dir)
    detection_dir = Path(detection_dir) if detection_dir else workdir / separation.DETECTION_DIR
    timings: dict[str, float | dict[str, float]] = {}
    cpu: dict[str, float] = {}  # CPU seconds of the whole process (every thread) per phase
    clock, cpu_clock = time.perf_counter(), time.process_time()

    def lap(name: str) -> None:
        nonlocal clock, cpu_clock
        now, cpu_now = time.perf_counter(), time.process_time()
        timings[name] = round(now - clock, 3)
        cpu[name] = round(cpu_now - cpu_clock, 3)
        clock, cpu_clock = now, cpu_now

    mat = materials or load_materials(Path(keys_dir), Path(convention), agency, today)
    refuse_seed_outside_demo(seed, mat)
    detection_fields = detection_columns(agency, mat, convention)
    with step("Lecture de l'extrait normalisé"):
        ingested = _read_ingested(workdir)
    lap("lecture")
    terr = read_territory(Path(territory)) if territory else None
    if is_benefits(agency) and terr is None:
        warn("pas de table du territoire : la colonne quartier restera vide")
    opp = read_opposition(Path(opposition), agency) if opposition else None

    beside: dict = {}

    def beside_tokens(plain: pl.DataFrame, handles: pl.DataFrame) -> None:
        """While the tokens are computed: the attacks' truth and the k-anonymity figures
        (they read the export's plain columns only, rows grouped by foyer)."""
        # only the households the attacks sample (the export has the handles' rows and ids)
        sampled = household_sample(handles.height, STEP_SAMPLE_ROWS)
        if sampled is None:
            beside["truth"] = agency_truth(ingested, handles, agency)
        else:
            kept = handles.filter(sampled)
            beside["truth"] = agency_truth(
                ingested.filter(pl.col("line").is_in(kept["line"].implode())), kept, agency)
        beside["k"] = export_k(plain, attribute_columns(plain.drop(FOYER_NUMBER)),
                               group=FOYER_NUMBER)

    with step("Jetons, handles et attributs"):
        built = build_files(
            ingested, agency, mat.secret, territory=terr, opposition=opp, seed=seed,
            allowed_fields=mat.allowed_fields, contact_fields=mat.contact_fields, engine=engine,
            beside_tokens=beside_tokens)
    export, handles, counts = built.export, built.handles, built.counts
    detection = None if detection_fields is None else built.detection.select(detection_fields)
    lap("jetons_handles_attributs")

    # The attacks (aggregates for leakage.json, no gate) run in another thread while the
    # identifier scan, the gate, runs here and the files are written.
    with step("Contrôle des fuites (export)"), ThreadPoolExecutor(max_workers=1) as pool:
        pending_freq = pool.submit(_timed, frequency_leakage_frame, export,
                                   truth=beside["truth"], sample_rows=STEP_SAMPLE_ROWS)
        scan = scan_frame(export, ingested, agency)
        if not scan["ok"]:
            raise LeakageFound(scan)
        if detection is not None:  # the same gate on D's file (its figures stay here: the
            detection_scan = scan_frame(detection, ingested, agency)  # row count is D's)
            if not detection_scan["ok"]:
                raise LeakageFound(detection_scan)
        lap("controle_fuites")
        private_dir(workdir)
        export_dir.mkdir(parents=True, exist_ok=True)
        handles_file = workdir / "handles.parquet"
        export_file = export_dir / f"{agency}.pseudo.parquet"
        local_file = detection_file = None
        written: list[Path] = []
        try:
            written.append(write_parquet(handles, handles_file, sort_by=["line"], private=True))
            if built.local is not None:
                local_file = write_parquet(built.local, workdir / separation.LOCAL_FILE,
                                           sort_by=["handle"], private=True)
                written.append(local_file)
            written.append(write_parquet(export, export_file, sort_by=["handle"]))
            if detection is not None:
                detection_dir.mkdir(parents=True, exist_ok=True)
                detection_file = write_parquet(
                    detection, detection_dir / separation.DETECTION_FILE.format(provider=agency),
                    sort_by=[detection.columns[0]], private=True)
                written.append(detection_file)
            lap("ecriture")
            freq, timings["attaque_frequences"] = pending_freq.result()
        except BaseException:  # no export (nor its handles) without its leakage figures
            for path in written:
                path.unlink(missing_ok=True)
            raise
    lap("attente_attaques")
    leakage = {"agency": agency, "scan": scan, "frequence": freq, "k_anonymat": beside["k"]}
    leakage_file = write_text(export_dir / f"{agency}.leakage.json",
                              json.dumps(leakage, indent=2, sort_keys=True, ensure_ascii=False))
    manifest_file = detection_manifest = None
    if sign:
        try:
            from pipeline.agency.pseudonymise.export_facts import export_facts
            from pipeline.trust.manifest import write_manifest

            manifest_file = write_manifest(
                export_file, agency=agency, convention_id=mat.convention_id,
                key_fingerprint=mat.fingerprint, keys_dir=Path(keys_dir),
                schema_version=EXPORT_SCHEMA_VERSION, reference=mat.reference,
                extra={"rows_opposition": counts["opposition"]["personnes_opposees"],
                       **export_facts(workdir, Path(territory) if territory else None)})
            if detection_file is not None:
                detection_manifest = write_manifest(
                    detection_file, agency=agency, convention_id=mat.convention_id,
                    key_fingerprint=mat.fingerprint, keys_dir=Path(keys_dir),
                    schema_version=EXPORT_SCHEMA_VERSION, reference=mat.reference,
                    extra={"export": separation.DETECTION_KIND})
        except BaseException:  # no unsigned file beside the signed ones
            for path in (export_file, manifest_file, detection_file):
                if path is not None:
                    path.unlink(missing_ok=True)
            raise
    lap("signature")
    info(f"{agency} : {export.height} personnes, {counts['foyers']} foyers, "
         f"{counts['opposition']['personnes_opposees']} en opposition")
    timings["cpu"] = cpu
    return PseudonymiseResult(agency, export_file, manifest_file, handles_file, leakage_file,
                              export.height, export.columns, counts, mat.fingerprint, timings,
                              detection_file, detection_manifest, local_file)

