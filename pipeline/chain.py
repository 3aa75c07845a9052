"""The whole chain as a list of separate commands, one process each.

Every stage that writes an output gets `--remplacer`: the chain re-derives all of `out/` from the
dataset, so a rerun (`make match` twice) replaces the previous outputs on purpose; each stage
still swaps its outputs in atomically under its folder's lock, and the audit logs (never
replaced, only appended) keep the history. By hand, a command refuses an existing output folder
unless `--remplacer` is given.

`make match` runs it on `sample_data/`; `make evaluate` on a freshly generated dataset. The
commands are exactly the ones a territory runs by hand — each provider's steps on its own
premises, the central step under the convention — and `--dry-run` prints them. Each agency has
its own folder; the central step reads only what the agencies transmitted (`transfer/`).

The providers are those whose raw extract the dataset holds (`raw/<provider>_extract.csv`,
pipeline/shared/providers.yaml): the CAF and the CPAM for `sample_data/`, plus the MSA for a
dataset generated with `synth --msa`. Demo keys come from the dataset's `keys/` folder when it
has one for the provider (else sample_data/keys).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from rich.table import Table

from pipeline.common.errors import PipelineError
from pipeline.common.files import staged_folder
from pipeline.common.outputs import folder_lock
from pipeline.common.progress import console
from pipeline.shared.bloom import RESIDUE_DIR, RESIDUE_REQUEST
from pipeline.shared.providers import (
    AGENCIES,
    PROVIDERS,
    benefits_provider,
    dataset_providers,
    is_benefits,
)
from pipeline.shared.separation import (
    DETECTION_AUDIT,
    DETECTION_DIR,
    DETECTION_OUT,
    HANDOFF_DIR,
    LINKS_FILE,
    OPPOSITION_FILE,
    SHARES_DIR,
    SUMS_FILE,
)
from pipeline.trust.convention import LINKER_PARTY
from pipeline.trust.manifest import manifest_path_for

DEMO_HANDLE_SEED = 20261122  # demo only: fixed so that `make match` is byte-reproducible


@dataclass(frozen=True)
class Stage:
    name: str
    side: str  # a provider (caf, cpam, msa), "central" or "transfer"
    argv: list[str] = field(default_factory=list)

    def shell(self) -> str:
        if self.side == "transfer":
            return "# copier out/<agence>/export/ vers le dossier reçu par l'opérateur central"
        if self.side == "transfer_detection":
            return ("# copier out/<agence>/detection/, out/caf/parts/ et les sommes et oppositions "
                    "de out/central/separation/ vers le dossier reçu par l'opérateur de détection")
        if self.side == "transfer_residue":
            return ("# copier la demande out/central/residu/demande_<agence>.csv vers l'agence, "
                    "puis out/<agence>/residu/ vers out/transfer/residu/<agence>/")
        return "python -m pipeline " + shlex.join(self.argv)


def optional(path: Path) -> list[str]:
    """An agency-local input that a dataset may not have (opposition list, contact history)."""
    return [str(path)] if path.exists() else []


def stages(
    dataset: Path,
    out: Path,
    convention: Path,
    *,
    seed: int | None = DEMO_HANDLE_SEED,
    today: str | None = None,
) -> list[Stage]:
    """The chain for one dataset folder (layout of docs/CONTRACTS.md) into `out`."""
    territory = dataset / "territory" / "iris_quartiers.csv"
    providers = dataset_providers(dataset)
    chain: list[Stage] = []
    for agency in providers:
        work = out / agency
        keys = ["keys", "install-demo", "--agency", agency, "--dest", str(work / "keys")]
        if (dataset / "keys" / agency).is_dir():
            keys += ["--source", str(dataset / "keys")]
        chain.append(Stage(f"{agency}: clés (démo)", agency, keys))
        chain.append(
            Stage(
                f"{agency}: ingestion",
                agency,
                [
                    "ingest",
                    "--agency",
                    agency,
                    "--input",
                    str(dataset / "raw" / f"{agency}_extract.csv"),
                    "--out",
                    str(work),
                    "--remplacer",
                ],
            )
        )
        argv = [
            "pseudonymise",
            "--agency",
            agency,
            "--workdir",
            str(work),
            "--keys",
            str(work / "keys"),
            "--convention",
            str(convention),
            "--export",
            str(work / "export"),
            "--remplacer",
        ]
        if is_benefits(agency):
            argv += ["--territory", str(territory)]
        opposition = optional(dataset / "agencies" / agency / "opposition.csv")
        if opposition:
            argv += ["--opposition", *opposition]
        if seed is not None:
            argv += ["--seed", str(seed + list(PROVIDERS).index(agency))]
        chain.append(Stage(f"{agency}: pseudonymisation", agency, argv))
    chain.append(Stage("transmission des fichiers pseudonymisés", "transfer"))
    # the linking operator's own key pair: it signs the masked sums it hands the detecting
    # operator (outside its output folder, which each run replaces)
    operator_keys = out / LINKER_PARTY / "keys"
    keys = ["keys", "install-demo", "--agency", LINKER_PARTY, "--dest", str(operator_keys)]
    if (dataset / "keys" / LINKER_PARTY).is_dir():
        keys += ["--source", str(dataset / "keys")]
    chain.append(Stage("opérateur d'appariement : clés (démo)", "central", keys))
    # `match` has one option per data contract's own provider (--caf, --cpam); any other
    # provider of the convention (the MSA) comes as --fournisseur
    central = ["match", "--convention", str(convention)]
    for agency in providers:
        inbox = str(out / "transfer" / agency)
        central += ([f"--{agency}", inbox] if agency in AGENCIES
                    else ["--fournisseur", f"{agency}={inbox}"])
    central += [
        "--out",
        str(out / "central"),
        "--audit-log",
        str(out / "audit.jsonl"),
        "--keys",
        str(operator_keys),
        "--remplacer",
    ]
    if today:
        central += ["--today", today]
    chain.append(Stage("appariement, étape 1 : contrôle, appariement par clés, demandes de résidu",
                       "central", central))
    # Staged exchange: each provider encodes the rows the centre could not link (its request),
    # sends them, and the central step runs again with them.
    for agency in providers:
        argv = ["residu", "--agency", agency,
                "--demande", str(residue_request(out, agency)),
                "--workdir", str(out / agency), "--keys", str(out / agency / "keys"),
                "--convention", str(convention), "--export", str(out / agency / RESIDUE_DIR),
                "--remplacer"]
        if today:
            argv += ["--today", today]
        chain.append(Stage(f"{agency}: résidu (filtres de Bloom des lignes demandées)", agency,
                           argv))
    chain.append(Stage("transmission des résidus", "transfer_residue"))
    residue = [x for agency in providers
               for x in ("--residu", f"{agency}={out / 'transfer' / RESIDUE_DIR / agency}")]
    chain.append(Stage("appariement, étape 2 : résidu, sommes masquées, rapport", "central",
                       central + residue))
    chain += separated_stages(out, convention, providers, today)
    targets = out / DETECTION_OUT / "targets.parquet"
    for agency in providers:
        work = out / agency
        argv = [
            "reidentify",
            "--agency",
            agency,
            "--targets",
            str(targets),
            "--workdir",
            str(work),
            "--out",
            str(work / "listes"),
            "--convention",
            str(convention),
            "--remplacer",
        ]
        opposition = optional(dataset / "agencies" / agency / "opposition.csv")
        if opposition:
            argv += ["--opposition", *opposition]
        contacts = optional(dataset / "agencies" / agency / "contacts.csv")
        argv += ["--contacts", *contacts] if contacts else ["--sans-historique"]
        argv += ["--territory", str(territory)]
        if today:
            argv += ["--run-date", today]
        chain.append(Stage(f"{agency}: ré-identification et listes", agency, argv))
    return chain


def separated_stages(out: Path, convention: Path, providers: list[str],
                     today: str | None) -> list[Stage]:
    """After the linking run: the CAF's shares over its link list, the transfer of every file
    the detecting operator receives, and its run (docs/SEPARATION.md)."""
    benefits = benefits_provider(providers)
    parts = ["parts", "--agency", benefits,
             "--liens", str(out / "central" / HANDOFF_DIR
                            / LINKS_FILE.format(provider=benefits)),
             "--workdir", str(out / benefits), "--keys", str(out / benefits / "keys"),
             "--convention", str(convention), "--export", str(out / benefits / SHARES_DIR),
             "--remplacer"]
    inbox = out / "transfer" / DETECTION_DIR
    detect = ["detecter", "--convention", str(convention)]
    for agency in providers:
        detect += ["--detection", f"{agency}={inbox / agency}"]
    detect += ["--separation", str(inbox / HANDOFF_DIR), "--parts", str(inbox / SHARES_DIR),
               "--out", str(out / DETECTION_OUT), "--audit-log", str(out / DETECTION_AUDIT),
               "--remplacer"]
    if today:
        parts += ["--today", today]
        detect += ["--today", today]
    return [
        Stage(f"{benefits}: parts de démasquage (sur ses liens)", benefits, parts),
        Stage("transmission à l'opérateur de détection", "transfer_detection"),
        Stage("détection : démasquage, règles, cibles", "detection", detect),
    ]


def transfer_detection(out: Path) -> None:
    """Copy what the detecting operator receives, and only that, to its inbox
    `transfer/detection/`: each agency's detection file, the CAF's shares, and from the linking
    operator the sums and the linked opposition (not its link list, which goes to the CAF)."""
    inbox = out / "transfer" / DETECTION_DIR
    sources = {agency: out / agency / DETECTION_DIR for agency in PROVIDERS}
    sources[SHARES_DIR] = out / benefits_provider(AGENCIES) / SHARES_DIR
    for name, src in sources.items():
        if src.is_dir():
            copy_folder(src, inbox / name)
    handoff = out / "central" / HANDOFF_DIR
    dst = inbox / HANDOFF_DIR
    dst.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(dst), staged_folder(dst) as staging:
        for name in (SUMS_FILE, OPPOSITION_FILE):  # each with its signed manifest
            for path in (handoff / name, manifest_path_for(handoff / name, "", per_file=True)):
                shutil.copyfile(path, staging / path.name)


def copy_folder(src: Path, dst: Path) -> None:
    """Stands for one secure transfer between premises: `dst` is staged and swapped in whole
    (pipeline/common/files.py), never removed before its copy is complete."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(dst), staged_folder(dst) as staging:
        shutil.copytree(src, staging, dirs_exist_ok=True)


def transfer(out: Path) -> None:
    """Copy each agency's export (pseudonymised file + signed manifest + leakage report) to the
    central inbox (copy_folder)."""
    for agency in PROVIDERS:
        if (out / agency / "export").is_dir():
            copy_folder(out / agency / "export", out / "transfer" / agency)


def residue_request(out: Path, agency: str) -> Path:
    """The centre's request to `agency` (written by the first central step)."""
    return out / "central" / RESIDUE_DIR / RESIDUE_REQUEST.format(provider=agency)


def transfer_residue(out: Path) -> None:
    """Copy each agency's residue (residu.parquet + signed manifest + leakage file) to the
    central inbox `transfer/residu/<agency>`, staged and swapped in like the exports."""
    for agency in PROVIDERS:
        if (out / agency / RESIDUE_DIR).is_dir():
            copy_folder(out / agency / RESIDUE_DIR, out / "transfer" / RESIDUE_DIR / agency)


# the stages that stand for a secure transfer between premises, and what each copies
TRANSFERS = {"transfer": transfer, "transfer_residue": transfer_residue,
             "transfer_detection": transfer_detection}


def pinned_clock(today: str | None) -> dict[str, str]:
    """With a pinned run date, manifests are dated at its midnight UTC (SOURCE_DATE_EPOCH), so a
    rerun with the same inputs, key, seed and date is byte-identical; otherwise the real time."""
    if not today:
        return {}
    midnight = datetime.combine(date.fromisoformat(today), datetime.min.time(), tzinfo=UTC)
    return {"SOURCE_DATE_EPOCH": str(int(midnight.timestamp()))}


def run(chain: list[Stage], out: Path, *, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run each stage in its own process; stop at the first failure with its exit code."""
    timings: dict[str, float] = {}
    for stage in chain:
        t0 = time.perf_counter()
        console.print(f"[bold cyan]▶ {stage.name}[/bold cyan]")
        if stage.side in TRANSFERS:
            TRANSFERS[stage.side](out)
        else:
            proc = subprocess.run(
                [sys.executable, "-m", "pipeline", *stage.argv],
                check=False,
                env={**os.environ, **(env or {})},
            )
            if proc.returncode != 0:
                raise PipelineError(
                    f"l'étape « {stage.name} » a échoué (code {proc.returncode}) ; "
                    f"commande : {stage.shell()}"
                ) from None
        timings[stage.name] = round(time.perf_counter() - t0, 3)
    return timings


OUTPUTS = (
    ("caf", "listes/", "listes par quartier pour le CCAS (XLSX + CSV), liste « à vérifier »"),
    ("caf", "rejections.csv", "lignes et valeurs rejetées à l'ingestion, avec le motif"),
    ("caf", "handles.parquet", "table de ré-identification (reste à la CAF, 0600)"),
    ("caf", "export/", "vers l'opérateur d'appariement : jetons, handles, facteurs masqués"),
    ("caf", "detection/", "vers l'opérateur de détection : une ligne par foyer, sans taille"),
    ("caf", "parts/", "vers l'opérateur de détection : parts de démasquage, minima par lien"),
    ("cpam", "listes/", "listes « bilan de droits » ré-identifiées par la CPAM"),
    ("cpam", "export/", "vers l'opérateur d'appariement : jetons, handles, statuts masqués"),
    ("cpam", "detection/", "vers l'opérateur de détection : assurés en CSS gratuite"),
    ("msa", "listes/", "listes « bilan de droits » ré-identifiées par la MSA"),
    ("msa", "export/", "vers l'opérateur d'appariement : jetons, handles, statuts masqués"),
    ("central", "links.parquet", "appariement : liens entre personnes (handles, passe, poids)"),
    ("central", "report.html", "rapport de l'opérateur d'appariement (hors ligne)"),
    (DETECTION_OUT, "targets.parquet", "détection : foyers à contacter, par handles"),
    (DETECTION_OUT, "aggregates.csv", "comptes règle × quartier, petites cellules masquées"),
    (DETECTION_OUT, "report.html", "rapport de l'opérateur de détection (hors ligne)"),
    ("", "audit.jsonl", "journal d'audit chaîné de l'opérateur d'appariement"),
    ("", DETECTION_AUDIT, "journal d'audit chaîné de l'opérateur de détection"),
)


def show_outputs(out: Path, timings: dict[str, float]) -> None:
    """Tell the data officer where each output is, and how long each stage took."""
    table = Table(title="Sorties", show_header=True)
    table.add_column("côté")
    table.add_column("chemin")
    table.add_column("contenu")
    for side, name, what in OUTPUTS:
        path = out / side / name if side else out / name
        if path.exists():
            table.add_row(side or "central", str(path), what)
    console.print(table)
    total = sum(timings.values())
    console.print(
        f"Durée totale : {total:.1f} s ("
        + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
        + ")"
    )
