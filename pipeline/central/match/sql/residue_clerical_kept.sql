-- Stage-1 clerical pairs the residue stage did not score (a row without an encoding: opposed or
-- not sent) and whose rows it neither linked nor put in review: they stay in review as they were.
SELECT c.lid, c.rid
FROM {clerical} AS c
WHERE NOT EXISTS (SELECT 1 FROM {candidates} AS x WHERE x.lid = c.lid AND x.rid = c.rid)
  AND NOT EXISTS (SELECT 1 FROM {assigned} AS a WHERE a.lid = c.lid)
  AND NOT EXISTS (SELECT 1 FROM {assigned} AS a WHERE a.rid = c.rid)
