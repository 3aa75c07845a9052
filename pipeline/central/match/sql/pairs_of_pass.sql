-- Agreement levels of the links one pass made (EM's prior for m comes from the identifier pass).
SELECT g.*
FROM {gammas} AS g
JOIN {links} AS d ON d.lid = g.lid AND d.rid = g.rid
WHERE d.pass = {pass_name}
