-- Share of one side's band values (row x band) held by more than {max_bucket} rows: the LSH pairs
-- leave those out (residue_lsh_pairs.sql). Near 1, almost no pair is compared: the bands are too
-- narrow for the size of the residue.
SELECT coalesce(avg(CASE WHEN n > {max_bucket} THEN 1.0 ELSE 0.0 END), 0.0)
FROM (SELECT count(*) OVER (PARTITION BY band, k) AS n FROM {keys}) AS c
