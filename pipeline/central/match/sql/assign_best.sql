-- One round of the one-to-one assignment: keep the pairs that are the best remaining pair of both
-- their CAF record and their CPAM record, ordering by (weight DESC, lid, rid). Repeating rounds
-- on what is left (assign_rest.sql) until nothing is left gives exactly the greedy assignment by
-- descending weight with that deterministic tie-break (a pair best on both sides can never be
-- displaced by a later choice).
SELECT lid, rid, w
FROM (
    SELECT
        lid, rid, w,
        row_number() OVER (PARTITION BY lid ORDER BY w DESC, rid) AS rank_l,
        row_number() OVER (PARTITION BY rid ORDER BY w DESC, lid) AS rank_r
    FROM {left}
) AS ranked
WHERE rank_l = 1 AND rank_r = 1
