-- Residue candidate pairs from the LSH bands: a CAF and a CPAM residue row sharing the value of
-- at least one band. A band value held by more than {max_bucket} rows of one side says nothing
-- about identity (e.g. rows with almost nothing encoded) and is left out.
WITH kl AS (
    SELECT id, band, k, count(*) OVER (PARTITION BY band, k) AS n FROM {keys_l}
), kr AS (
    SELECT id, band, k, count(*) OVER (PARTITION BY band, k) AS n FROM {keys_r}
)
SELECT DISTINCT kl.id AS lid, kr.id AS rid
FROM kl
JOIN kr ON kl.band = kr.band AND kl.k = kr.k
WHERE kl.n <= {max_bucket} AND kr.n <= {max_bucket}
