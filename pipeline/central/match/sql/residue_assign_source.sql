-- What the residue's one-to-one assignment reads: each candidate's weight, except that a pair
-- under the namesake guard (comparisons.yaml residue.namesake_guard: the same names, another
-- birth date — what the passes' twin guard refuses) cannot be linked on its filters alone: its
-- weight is capped at {cap} (below the link weight: review at most) unless the two households
-- are already linked to each other.
SELECT lid, rid,
       CASE WHEN guarded = 1 AND g_foyer_contexte <> 2 AND w > {cap} THEN {cap} ELSE w END AS w
FROM {scored}
