-- The linked household view: one row per CAF foyer, everything the rules look at
-- (materialised as a table: every rule and the statistics read it).
-- Runs after members.sql and ceilings.sql. Inputs: ranked_members, household_ceilings,
-- housing_forfait, run_params, cpam, links, caf.

CREATE OR REPLACE TEMP TABLE foyers AS
WITH agg AS (
    SELECT
        foyer,
        count(*)::INTEGER                                           AS n,
        count(*) FILTER (WHERE role = 'CJT')::INTEGER               AS nb_cjt,
        count(*) FILTER (WHERE role = 'ENF')::INTEGER               AS nb_enf,
        count(*) FILTER (WHERE role = 'APC')::INTEGER               AS nb_apc,
        count(*) FILTER (WHERE role = 'ENF' AND residence_alternee)::INTEGER AS nb_enf_alternance,
        -- "DEM, CJT, ENF mineur, ENF mineur alt." in rank order (no identifier, no age)
        string_agg(coalesce(role, '?') || CASE WHEN mineur THEN ' mineur' ELSE '' END
                   || CASE WHEN alterne_mineur THEN ' alt.' ELSE '' END, ', ' ORDER BY rang) AS composition,
        -- the contact person: the allocataire, else the first-ranked member
        arg_min(handle, rang)                                 AS handle,
        coalesce(arg_min(quartier, rang) FILTER (WHERE quartier IS NOT NULL),
                 'NON_LOCALISE')                                    AS quartier,
        arg_min(code_commune, rang) FILTER (WHERE code_commune IS NOT NULL)     AS code_commune,
        arg_min(situation_familiale, rang) FILTER (WHERE situation_familiale IS NOT NULL)
                                                                    AS situation_familiale,
        arg_min(ressources_12m, rang) FILTER (WHERE ressources_12m IS NOT NULL) AS ressources_12m,
        arg_min(prestations, rang) FILTER (WHERE prestations IS NOT NULL)       AS prestations,
        -- found at the CPAM: an adult of the foyer is linked
        coalesce(bool_or(role IN ('DEM', 'CJT') AND cpam_handle IS NOT NULL), false)  AS trouve_cpam,
        count(cpam_handle)::INTEGER                                 AS nb_lies,
        coalesce(bool_or(css_en_cours), false)                      AS css_active,
        max(css_fin) FILTER (WHERE css_en_cours)                    AS css_fin_active,
        max(css_fin) FILTER (WHERE css IS NOT NULL AND css <> 'NON') AS css_fin_derniere,
        max(css_fin) FILTER (WHERE css IS NOT NULL AND css <> 'NON'
                                   AND css_fin < (SELECT date_reference FROM run_params)) AS css_fin_passee,
        -- opposition: any member opposed at the CAF, or linked to an opposed CPAM row
        bool_or(opposition_caf OR opposition_cpam)                  AS opposition
    FROM ranked_members
    GROUP BY foyer
)
SELECT
    a.*,
    coalesce(a.prestations, []::VARCHAR[])                          AS prestations_liste,
    list_has_any(coalesce(a.prestations, []::VARCHAR[]), ['RSA', 'RSAM'])        AS a_rsa,
    list_contains(coalesce(a.prestations, []::VARCHAR[]), 'PPA')                 AS a_ppa,
    list_contains(coalesce(a.prestations, []::VARCHAR[]), 'AAH')                 AS a_aah,
    list_contains(coalesce(a.prestations, []::VARCHAR[]), 'AL')                  AS a_al,
    -- CSS resources: declared resources (RSA, PPA, housing aid excluded upstream)
    -- + the housing forfait x 12 when housing aid is paid
    a.ressources_12m
        + CASE WHEN list_contains(coalesce(a.prestations, []::VARCHAR[]), 'AL')
               THEN f.forfait_annuel ELSE 0 END                     AS ressources_css,
    CASE WHEN list_contains(coalesce(a.prestations, []::VARCHAR[]), 'AL')
         THEN f.forfait_annuel ELSE 0 END                           AS forfait_logement,
    h.plafond_gratuite,
    h.plafond_participation,
    CASE WHEN a.css_active THEN 'en cours jusqu''au ' || strftime(a.css_fin_active, '%d/%m/%Y')
         WHEN a.css_fin_passee IS NOT NULL THEN 'terminée le ' || strftime(a.css_fin_passee, '%d/%m/%Y')
         ELSE 'jamais ouverte' END                                  AS echeance_css,
    r.date_reference
FROM agg AS a
CROSS JOIN run_params AS r
JOIN household_ceilings AS h ON h.foyer = a.foyer
LEFT JOIN housing_forfait AS f ON f.taille = a.n;

-- CPAM side (reverse rule): one row per ASSURE with its CAF situation when linked.
CREATE OR REPLACE TEMP TABLE assures_cpam AS
SELECT
    p.handle,
    p.foyer,
    p.code_commune,
    p.css,
    p.css_debut,
    p.css_fin,
    (p.css = 'GRATUITE' AND p.css_debut <= r.date_reference AND r.date_reference <= p.css_fin)
                                                                    AS css_gratuite_active,
    l.caf_handle IS NOT NULL                                        AS lie_caf,
    f.foyer                                                         AS foyer_caf,
    coalesce(f.a_rsa OR f.a_ppa, false)                             AS a_minima,
    -- opposition: the person, anyone of their CPAM group, or anyone of the linked CAF foyer
    coalesce(p.opposition, false)
        OR coalesce(bool_or(coalesce(p.opposition, false)) OVER (PARTITION BY p.foyer), false)
        OR coalesce(f.opposition, false)                            AS opposition,
    coalesce(f.quartier, 'NON_LOCALISE')                            AS quartier,
    CASE WHEN l.caf_handle IS NULL THEN 'inconnu(e) de la CAF'
         ELSE 'ni RSA ni prime d''activité versés par la CAF' END    AS situation_caf,
    r.date_reference
FROM cpam AS p
CROSS JOIN run_params AS r
LEFT JOIN links AS l ON l.cpam_handle = p.handle
LEFT JOIN caf AS c ON c.handle = l.caf_handle
LEFT JOIN foyers AS f ON f.foyer = c.foyer
QUALIFY p.role = 'ASSURE';
