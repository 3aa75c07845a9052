"""Deterministic passes (NIR, child token, name + birth date, household), in order, on any engine.

Each pass sees only records that no earlier pass linked (their ids: `caf_free_ids_<k>` /
`cpam_free_ids_<k>`, those free before pass k minus its links; of them, the columns the pass
reads: `caf_pass_input` / `cpam_pass_input`), links pairs that are consistent and unique on both
sides, and reports conflicts and ambiguities as counts. Each pass's links are a table of their
own (`links_<k>`); `links` is the view of all of them (nothing is ever inserted or deleted).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.central.engines.base import Engine, Table
from pipeline.central.match.db import render, run, sql_literal, union_all
from pipeline.shared.linkage_model import Config, Pass
from pipeline.shared.providers import AGENCIES

FOYER_COLUMN = "foyer_lie"
FUNNEL_KEYS = ("candidate_pairs", "conflicts", "linked", "linked_by_tie_break",
               "ambiguous_caf", "ambiguous_cpam")


@dataclass(frozen=True)
class PassResult:
    """The links of every pass so far (a view over per-pass tables) and the free records."""

    links: Table
    caf_free: Table
    cpam_free: Table
    funnel: list[dict[str, object]]
    pass_links: tuple[Table, ...]


def _reads_foyer(p: Pass) -> bool:
    return any(FOYER_COLUMN in t for t in (*p.joins, p.consistent, p.tie_break or ""))


# A join that is one equality of a CAF column and a coverage-side column.
_EQUALITY = re.compile(r"\s*l\.(\w+)\s*=\s*r\.(\w+)\s*")
# From this many equalities, a pass's candidates come from one join on the values
# (pass_candidates_keyed.sql) rather than one join per equality: at 1 M x 1 M the typo passes
# (49 to 98 equalities) took 3 to 4 times less; passes of a few joins keep one join each.
KEYED_MIN_JOINS = 10


def _candidates_sql(engine: Engine, p: Pass, left: Table, right: Table) -> str:
    """Candidate pairs of a pass: the pairs of one of its `joins` (comparisons.yaml)."""
    equalities = [_EQUALITY.fullmatch(j) for j in p.joins]
    if len(p.joins) >= KEYED_MIN_JOINS and all(equalities):
        return _keyed_candidates_sql(engine, p, left, right,
                                     [(m.group(1), m.group(2)) for m in equalities if m])
    return _joined_candidates_sql(engine, p, left, right)


def _joined_candidates_sql(engine: Engine, p: Pass, left: Table, right: Table) -> str:
    """Candidate pairs of a pass: one join per `joins` entry, united."""
    unions = "\n    UNION ALL\n".join(
        render(engine, "pass_join", consistent=p.consistent, tie_break=p.tie_break or "FALSE",
               join=j, left=left, right=right).rstrip()
        for j in p.joins
    )
    return render(engine, "pass_candidates", name=p.name, unions=unions)


def _keyed_candidates_sql(engine: Engine, p: Pass, left: Table, right: Table,
                          equalities: list[tuple[str, str]]) -> str:
    """The same candidate pairs as `_candidates_sql`, for a pass of many equalities: each
    side's join columns numbered, one join on the values, the numbered pairs as `allowed`."""
    l_cols = sorted({a for a, _ in equalities})
    r_cols = sorted({b for _, b in equalities})

    def keys(records: Table, cols: list[str]) -> str:
        return "\n    UNION ALL\n".join(
            render(engine, "pass_key_column", c=i, column=col, records=records).rstrip()
            for i, col in enumerate(cols))

    allowed = "\n    UNION ALL\n".join(
        f"    SELECT {l_cols.index(a)} AS lc, {r_cols.index(b)} AS rc" for a, b in equalities)
    return render(engine, "pass_candidates_keyed", name=p.name, left_keys=keys(left, l_cols),
                  right_keys=keys(right, r_cols), allowed=allowed, consistent=p.consistent,
                  tie_break=p.tie_break or "FALSE", left=left, right=right)


# A column a condition reads on one side (`l.tok_nir`, `r.foyer`).
_COLUMN_REF = re.compile(r"\b([lr])\.([A-Za-z_][A-Za-z0-9_]*)")


def _columns(texts: Iterable[str], alias: str) -> set[str]:
    """The columns conditions read on side `alias` ('l': CAF, 'r': coverage side)."""
    return {m.group(2) for t in texts for m in _COLUMN_REF.finditer(t) if m.group(1) == alias}


def _pass_columns(p: Pass, alias: str) -> set[str]:
    """The columns pass `p` reads on side `alias`."""
    cols = _columns((*p.joins, p.consistent, p.tie_break or ""), alias)
    if alias == "l" and _reads_foyer(p):
        cols.add("foyer")  # foyer_lie is looked up from the CAF household (free_with_foyer.sql)
    return cols


def _free_records(engine: Engine, records: Table, free_ids: Table | None, columns: set[str],
                  name: str) -> Table:
    """The free records of one side with only the columns the next step reads: a narrow copy
    (not every token of every free record at each pass) that each of a pass's joins reads (a
    view would replay the filter in each of up to ~100 joins); all records before any link."""
    if free_ids is None:
        return records
    listed = ", ".join(f"t.{c}" for c in ["id", *sorted(columns - {"id"})])
    return engine.intermediate(name, render(engine, "free_records", records=records,
                                            free=free_ids, columns=listed))


def _free_ids(engine: Engine, records: Table, free_ids: Table | None, linked: Table,
              side: str, name: str) -> Table:
    """Ids of the records still free after a pass: those free before it minus its links (a pass
    links free records only, so each pass filters the shrinking id list, not every record
    against every link so far)."""
    return engine.intermediate(name, render(engine, "free_ids", free=free_ids or records,
                                            links=linked, side=side))


def run_pass(engine: Engine, p: Pass, k: int, caf: Table, cpam: Table, links: Table | None,
             caf_free: Table, cpam_free: Table) -> tuple[Table, dict[str, int]]:
    """Run one pass on the free records `caf_free` / `cpam_free` (holding the columns it reads);
    return its links (table `links_<k>`) and its funnel counts."""
    left = caf_free
    if _reads_foyer(p) and links is not None:
        # CAF household -> the CPAM household most of its linked members were linked into
        # (ties: the smallest CPAM household handle); null while no member is linked.
        fmap = run(engine, "foyer_map", "foyer_map", links=links, caf=caf, cpam=cpam,
                   free=caf_free)
        left = engine.view("caf_free_foyer", render(engine, "free_with_foyer", free=caf_free,
                                                    foyer_map=fmap))
    elif _reads_foyer(p):
        left = engine.view("caf_free_foyer", render(engine, "free_without_foyer", free=caf_free))
    cand = engine.create("pass_cand", _candidates_sql(engine, p, left, cpam_free))
    ok = run(engine, "pass_ok", "pass_ok", candidates=cand)
    linked = run(engine, "pass_linked", f"links_{k}", ok=ok, pass_name=sql_literal(p.name))
    stats = engine.rows(render(engine, "pass_funnel", candidates=cand, ok=ok, linked=linked))[0]
    return linked, {key: int(v) for key, v in zip(FUNNEL_KEYS, stats, strict=True)}


def run_passes(engine: Engine, config: Config, caf: Table, cpam: Table) -> PassResult:
    """The passes in order; the free records are tracked as id lists (`caf_free_ids_<k>`, None
    while every record is free) and handed to the probabilistic step with all their columns."""
    links: Table | None = None
    free_ids: tuple[Table | None, Table | None] = (None, None)
    per_pass: list[Table] = []
    funnel: list[dict[str, object]] = []
    for k, p in enumerate(config.passes):
        inputs = tuple(_free_records(engine, records, ids, _pass_columns(p, alias),
                                     f"{side}_pass_input")
                       for records, ids, alias, side in zip((caf, cpam), free_ids, "lr",
                                                            AGENCIES, strict=True))
        linked, counts = run_pass(engine, p, k, caf, cpam, links, *inputs)
        per_pass.append(linked)
        links = union_all(engine, "links", per_pass)
        if counts["linked"]:
            spent = free_ids
            free_ids = tuple(_free_ids(engine, records, ids, linked, side, f"{name}_free_ids_{k}")
                             for records, ids, side, name in zip(
                                 (caf, cpam), free_ids, ("lid", "rid"), AGENCIES,
                                 strict=True))
            for table in spent:
                if table is not None:
                    engine.drop(table)
        funnel.append({"pass": p.name, "label": p.label, **counts})
    # What the probabilistic step reads of the records left: their ids and blocking columns.
    blocking = [b.on for b in config.blocking_rules]
    caf_free, cpam_free = (
        _free_records(engine, records, ids, _columns(blocking, alias), f"{side}_free")
        for records, ids, alias, side in zip((caf, cpam), free_ids, "lr", AGENCIES,
                                             strict=True))
    for side in AGENCIES:
        engine.drop(Table(f"{side}_pass_input"))
    if links is None:  # a model without deterministic passes: an empty link table
        links = run(engine, "no_links", "links")
    return PassResult(links, caf_free, cpam_free, funnel, tuple(per_pass))
