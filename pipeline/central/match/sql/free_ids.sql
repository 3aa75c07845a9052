-- Ids of the records of one side still free after a pass: `{free}` are the records (or the ids)
-- free before it and `{links}` that pass's links (a pass links free records only, so this is
-- every record minus every link so far); `{side}` is the id column of that side in the links.
SELECT t.id
FROM {free} AS t
WHERE NOT EXISTS (SELECT 1 FROM {links} AS k WHERE k.{side} = t.id)
