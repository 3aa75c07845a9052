-- Records of one side that no pass linked yet: what the next pass (or the probabilistic step)
-- may use. `{records}` are the records free before a pass and `{links}` that pass's links (a pass
-- links free records only, so this is every record minus every link so far); `{side}` is the id
-- column of that side in the links.
SELECT t.*
FROM {records} AS t
WHERE NOT EXISTS (SELECT 1 FROM {links} AS k WHERE k.{side} = t.id)
