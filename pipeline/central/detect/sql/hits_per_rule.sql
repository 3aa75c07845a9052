-- Households per rule (detect_stats.json, regles_appliquees).
SELECT regle, count(*) AS n FROM {hits} GROUP BY regle
