-- clerical_review.parquet: the pairs for clerical review, as handles and weights.
-- In the file's order (handles), so that the writer need not sort it again.
SELECT l.handle AS caf_handle, r.handle AS cpam_handle{extra}, 'revue' AS pass,
       s.w AS match_weight
FROM {clerical} AS c
JOIN {caf_handles} AS l ON l.id = c.lid
JOIN {cpam_handles} AS r ON r.id = c.rid
JOIN {scored} AS s ON s.lid = c.lid AND s.rid = c.rid
ORDER BY caf_handle, cpam_handle
