"""Small-cell suppression for a two-way count table with its margins.

Primary suppression hides every cell (margins included) with 1..threshold-1 people. Secondary
suppression then makes every hidden cell non-derivable from what is published: with
y = x inside, -x on the margins and +x for the grand total, every row and column of the
extended (R+1)x(C+1) table sums to zero, so the hidden cells are determined exactly when they
are a *bridge* of the bipartite graph "row -- hidden cell -- column" (a cell on a cycle can move
by +t/-t around the cycle without changing any published figure). We add the smallest cell that
closes a cycle through each bridge until there is none. Small tables only: Python is fine here.

The threshold is declared here once (SMALL_CELL) and read at call time by every writer of a
published count (aggregates.csv, feedback diffusable files, agency statistics, the report), so
the French labels (« < 11 ») are formatted from it and can never disagree with the suppression.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

PUBLISHED, PRIMARY, SECONDARY = "publie", "primaire", "secondaire"

# DGFiP / CNIS statistical-secrecy threshold: a count of 1..SMALL_CELL-1 people is never
# published (docs/CONTEXT.md). The only declaration; callers read it through threshold().
SMALL_CELL = 11
SECONDARY_LABEL = "s"
TOTAL = "Total"


def threshold(value: int | None = None) -> int:
    """`value` if given, else the project's small-cell threshold (read now, not at import)."""
    return SMALL_CELL if value is None else int(value)


def primary_label(value: int | None = None) -> str:
    """The published label of a primary-suppressed cell: « < 11 » for the default threshold."""
    return f"< {threshold(value)}"


def is_small(n: object, value: int | None = None) -> bool:
    """Whether the count `n` must not be published (1..threshold-1); non-integers are not."""
    return isinstance(n, int) and not isinstance(n, bool) and 0 < n < threshold(value)


def mask_count(n: object, value: int | None = None) -> object:
    """`n` unchanged unless it is a small count, then its primary label."""
    return primary_label(value) if is_small(n, value) else n


@dataclass(frozen=True)
class SuppressedTable:
    """Extended table (last row = column totals, last column = row totals) and cell status."""

    values: list[list[int]]
    status: list[list[str]]
    threshold: int = SMALL_CELL

    def label(self, i: int, j: int) -> str:
        s = self.status[i][j]
        if s == PRIMARY:
            return primary_label(self.threshold)
        if s == SECONDARY:
            return SECONDARY_LABEL
        return str(self.values[i][j])


def extend(table: Sequence[Sequence[int]]) -> list[list[int]]:
    """Append row totals (last column) and column totals + grand total (last row)."""
    rows = [[*map(int, r), sum(map(int, r))] for r in table]
    ncol = len(rows[0]) if rows else 1
    rows.append([sum(r[j] for r in rows) for j in range(ncol)])
    return rows


def _components(nr: int, nc: int, edges: set[tuple[int, int]]) -> list[int]:
    """Connected component id of each node (rows 0..nr-1, columns nr..nr+nc-1)."""
    parent = list(range(nr + nc))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in edges:
        ra, rb = find(i), find(nr + j)
        if ra != rb:
            parent[ra] = rb
    return [find(a) for a in range(nr + nc)]


def exposed_cells(status: list[list[str]]) -> list[tuple[int, int]]:
    """Hidden cells that the published figures determine exactly (bridges), sorted.

    Iterative Tarjan bridge search on the bipartite graph (rows 0..nr-1, columns nr..),
    linear in the number of hidden cells.
    """
    nr, nc = len(status), len(status[0])
    adj: list[list[tuple[int, int]]] = [[] for _ in range(nr + nc)]
    for i in range(nr):
        for j in range(nc):
            if status[i][j] != PUBLISHED:
                edge = i * nc + j
                adj[i].append((nr + j, edge))
                adj[nr + j].append((i, edge))
    disc = [-1] * (nr + nc)
    low = [0] * (nr + nc)
    bridges: list[tuple[int, int]] = []
    clock = 0
    for root in range(nr + nc):
        if disc[root] != -1 or not adj[root]:
            continue
        disc[root] = low[root] = clock
        clock += 1
        stack = [(root, -1, iter(adj[root]))]
        while stack:
            node, via, it = stack[-1]
            advanced = False
            for nxt, edge in it:
                if edge == via:
                    continue
                if disc[nxt] == -1:
                    disc[nxt] = low[nxt] = clock
                    clock += 1
                    stack.append((nxt, edge, iter(adj[nxt])))
                    advanced = True
                    break
                low[node] = min(low[node], disc[nxt])
            if advanced:
                continue
            stack.pop()
            if stack:
                parent = stack[-1][0]
                low[parent] = min(low[parent], low[node])
                if low[node] > disc[parent]:
                    bridges.append(divmod(via, nc))
    return sorted(bridges)


def suppress(table: Sequence[Sequence[int]], limit: int | None = None) -> SuppressedTable:
    """Primary + secondary suppression of `table` (rows x columns of counts) and its margins.

    `limit` defaults to the project's threshold (SMALL_CELL)."""
    limit = threshold(limit)
    if not table or not table[0]:
        return SuppressedTable(extend(table) if table else [[0]], [[PUBLISHED]], limit)
    values = extend(table)
    nr, nc = len(values), len(values[0])
    status = [
        [PRIMARY if 0 < values[i][j] < limit else PUBLISHED for j in range(nc)]
        for i in range(nr)
    ]
    while True:
        exposed = exposed_cells(status)
        if not exposed:
            return SuppressedTable(values, status, limit)
        a, b = _secondary_choice(values, status, exposed[0])
        status[a][b] = SECONDARY


def _secondary_choice(
    values: list[list[int]], status: list[list[str]], cell: tuple[int, int]
) -> tuple[int, int]:
    """The published cell to hide next so that the exposed `cell` ends up on a cycle.

    Without `cell`, its row and its column fall in two components. Preference: a cell joining
    those components (closes a cycle at once), else one in the same row or column, else one
    touching either component, else any; then a non-empty cell, an inner cell rather than a
    total, the smallest count, the first position (determinism). Each call hides one more cell
    and a fully hidden table (>= 2 x 2) has no bridge, so the loop in `suppress` terminates.
    """
    i, j = cell
    nr, nc = len(values), len(values[0])
    hidden = {(a, b) for a in range(nr) for b in range(nc) if status[a][b] != PUBLISHED}
    comp = _components(nr, nc, hidden - {cell})
    side_i, side_j = comp[i], comp[nr + j]

    def cost(c: tuple[int, int]) -> tuple[int, int, int, int, int]:
        a, b = c
        if {comp[a], comp[nr + b]} == {side_i, side_j}:
            tier = 0
        elif a == i or b == j:
            tier = 1
        elif {comp[a], comp[nr + b]} & {side_i, side_j}:
            tier = 2
        else:
            tier = 3
        v = values[a][b]
        margin = int(a == nr - 1 or b == nc - 1)
        return (tier, int(v == 0), margin, v, a * nc + b)

    published = [(a, b) for a in range(nr) for b in range(nc) if status[a][b] == PUBLISHED]
    if not published:  # unreachable for a table with >= 2 rows and 2 columns
        raise AssertionError("suppression secondaire impossible")
    return min(published, key=cost)


def suppressed_frame(
    table_name: str,
    rule_ids: Sequence[str],
    quartiers: Sequence[str],
    matrix: list[list[int]],
    threshold: int | None = None,
) -> pl.DataFrame:
    """One suppressed table as published rows: tableau, regle, a column per quartier, Total."""
    res = suppress(matrix, threshold)
    labels = [*rule_ids, TOTAL]
    rows = []
    for i, label in enumerate(labels):
        rows.append([table_name, label] + [res.label(i, j) for j in range(len(quartiers) + 1)])
    return pl.DataFrame(rows, schema=["tableau", "regle", *quartiers, TOTAL], orient="row")
