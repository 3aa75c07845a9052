-- Residue candidate pairs from the LSH bands: a CAF and a CPAM residue row sharing the value of
-- at least one band and whose filters are at least as similar as the lowest similarity level
-- (Hamming distance <= {max_ham}: a pair below it is `else` whether a band gave it or not, so it
-- is counted with the pairs no band gave; filtering before DISTINCT keeps the memory to the
-- similar pairs). A band value held by more than {max_bucket} rows of one side says nothing
-- about identity (e.g. rows with almost nothing encoded) and is left out.
WITH kl AS (
    SELECT id, band, k, count(*) OVER (PARTITION BY band, k) AS n FROM {keys_l}
), kr AS (
    SELECT id, band, k, count(*) OVER (PARTITION BY band, k) AS n FROM {keys_r}
)
SELECT DISTINCT p.lid, p.rid
FROM (
    SELECT kl.id AS lid, kr.id AS rid
    FROM kl
    JOIN kr ON kl.band = kr.band AND kl.k = kr.k
    WHERE kl.n <= {max_bucket} AND kr.n <= {max_bucket}
) AS p
JOIN {res_l} AS bl ON bl.id = p.lid
JOIN {res_r} AS br ON br.id = p.rid
WHERE {ham} <= {max_ham}
