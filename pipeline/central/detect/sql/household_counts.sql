-- Household figures of detect_stats.json (foyers).
SELECT count(*) AS foyers_caf,
       count(*) FILTER (WHERE opposition) AS foyers_exclus_opposition,
       count(*) FILTER (WHERE NOT opposition AND trouve_cpam) AS foyers_trouves_cpam,
       count(*) FILTER (WHERE NOT opposition AND NOT trouve_cpam) AS foyers_non_trouves_cpam,
       count(*) FILTER (WHERE NOT opposition AND position_plafond_css IS NULL)
           AS foyers_ressources_inconnues,
       count(*) FILTER (WHERE NOT opposition AND css_active) AS foyers_css_active,
       count(*) FILTER (WHERE NOT opposition AND css_a_verifier) AS foyers_statut_css_illisible
FROM {foyers}
