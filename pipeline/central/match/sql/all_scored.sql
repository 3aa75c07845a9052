-- Every pair written out with its weights: the deterministic links, then the candidate pairs
-- that became links or go to clerical review.
SELECT {columns} FROM {det_scored}
UNION ALL
SELECT {columns} FROM {cand_scored} AS s
WHERE EXISTS (SELECT 1 FROM {links} AS k WHERE k.lid = s.lid AND k.rid = s.rid)
UNION ALL
SELECT {columns} FROM {cand_scored} AS s
WHERE EXISTS (SELECT 1 FROM {clerical} AS c WHERE c.lid = s.lid AND c.rid = s.rid)
