-- The true pairs of the truth file as record ids (a pair naming an unknown handle drops out,
-- and the caller counts it).
SELECT DISTINCT l.id AS lid, r.id AS rid
FROM {pairs} AS t
JOIN {caf_handles} AS l ON l.handle = t.caf_handle
JOIN {cpam_handles} AS r ON r.handle = t.cpam_handle
