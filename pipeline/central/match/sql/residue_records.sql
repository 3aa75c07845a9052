-- The residue rows of one side as record ids: the agency's Bloom-filter lanes of a row still
-- unlinked after stage 1 (`{side}` is that side's id column in the stage-1 links). A row whose
-- lanes are all zero carries no encoding (nothing to encode at the agency) and is left out.
-- `pop` = bits set in the filter: a low count means little was encoded (a blank birth date).
SELECT h.id, {lanes}, {pop} AS pop
FROM {raw} AS x
JOIN {handles} AS h ON h.handle = x.handle
WHERE NOT EXISTS (SELECT 1 FROM {links} AS k WHERE k.{side} = h.id)
  AND NOT ({all_zero})
