-- Handles of the rows stage 1 linked: the residue requests are every other (non-opposed) row.
SELECT l.handle AS caf_handle, r.handle AS cpam_handle
FROM {links} AS k
JOIN {caf_handles} AS l ON l.id = k.lid
JOIN {cpam_handles} AS r ON r.id = k.rid
