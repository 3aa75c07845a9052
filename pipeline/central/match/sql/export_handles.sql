-- One export (or the union of several, in order) as two working tables keyed by `id` = the
-- row's position in the input (0-based, continuing across files): every later tie-break is by
-- id, so reruns on the same files give the same links whatever the engine and thread count.
-- This one, {{table}}_handles(id, handle[, fournisseur][, opposition]), is only used to write the
-- outputs and the residue requests, and to name a bad row.
SELECT CAST(id AS INTEGER) AS id, handle{extra}
FROM {source}
