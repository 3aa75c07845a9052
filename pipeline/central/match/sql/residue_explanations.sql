-- link_explanations.parquet rows of the residue stage: one per pair it linked or put in review,
-- with each comparison's level and weight (match_weight = prior_weight + the *_weight columns)
-- and whether the namesake guard kept it from being linked (garde_homonymes).
SELECT l.handle AS caf_handle, r.handle AS cpam_handle,
       coalesce(k.pass, 'revue') AS pass, s.w AS match_weight, s.ham AS bloom_hamming,
       s.guarded = 1 AS garde_homonymes,
       {columns}
FROM {scored} AS s
JOIN {assigned} AS a ON a.lid = s.lid AND a.rid = s.rid
JOIN {caf_handles} AS l ON l.id = s.lid
JOIN {cpam_handles} AS r ON r.id = s.rid
LEFT JOIN {links} AS k ON k.lid = s.lid AND k.rid = s.rid
