-- links.parquet: handles, pass and weights (never a token).
-- In the file's order (handles), so that the writer need not sort it again.
SELECT l.handle AS caf_handle, r.handle AS cpam_handle{extra}, k.pass,
       s.w AS match_weight
FROM {links} AS k
JOIN {caf_handles} AS l ON l.id = k.lid
JOIN {cpam_handles} AS r ON r.id = k.rid
JOIN {scored} AS s ON s.lid = k.lid AND s.rid = k.rid
ORDER BY caf_handle, cpam_handle
