"""The files that decide what runs, pinned by the convention.

An auditor must be able to prove which predicate ran: the rule catalogue, the parameter tables,
the comparisons, the token catalogue, the layouts and the validation suites are listed once in
reference_files.yaml; the convention signs their SHA-256 (`fichiers_reference`), the agency and
the central gate refuse a run when one of them differs, and the manifests, the gate result (hence
the report and the audit entry) record the hashes that were checked.

A territory may also pin a newly published CSS parameter table without a code change
(`table_parametres_css: {fichier, sha256, source}` in the convention, the file beside the
convention): once its hash is verified, the detection reads it instead of the bundled table.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipeline.common.errors import RefusalError
from pipeline.common.files import sha256_file

if TYPE_CHECKING:
    from pipeline.trust.convention import Convention

ROOT = Path(__file__).resolve().parents[2]
LIST_FILE = Path(__file__).with_name("reference_files.yaml")
BUNDLED_CSS_TABLE = "pipeline/shared/parameters/css.yaml"
PARAMETER_KEY = "table_parametres_css"
MAP_KEY = "fichiers_reference"


def reference_paths(root: Path | None = None) -> list[str]:
    """Repository-relative paths of every reference file, sorted (globs expanded)."""
    root = root or ROOT
    patterns = yaml.safe_load(LIST_FILE.read_text("utf-8"))["files"]
    found: set[str] = set()
    for pattern in patterns:
        found |= {p.relative_to(root).as_posix() for p in root.glob(pattern) if p.is_file()}
    return sorted(found)


def current_hashes(root: Path | None = None) -> dict[str, str]:
    """What `fichiers_reference` must hold for the files as they are now."""
    root = root or ROOT
    return {rel: sha256_file(root / rel) for rel in reference_paths(root)}


def check_reference_files(conv: Convention, root: Path | None = None) -> dict[str, str]:
    """Refuse (French, naming the file) unless every reference file has the pinned hash.

    Returns the verified map, for the manifest, the report and the audit entry.
    """
    pinned = conv.content.get(MAP_KEY)
    if not isinstance(pinned, dict) or not pinned:
        raise RefusalError(
            f"{conv.path} : la convention « {conv.id} » ne fixe pas les empreintes des fichiers "
            f"qui décident du traitement (« {MAP_KEY} ») ; faites-la établir à nouveau et signer")
    current = current_hashes(root)
    for rel, digest in current.items():
        if rel not in pinned:
            raise RefusalError(
                f"{conv.path} : le fichier « {rel} » n'est pas fixé par la convention "
                f"« {conv.id} » (empreinte absente de fichiers_reference) ; la convention doit "
                "être re-signée")
        if str(pinned[rel]) != digest:
            raise RefusalError(
                f"le fichier « {rel} » a été modifié depuis la signature de la convention "
                f"« {conv.id} » (SHA-256 {digest}, la convention fixe {pinned[rel]}) : le "
                "traitement exécuté ne serait pas celui que les parties ont signé ; rétablissez "
                "le fichier ou faites re-signer la convention")
    missing = sorted(set(pinned) - set(current))
    if missing:
        raise RefusalError(
            f"fichier(s) fixé(s) par la convention « {conv.id} » introuvable(s) : "
            f"{', '.join(missing)}")
    return dict(sorted(current.items()))


def parameter_table(conv: Convention) -> dict[str, Any]:
    """The CSS parameter table that applies under `conv`, verified: {fichier, sha256, source, path}.

    Without `table_parametres_css` the bundled table applies (already pinned through
    fichiers_reference). A pinned table is read from beside the convention; a missing file or a
    different hash is refused.
    """
    spec = conv.content.get(PARAMETER_KEY)
    if not spec:
        path = ROOT / BUNDLED_CSS_TABLE  # the one css_params reads by default
        source = (yaml.safe_load(path.read_text("utf-8")) or {}).get("source", "")
        return {"fichier": BUNDLED_CSS_TABLE, "sha256": sha256_file(path),
                "source": f"table livrée avec l'outil — {source}".rstrip(" —"), "path": path,
                "fixee_par_convention": False}
    if not isinstance(spec, dict) or not {"fichier", "sha256", "source"} <= set(spec):
        raise RefusalError(f"{conv.path} : « {PARAMETER_KEY} » doit donner fichier, sha256 et "
                           "source")
    path = Path(conv.path).parent / Path(str(spec["fichier"])).name
    if not path.is_file():
        raise RefusalError(f"{path} : table de paramètres fixée par la convention « {conv.id} » "
                           "introuvable (à placer à côté de la convention)")
    digest = sha256_file(path)
    if digest != str(spec["sha256"]):
        raise RefusalError(
            f"{path} : table de paramètres différente de celle fixée par la convention "
            f"« {conv.id} » (SHA-256 {digest}, attendu {spec['sha256']})")
    return {"fichier": path.name, "sha256": digest, "source": str(spec["source"]), "path": path,
            "fixee_par_convention": True}


def apply_parameter_table(conv: Convention) -> dict[str, Any]:
    """Verify the convention's parameter table and make the detection read it; JSON facts."""
    from pipeline.shared import css_params

    table = parameter_table(conv)
    css_params.use_parameters(table["path"] if table["fixee_par_convention"] else None)
    return {k: v for k, v in table.items() if k != "path"}
