"""The coverage side of a central run with several health-insurance providers (CPAM, MSA...).

The link has two sides (pipeline/shared/providers.yaml `cote`): the benefits side (the CAF) and
the coverage side, the union of every coverage provider's export in reading order. With one
coverage provider its export is used as it is (the two-provider run is unchanged byte for byte);
with several, their union is written once to a private temporary file with a `fournisseur`
column, and read by the link and by detection, so a household "not found at the CPAM" but
insured at the MSA is found, and its MSA cover is what the rules see. Targets of a kind several
providers can re-identify (`reidentifie`) then go to the provider that holds their handle.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from pipeline.common.errors import RefusalError
from pipeline.common.files import write_text
from pipeline.common.tables import write_parquet
from pipeline.shared.providers import holders, ordered

PROVIDER_COLUMN = "fournisseur"
UNION_NAME = "couverture.pseudo.parquet"


def refuse_shared_handles(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` (handle, fournisseur, ...: the coverage providers' rows together) unless a handle
    was issued by two providers: targets could not be told apart. Handles are 128-bit random
    values, so this means a copied file, not bad luck (French refusal, no value)."""
    shared = frame.filter(pl.col("handle").is_duplicated())[PROVIDER_COLUMN].unique().sort()
    if shared.len():
        raise RefusalError("handles communs aux fichiers de " + ", ".join(shared.to_list())
                           + " : chaque fournisseur doit émettre ses propres handles")
    return frame


def union(exports: dict[str, Path], coverage: list[str], folder: Path) -> Path:
    """The coverage side as one file: the export itself, or the union written in `folder`.

    Refuses (French, no value) a handle issued by two providers (refuse_shared_handles)."""
    if len(coverage) == 1:
        return exports[coverage[0]]
    frames = [pl.read_parquet(exports[a]).with_columns(pl.lit(a).alias(PROVIDER_COLUMN))
              for a in coverage]
    both = refuse_shared_handles(pl.concat(frames, how="diagonal"))
    path = Path(folder) / UNION_NAME
    both.write_parquet(path, compression="zstd", compression_level=1, statistics=False)
    return path


def assign_targets(out_dir: Path, providers: list[str], coverage_file: Path,
                   sort_by: list[str]) -> dict[str, int]:
    """`assign_owned` with the owners read from the coverage side's file (the export itself,
    or the union of the coverage providers' exports with its `fournisseur` column)."""
    schema = pl.read_parquet_schema(coverage_file)
    owners = (pl.read_parquet(coverage_file, columns=["handle", PROVIDER_COLUMN])
              if PROVIDER_COLUMN in schema else pl.DataFrame(schema={"handle": pl.String,
                                                                     PROVIDER_COLUMN: pl.String}))
    return assign_owned(out_dir, providers, owners, sort_by)


def assign_owned(out_dir: Path, providers: list[str], owners: pl.DataFrame,
                 sort_by: list[str]) -> dict[str, int]:
    """Give each target to the provider that re-identifies it; rewrite targets.parquet (and
    the per-agency count of detect_stats.json) only if that changed an `agence`.

    A target's kind is the detection view of its rules (rules.yaml `vue`); the providers of the
    run that can re-identify that kind are its candidates (providers.yaml `reidentifie`); with
    several, the one that issued the target's handle: `owners` (handle, fournisseur), from the
    coverage side's rows (central run) or from the coverage providers' detection files
    (separated detection)."""
    from pipeline.shared.rules import load_rules

    views = {r.id: r.vue for r in load_rules()}
    path = Path(out_dir) / "targets.parquet"
    targets = pl.read_parquet(path)
    kind = pl.col("regles").list.first().replace_strict(views, return_dtype=pl.String)
    single = {v: found[0] for v in set(views.values()) if len(found := holders(providers, v)) == 1}
    owners = owners.select("handle", PROVIDER_COLUMN)
    assigned = targets.join(owners, on="handle", how="left", maintain_order="left").with_columns(
        _kind=kind).with_columns(
        holder=pl.col("_kind").replace_strict(single, default=pl.col(PROVIDER_COLUMN),
                                              return_dtype=pl.String))
    lost = assigned.filter(pl.col("holder").is_null())
    if lost.height:
        raise RefusalError(f"{lost.height} cible(s) sans fournisseur capable de les "
                           "ré-identifier (pipeline/shared/providers.yaml « reidentifie »)")
    counts = {a: int((assigned["holder"] == a).sum()) for a in ordered(providers)}
    if assigned["holder"].equals(targets["agence"], check_names=False):
        return counts
    write_parquet(assigned.with_columns(agence=pl.col("holder")).select(targets.columns), path,
                  sort_by=sort_by)
    stats_path = Path(out_dir) / "detect_stats.json"
    stats = json.loads(stats_path.read_text("utf-8"))
    stats["cibles"]["par_agence"] = counts
    write_text(stats_path, json.dumps(stats, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    return counts
