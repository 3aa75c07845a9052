-- The linked household view: one row per CAF foyer, everything the rules look at
-- (materialised as a table: every rule and the statistics read it).
-- Runs after members.sql and ceilings.sql. Inputs: ranked_members, household_ceilings,
-- housing_forfait, run_params, cpam, links, caf.

CREATE OR REPLACE TEMP TABLE foyers AS
WITH agg AS (
    SELECT
        foyer,
        -- the CSS household (art. R.861-2 CSS): allocataire, spouse, dependants under 25
        count(*) FILTER (WHERE a_charge_css)::INTEGER               AS n,
        count(*)::INTEGER                                           AS nb_personnes_dossier,
        count(*) FILTER (WHERE NOT a_charge_css)::INTEGER           AS nb_hors_foyer_css,
        count(*) FILTER (WHERE role = 'CJT')::INTEGER               AS nb_cjt,
        count(*) FILTER (WHERE role = 'ENF' AND a_charge_css)::INTEGER AS nb_enf,
        count(*) FILTER (WHERE role = 'APC' AND a_charge_css)::INTEGER AS nb_apc,
        count(*) FILTER (WHERE role = 'ENF' AND residence_alternee AND a_charge_css)::INTEGER
                                                                    AS nb_enf_alternance,
        -- "DEM, CJT, ENF mineur, ENF mineur alt., APC hors foyer CSS" in dossier order
        -- (no identifier, no age)
        string_agg(coalesce(role, '?') || CASE WHEN mineur THEN ' mineur' ELSE '' END
                   || CASE WHEN alterne_mineur THEN ' alt.' ELSE '' END
                   || CASE WHEN a_charge_css THEN '' ELSE ' hors foyer CSS' END,
                   ', ' ORDER BY rang_dossier)                      AS composition,
        -- the contact person: the allocataire, else the first member of the dossier
        arg_min(handle, rang_dossier)                               AS handle,
        coalesce(arg_min(quartier, rang_dossier) FILTER (WHERE quartier IS NOT NULL),
                 'NON_LOCALISE')                                    AS quartier,
        arg_min(code_commune, rang_dossier) FILTER (WHERE code_commune IS NOT NULL) AS code_commune,
        arg_min(situation_familiale, rang_dossier) FILTER (WHERE situation_familiale IS NOT NULL)
                                                                    AS situation_familiale,
        arg_min(ressources_12m, rang_dossier) FILTER (WHERE ressources_12m IS NOT NULL)
                                                                    AS ressources_12m,
        arg_min(prestations, rang_dossier) FILTER (WHERE prestations IS NOT NULL) AS prestations,
        -- optional dossier fields (null when the CAF extract does not carry them)
        arg_min(aah_taux_plein, rang_dossier) FILTER (WHERE aah_taux_plein IS NOT NULL)
                                                                    AS aah_taux_plein,
        arg_min(aide_logement_mensuelle, rang_dossier)
            FILTER (WHERE aide_logement_mensuelle IS NOT NULL)      AS aide_logement_mensuelle,
        arg_min(statut_occupation, rang_dossier) FILTER (WHERE statut_occupation IS NOT NULL)
                                                                    AS statut_occupation,
        -- found at the CPAM: an adult of the foyer is linked
        coalesce(bool_or(role IN ('DEM', 'CJT') AND cpam_handle IS NOT NULL), false)  AS trouve_cpam,
        count(cpam_handle)::INTEGER                                 AS nb_lies,
        coalesce(bool_or(css_en_cours), false)                      AS css_active,
        coalesce(bool_or(css_illisible), false)                     AS css_illisible_membre,
        max(css_fin) FILTER (WHERE css_en_cours)                    AS css_fin_active,
        max(css_fin) FILTER (WHERE css IN ('GRATUITE', 'PARTICIPATION')) AS css_fin_derniere,
        max(css_fin) FILTER (WHERE css IN ('GRATUITE', 'PARTICIPATION')
                                   AND css_fin < (SELECT date_reference FROM run_params)) AS css_fin_passee,
        max(css_fin) FILTER (WHERE css_illisible)                   AS css_fin_illisible,
        -- opposition: any member opposed at the CAF, or linked to an opposed CPAM row
        bool_or(opposition_caf OR opposition_cpam)                  AS opposition
    FROM ranked_members
    GROUP BY foyer
),
flags AS (
    SELECT
        a.*,
        coalesce(a.prestations, []::VARCHAR[])                      AS prestations_liste,
        list_has_any(coalesce(a.prestations, []::VARCHAR[]), ['RSA', 'RSAM']) AS a_rsa,
        list_contains(coalesce(a.prestations, []::VARCHAR[]), 'PPA')          AS a_ppa,
        list_contains(coalesce(a.prestations, []::VARCHAR[]), 'AAH')          AS a_aah,
        list_contains(coalesce(a.prestations, []::VARCHAR[]), 'AL')           AS a_al,
        -- no readable active CSS, but a linked member's CSS status is unreadable: never "no CSS"
        (NOT a.css_active AND a.css_illisible_membre)               AS css_a_verifier
    FROM agg AS a
),
housing AS (
    -- What the housing counts for in CSS resources (art. R.861-5 CSS, docs/LEGAL.md): housing
    -- aid up to the forfait (its real amount when the extract carries it and it is lower); an
    -- owner or a person housed free of charge without housing aid: the forfait; otherwise 0.
    SELECT
        g.foyer,
        CASE WHEN g.a_al THEN least(f.forfait_annuel,
                                    coalesce(12 * g.aide_logement_mensuelle, f.forfait_annuel))
             WHEN g.statut_occupation IN ('PROPRIETAIRE', 'HEBERGE_GRATUIT') THEN f.forfait_annuel
             ELSE 0 END                                             AS forfait_logement
    FROM flags AS g
    LEFT JOIN housing_forfait AS f ON f.taille = g.n
)
SELECT
    g.*,
    -- CSS resources: declared resources (RSA, PPA, housing aid excluded upstream) + housing
    g.ressources_12m + hs.forfait_logement                          AS ressources_css,
    hs.forfait_logement,
    h.plafond_gratuite,
    h.plafond_participation,
    CASE WHEN g.css_active THEN 'en cours jusqu''au ' || strftime(g.css_fin_active, '%d/%m/%Y')
         WHEN g.css_a_verifier THEN 'de statut illisible dans l''extrait CPAM'
             || coalesce(' (fin indiquée : ' || strftime(g.css_fin_illisible, '%d/%m/%Y') || ')', '')
         WHEN g.css_fin_passee IS NOT NULL THEN 'terminée le ' || strftime(g.css_fin_passee, '%d/%m/%Y')
         ELSE 'jamais ouverte' END                                  AS echeance_css,
    CASE WHEN g.aah_taux_plein THEN 'AAH à taux plein selon la CAF'
         ELSE 'taux de l''AAH non transmis par la CAF (taux plein à vérifier)' END
                                                                    AS aah_taux_texte,
    r.date_reference
FROM flags AS g
CROSS JOIN run_params AS r
JOIN housing AS hs ON hs.foyer = g.foyer
-- a dossier with nobody in the CSS household has no ceiling (null): no ceiling rule can hit it
LEFT JOIN household_ceilings AS h ON h.foyer = g.foyer;

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
