-- The residue requests of one side (stage 1): the handles of its rows stage 1 left unlinked (the
-- review band included) and not opposed, with their provider. `{side}` is that side's id column
-- in the stage-1 links; by id, not by handle (handles are unique per side, checked on loading).
SELECT h.handle, {provider} AS provider
FROM {handles} AS h
WHERE NOT EXISTS (SELECT 1 FROM {links} AS k WHERE k.{side} = h.id)
  AND NOT {opposed}
