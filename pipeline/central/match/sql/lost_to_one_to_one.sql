-- Scored pairs above the link weight that the one-to-one assignment did not keep.
SELECT count(*) AS n
FROM {scored} AS s
WHERE s.w >= {link_weight}
  AND NOT EXISTS (SELECT 1 FROM {assigned} AS a WHERE a.lid = s.lid AND a.rid = s.rid)
