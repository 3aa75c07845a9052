-- The consistent candidate pairs, with how many consistent candidates each side has.
SELECT
    lid, rid, tie,
    count(*) OVER (PARTITION BY lid) AS n_l,
    count(*) OVER (PARTITION BY rid) AS n_r
FROM {candidates}
WHERE consistent
