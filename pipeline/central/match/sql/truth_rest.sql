-- True pairs whose two records reached the probabilistic step, with the blocking rules each
-- meets (b0, b1, ...).
SELECT t.lid, t.rid,
       {rules}
FROM {truth} AS t
JOIN {caf} AS l ON l.id = t.lid
JOIN {cpam} AS r ON r.id = t.rid
WHERE EXISTS (SELECT 1 FROM {caf_rest} AS a WHERE a.id = t.lid)
  AND EXISTS (SELECT 1 FROM {cpam_rest} AS b WHERE b.id = t.rid)
