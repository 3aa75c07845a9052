-- Pairs the one-to-one assignment considers: those at or above the review weight.
SELECT lid, rid, w FROM {source} WHERE w >= {min_weight}
