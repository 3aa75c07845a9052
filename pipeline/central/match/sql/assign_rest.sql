-- What the next round may still assign: pairs sharing neither record with this round's choices.
SELECT a.lid, a.rid, a.w
FROM {left} AS a
WHERE NOT EXISTS (SELECT 1 FROM {best} AS b WHERE b.lid = a.lid)
  AND NOT EXISTS (SELECT 1 FROM {best} AS b WHERE b.rid = a.rid)
