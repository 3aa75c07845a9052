-- One round of the one-to-one assignment: keep the pairs that are the best remaining pair of both
-- their CAF record and their CPAM record, ordering by (weight DESC, lid, rid). Repeating rounds
-- until nothing is left gives exactly the greedy assignment by descending weight with that
-- deterministic tie-break (a pair best on both sides can never be displaced by a later choice).
CREATE OR REPLACE TEMP TABLE assign_best AS
SELECT lid, rid, w
FROM (
    SELECT
        lid, rid, w,
        row_number() OVER (PARTITION BY lid ORDER BY w DESC, rid) AS rank_l,
        row_number() OVER (PARTITION BY rid ORDER BY w DESC, lid) AS rank_r
    FROM assign_left
)
WHERE rank_l = 1 AND rank_r = 1;

INSERT INTO assigned SELECT lid, rid, w FROM assign_best;

DELETE FROM assign_left
WHERE lid IN (SELECT lid FROM assign_best) OR rid IN (SELECT rid FROM assign_best);
