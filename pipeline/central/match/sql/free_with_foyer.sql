-- Free CAF records with `foyer_lie`: the CPAM household their household was linked into (null
-- while no member of the household is linked).
SELECT l.*, m.foyer_lie
FROM {free} AS l LEFT JOIN {foyer_map} AS m ON m.foyer = l.foyer
