-- Insured figures of detect_stats.json (assures).
SELECT count(*) AS assures_cpam,
       count(*) FILTER (WHERE opposition) AS assures_exclus_opposition
FROM {assures_cpam}
