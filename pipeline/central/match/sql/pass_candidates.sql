-- Deterministic pass `{name}`: candidate pairs among records that no earlier pass linked.
-- `consistent` = FALSE marks a conflict (e.g. same NIR, different sex or birth date): reported,
-- never linked. `tie` = the pass's tie-break condition (e.g. same first name for twins).
SELECT DISTINCT lid, rid, consistent, tie
FROM (
{unions}
) AS joined
