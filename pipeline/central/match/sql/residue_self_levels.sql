-- Similarity levels of random pairs of two different residue rows of the SAME side: two
-- different persons (a file holds each person once), so their levels are those of non-matching
-- pairs, with no true pair mixed in (the residue is rich in true pairs: cross-side random pairs
-- would put them in the highest levels' u). Only pairs sharing an LSH band count ({in_block}):
-- u is that of the non-matching pairs among the candidates.
SELECT g_bloom, count(*) AS n
FROM (
    SELECT CAST(CASE {bloom_whens} ELSE 0 END AS TINYINT) AS g_bloom
    FROM (
        SELECT {ham} AS ham, least(bl.pop, br.pop) AS pop_min
        FROM {pairs} AS p
        JOIN {records} AS bl ON bl.id = p.lid
        JOIN {records} AS br ON br.id = p.rid
        WHERE p.lid <> p.rid AND ({in_block})
    ) AS d
) AS levels
GROUP BY g_bloom
ORDER BY g_bloom
