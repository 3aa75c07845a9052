"""Small-cell suppression for a two-way count table with its margins.

Primary suppression hides every cell (margins included) with 1..threshold-1 people. Secondary
suppression then makes every hidden cell non-derivable from what is published: with
y = x inside, -x on the margins and +x for the grand total, every row and column of the
extended (R+1)x(C+1) table sums to zero, so the hidden cells are determined exactly when they
are a *bridge* of the bipartite graph "row -- hidden cell -- column" (a cell on a cycle can move
by +t/-t around the cycle without changing any published figure). We add the smallest cell that
closes a cycle through each bridge until there is none. Small tables only: Python is fine here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PUBLISHED, PRIMARY, SECONDARY = "publie", "primaire", "secondaire"


@dataclass(frozen=True)
class SuppressedTable:
    """Extended table (last row = column totals, last column = row totals) and cell status."""

    values: list[list[int]]
    status: list[list[str]]

    def label(self, i: int, j: int) -> str:
        s = self.status[i][j]
        if s == PRIMARY:
            return "< 11"
        if s == SECONDARY:
            return "s"
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


def suppress(table: Sequence[Sequence[int]], threshold: int = 11) -> SuppressedTable:
    """Primary + secondary suppression of `table` (rows x columns of counts) and its margins."""
    if not table or not table[0]:
        return SuppressedTable(extend(table) if table else [[0]], [[PUBLISHED]])
    values = extend(table)
    nr, nc = len(values), len(values[0])
    status = [
        [PRIMARY if 0 < values[i][j] < threshold else PUBLISHED for j in range(nc)]
        for i in range(nr)
    ]
    while True:
        exposed = exposed_cells(status)
        if not exposed:
            return SuppressedTable(values, status)
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
