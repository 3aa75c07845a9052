-- How many pairs of `{pairs}` are true pairs.
SELECT count(*) AS n
FROM {pairs} AS k
WHERE EXISTS (SELECT 1 FROM {truth} AS t WHERE t.lid = k.lid AND t.rid = k.rid)
