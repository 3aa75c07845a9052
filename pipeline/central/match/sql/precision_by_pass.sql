-- Links and true links per pass.
SELECT k.pass, count(*) AS n, count(t.lid) AS tp
FROM {links} AS k LEFT JOIN {truth} AS t ON k.lid = t.lid AND k.rid = t.rid
GROUP BY k.pass
ORDER BY k.pass
