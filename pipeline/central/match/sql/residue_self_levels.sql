-- Similarity levels of random pairs of two different residue rows of the SAME side: two
-- different persons (a file holds each person once), so their levels are those of non-matching
-- pairs, with no true pair mixed in (a small residue is rich in true pairs: cross-side random
-- pairs would put them in the highest levels' u). Blocked or not: u among all pairs.
SELECT g_bloom, count(*) AS n
FROM (
    SELECT CAST(CASE {bloom_whens} ELSE 0 END AS TINYINT) AS g_bloom
    FROM (
        SELECT {ham} AS ham, bl.dates + br.dates AS dates
        FROM {pairs} AS p
        JOIN {records} AS bl ON bl.id = p.lid
        JOIN {records} AS br ON br.id = p.rid
        WHERE p.lid <> p.rid
    ) AS d
) AS levels
GROUP BY g_bloom
ORDER BY g_bloom
