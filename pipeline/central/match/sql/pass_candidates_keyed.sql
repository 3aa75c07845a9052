-- Deterministic pass `{name}`: candidate pairs among records that no earlier pass linked, for a
-- pass of many equalities `l.A = r.B` (the typo variants: up to ~100). The same pairs as one join
-- per equality, united (pass_candidates.sql), in one join: each side's join columns as one list
-- of (id, column number c, value v), joined on the value, kept where the pair of columns is one
-- of the pass's equalities (`allowed`). `consistent` and `tie` as in pass_join.sql.
WITH lk AS (
{left_keys}
), rk AS (
{right_keys}
), allowed AS (
{allowed}
), pairs AS (
    SELECT DISTINCT lk.id AS lid, rk.id AS rid
    FROM lk
    JOIN rk ON rk.v = lk.v
    JOIN allowed AS a ON a.lc = lk.c AND a.rc = rk.c
)
SELECT
    p.lid,
    p.rid,
    coalesce(({consistent}), FALSE) AS consistent,
    coalesce(({tie_break}), FALSE) AS tie
FROM pairs AS p
JOIN {left} AS l ON l.id = p.lid
JOIN {right} AS r ON r.id = p.rid
