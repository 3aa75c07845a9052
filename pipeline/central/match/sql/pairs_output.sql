-- The three pair files of a run without residue in one pass (links.parquet,
-- clerical_review.parquet, link_explanations.parquet): every scored pair written out, i.e. the
-- links and the review band, with its handles, weights and levels (the columns of
-- explanations.sql), then whether it is a link and the coverage side's provider when known.
-- Unordered: the writer sorts the rows once on the handles (each pair once, so the order is the
-- same whatever order the engine returns them in).
SELECT l.handle AS caf_handle, r.handle AS cpam_handle,
       coalesce(k.pass, 'revue') AS pass, s.w AS match_weight,
       {columns},
       k.lid IS NOT NULL AS is_link{extra}
FROM {scored} AS s
JOIN {caf_handles} AS l ON l.id = s.lid
JOIN {cpam_handles} AS r ON r.id = s.rid
LEFT JOIN {links} AS k ON k.lid = s.lid AND k.rid = s.rid
