-- link_explanations.parquet: waterfall data, one row per linked or reviewed pair (wide: one
-- column pair per comparison). match_weight = prior_weight + the sum of the *_weight columns.
-- In the file's order (handles), so that the writer need not sort it again.
SELECT l.handle AS caf_handle, r.handle AS cpam_handle,
       coalesce(k.pass, 'revue') AS pass, s.w AS match_weight,
       {columns}
FROM {scored} AS s
JOIN {caf_handles} AS l ON l.id = s.lid
JOIN {cpam_handles} AS r ON r.id = s.rid
LEFT JOIN {links} AS k ON k.lid = s.lid AND k.rid = s.rid
ORDER BY caf_handle, cpam_handle
