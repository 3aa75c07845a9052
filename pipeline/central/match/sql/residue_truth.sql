-- Residue quality (synthetic data only): true pairs whose two rows reached the residue stage,
-- and how many of them are among its candidates.
SELECT count(*) AS reaching,
       sum(CASE WHEN EXISTS (SELECT 1 FROM {candidates} AS c WHERE c.lid = t.lid AND c.rid = t.rid)
                THEN 1 ELSE 0 END) AS candidates
FROM {truth} AS t
WHERE EXISTS (SELECT 1 FROM {res_l} AS x WHERE x.id = t.lid)
  AND EXISTS (SELECT 1 FROM {res_r} AS y WHERE y.id = t.rid)
