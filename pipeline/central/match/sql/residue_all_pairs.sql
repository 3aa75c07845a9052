-- A residue small enough (residue.full_comparison_max_pairs) is compared in full: every CAF
-- residue row with every CPAM residue row, instead of the LSH bands.
SELECT l.id AS lid, r.id AS rid
FROM {res_l} AS l
CROSS JOIN {res_r} AS r
