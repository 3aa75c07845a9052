-- What the residue's one-to-one assignment reads: each candidate's weight, capped at {cap}
-- (below the link weight: review at most) when
-- * the pair is under the namesake guard (comparisons.yaml residue.namesake_guard: the same
--   names, another birth date — what the passes' twin guard refuses) and the two households are
--   not already linked to each other, or
-- * its filters are less similar than residue.link_min_similarity (Hamming distance above
--   {max_ham}): below it strangers outnumber true pairs whatever the model says.
SELECT lid, rid,
       CASE WHEN ((guarded = 1 AND g_foyer_contexte <> 2) OR ham > {max_ham}) AND w > {cap}
            THEN {cap} ELSE w END AS w
FROM {scored}
