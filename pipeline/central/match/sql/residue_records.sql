-- The residue rows of one side as record ids: the agency's Bloom-filter lanes of a row still
-- unlinked after stage 1 (`{side}` is that side's id column in the stage-1 links). A row whose
-- lanes are all zero carries no encoding (nothing to encode at the agency) and is left out.
-- `dates` = 1 when the row's birth date is known (comparisons.yaml residue.date_known, read on
-- its export row `e`), else 0.
SELECT h.id, {lanes}, CAST(CASE WHEN {date_known} THEN 1 ELSE 0 END AS TINYINT) AS dates
FROM {raw} AS x
JOIN {handles} AS h ON h.handle = x.handle
JOIN {data} AS e ON e.id = h.id
WHERE NOT EXISTS (SELECT 1 FROM {links} AS k WHERE k.{side} = h.id)
  AND NOT ({all_zero})
