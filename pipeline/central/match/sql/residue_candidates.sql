-- Residue candidates: the LSH pairs (source 0) and every stage-1 clerical pair whose two rows
-- were encoded (source 1 when only the clerical band gives it), each pair once.
SELECT lid, rid, CAST(min(source) AS SMALLINT) AS source
FROM (
    SELECT lid, rid, 0 AS source FROM {lsh}
    UNION ALL
    SELECT c.lid, c.rid, 1 AS source
    FROM {clerical} AS c
    WHERE EXISTS (SELECT 1 FROM {res_l} AS x WHERE x.id = c.lid)
      AND EXISTS (SELECT 1 FROM {res_r} AS y WHERE y.id = c.rid)
) AS u
GROUP BY lid, rid
