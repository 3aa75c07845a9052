"""Deterministic passes (NIR, child token, name + birth date, household), in order, in DuckDB.

Each pass sees only records that no earlier pass linked (views `caf_free` / `cpam_free`), links
pairs that are consistent and unique on both sides, and reports conflicts and ambiguities as
counts. Linked pairs accumulate in the table `links(lid, rid, pass, how)`.
"""

from __future__ import annotations

import duckdb

from pipeline.match.config import Config, Pass
from pipeline.match.db import sql_template

FOYER_COLUMN = "foyer_lie"


def refresh_foyer_map(con: duckdb.DuckDBPyConnection) -> None:
    """CAF household -> the CPAM household most of its linked members were linked into.

    Only a pass whose SQL reads `foyer_lie` pays for it: it then reads the CAF side from the
    view `caf_free_foyer` (caf_free + foyer_lie, null while no member of the household is
    linked). Ties go to the smallest CPAM household handle (deterministic).
    """
    con.execute(sql_template("foyer_map"))
    con.execute("""
        CREATE OR REPLACE TEMP VIEW caf_free_foyer AS
        SELECT l.*, m.foyer_lie
        FROM caf_free AS l LEFT JOIN foyer_map AS m ON m.foyer = l.foyer
    """)


def _reads_foyer(p: Pass) -> bool:
    return any(FOYER_COLUMN in t for t in (*p.joins, p.consistent, p.tie_break or ""))


def create_free_views(con: duckdb.DuckDBPyConnection) -> None:
    """Records not linked yet: what the next pass (or the probabilistic step) may use."""
    con.execute("""
        CREATE OR REPLACE TEMP VIEW caf_free AS
        SELECT l.* FROM caf AS l ANTI JOIN links AS k ON l.id = k.lid
    """)
    con.execute("""
        CREATE OR REPLACE TEMP VIEW cpam_free AS
        SELECT r.* FROM cpam AS r ANTI JOIN links AS k ON r.id = k.rid
    """)


def init_links(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""
        CREATE OR REPLACE TABLE links (
            lid INTEGER, rid INTEGER, pass VARCHAR, how VARCHAR
        )
    """)
    create_free_views(con)


def pass_sql(p: Pass) -> tuple[str, str]:
    """The two statements of a pass, as auditors can read them in link_stats.json."""
    left = "caf_free_foyer" if _reads_foyer(p) else "caf_free"
    unions = "\n    UNION ALL\n".join(
        sql_template("pass_join").format(
            consistent=p.consistent, tie_break=p.tie_break or "FALSE", join=j, left=left
        ).rstrip()
        for j in p.joins
    )
    return (sql_template("pass_candidates").format(name=p.name, unions=unions),
            sql_template("pass_links"))


def run_pass(con: duckdb.DuckDBPyConnection, p: Pass) -> dict[str, int]:
    """Run one pass; append its links; return its funnel counts."""
    cand_sql, links_sql = pass_sql(p)
    if _reads_foyer(p):
        refresh_foyer_map(con)
    con.execute(cand_sql)
    con.execute(links_sql)
    stats = con.execute("""
        SELECT
            (SELECT count(*) FROM pass_cand) AS candidate_pairs,
            (SELECT count(*) FROM pass_cand WHERE NOT consistent) AS conflicts,
            (SELECT count(*) FROM pass_linked) AS linked,
            (SELECT count(*) FROM pass_linked WHERE how = 'tie_break') AS linked_by_tie_break,
            (SELECT count(DISTINCT lid) FROM pass_ok
               WHERE lid NOT IN (SELECT lid FROM pass_linked)) AS ambiguous_caf,
            (SELECT count(DISTINCT rid) FROM pass_ok
               WHERE rid NOT IN (SELECT rid FROM pass_linked)) AS ambiguous_cpam
    """).fetchall()[0]
    con.execute(f"INSERT INTO links SELECT lid, rid, '{p.name}', how FROM pass_linked")
    keys = ("candidate_pairs", "conflicts", "linked", "linked_by_tie_break",
            "ambiguous_caf", "ambiguous_cpam")
    return {k: int(v) for k, v in zip(keys, stats, strict=True)}


def run_passes(con: duckdb.DuckDBPyConnection, config: Config) -> list[dict[str, object]]:
    init_links(con)
    out = []
    for p in config.passes:
        counts = run_pass(con, p)
        out.append({"pass": p.name, "label": p.label, **counts})
    return out
