-- Weight of every pair written out: the stage-1 pairs, then the residue pairs the residue
-- assignment kept (links and review band).
SELECT lid, rid, w FROM {all_scored}
UNION ALL
SELECT s.lid, s.rid, s.w
FROM {scored} AS s
WHERE EXISTS (SELECT 1 FROM {assigned} AS a WHERE a.lid = s.lid AND a.rid = s.rid)
