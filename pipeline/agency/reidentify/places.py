"""Where each target lives and whom to contact, decided at the agency (export contract 3).

No quartier, commune or role leaves an agency any more (k-anonymity, docs/CONTRACTS.md): the
centre's targets carry a household handle, any member's handle and the placeholder quartier
NON_LOCALISE. The re-identifying agency puts back, from its own data:
- CAF: the household's quartier, as the export used to carry it (kept in the owner-only handles
  table by pseudonymisation: attributes.local_place), and the contact person (the allocataire,
  else the spouse, else the first member);
- CPAM: the person's commune (the finest place its extract holds); the target is the person.
It also counts the households it lists per rule and quartier, small-cell suppressed, in an
owner-only file (agregats_quartiers.csv: the per-quartier table the centre can no longer make).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.common.files import check_private
from pipeline.shared.aggregates import write_aggregates
from pipeline.shared.attributes import ROLE_ORDER
from pipeline.shared.rules import load_rules

NON_LOCALISE = "NON_LOCALISE"
AGGREGATES_NAME = "agregats_quartiers.csv"


def _own(workdir: Path, handles: pl.DataFrame, column: str, dtype: pl.DataType) -> pl.DataFrame:
    """(handle, foyer, `column`) from the agency's own ingested table (null when it lacks it)."""
    path = Path(workdir) / "ingested.parquet"
    check_private(path)
    present = column in pl.read_parquet_schema(path)
    rows = pl.read_parquet(path, columns=["line", column]) if present else \
        pl.DataFrame(schema={"line": pl.Int64, column: dtype})
    return handles.select("handle", "foyer", pl.col("line").cast(rows.schema["line"])).join(
        rows, on="line", how="left")


def caf_places(workdir: Path, handles: pl.DataFrame) -> pl.DataFrame:
    """(foyer, quartier, contact_handle) for every CAF household of the handles table: the
    quartier pseudonymisation kept there, the allocataire (else the spouse, else the first
    member by handle, as the central view used to order them) as contact."""
    people = _own(workdir, handles, "role", pl.String).join(
        handles.select("handle", (pl.col("quartier") if "quartier" in handles.columns
                                  else pl.lit(None, dtype=pl.String)).alias("quartier")),
        on="handle").with_columns(
        _role=pl.col("role").replace_strict(ROLE_ORDER, default=2, return_dtype=pl.Int8))
    return people.group_by("foyer").agg(
        quartier=pl.col("quartier").drop_nulls().first().fill_null(pl.lit(NON_LOCALISE)),
        contact_handle=pl.col("handle").sort_by(["_role", "handle"]).first(),
    )


def cpam_places(workdir: Path, handles: pl.DataFrame) -> pl.DataFrame:
    """(handle, quartier): each CPAM person's commune (NON_LOCALISE when unknown)."""
    people = _own(workdir, handles, "code_commune", pl.String)
    return people.select("handle", quartier=pl.col("code_commune").fill_null(NON_LOCALISE))


def localise(targets: pl.DataFrame, agency: str, workdir: Path,
             handles: pl.DataFrame) -> pl.DataFrame:
    """`targets` with the agency's own quartier (and, at the CAF, its contact person)."""
    if agency == "caf":
        places = caf_places(workdir, handles)
        return targets.drop("quartier").join(places, on="foyer", how="left").with_columns(
            handle=pl.coalesce("contact_handle", "handle"),
            quartier=pl.col("quartier").fill_null(NON_LOCALISE),
        ).drop("contact_handle").select(targets.columns)
    places = cpam_places(workdir, handles)
    return targets.drop("quartier").join(places, on="handle", how="left").with_columns(
        quartier=pl.col("quartier").fill_null(NON_LOCALISE)).select(targets.columns)


def write_local_aggregates(targets: pl.DataFrame, agency: str, out_dir: Path) -> Path:
    """Households listed per rule and quartier (this agency's rules), suppressed, owner-only."""
    rules = [r for r in load_rules() if r.agence == agency]
    hits = targets.select("foyer", "quartier", "liste", pl.col("regles").alias("regle")) \
        .explode("regle")
    return write_aggregates(hits, rules, hits["quartier"].unique().to_list(),
                            Path(out_dir) / AGGREGATES_NAME, private=True)
