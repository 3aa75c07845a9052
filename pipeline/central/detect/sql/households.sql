-- The linked household view: one row per CAF foyer, everything the rules look at (materialised
-- as a table: every rule and the statistics read it). Features only (pipeline/shared/features.yaml):
-- the household-level CAF features are the same on every row of the foyer.
-- Runs after members.sql. Inputs: {ranked_members}, {run_params}.

WITH agg AS (
    SELECT
        foyer,
        CAST(count(*) AS INTEGER)                                           AS nb_personnes_dossier,
        -- the contact person: the allocataire, else the first member of the dossier
        min_by(handle, rang_dossier)                               AS handle,
        coalesce(min_by(quartier, rang_dossier) FILTER (WHERE quartier IS NOT NULL),
                 'NON_LOCALISE')                                    AS quartier,
        min_by(type_foyer, rang_dossier) FILTER (WHERE type_foyer IS NOT NULL) AS type_foyer,
        min_by(position_plafond_css, rang_dossier) FILTER (WHERE position_plafond_css IS NOT NULL)
                                                                    AS position_plafond_css,
        coalesce(bool_or(a_rsa), false)                             AS a_rsa,
        coalesce(bool_or(a_aah), false)                             AS a_aah,
        coalesce(bool_or(a_ppa), false)                             AS a_ppa,
        min_by(aah_taux_plein, rang_dossier) FILTER (WHERE aah_taux_plein IS NOT NULL)
                                                                    AS aah_taux_plein,
        -- found at the CPAM: an adult of the foyer is linked (contract 3: the CAF's `adulte`
        -- feature, not its role)
        coalesce(bool_or(adulte AND cpam_handle IS NOT NULL), false)  AS trouve_cpam,
        CAST(count(cpam_handle) AS INTEGER)                          AS nb_lies,
        coalesce(bool_or(css_en_cours), false)                      AS css_active,
        -- every active CSS of the household ends within the renewal window (features.yaml)
        coalesce(bool_or(css_en_cours), false)
            AND NOT coalesce(bool_or(statut_css = 'en_cours'), false) AS css_fin_proche,
        coalesce(bool_or(statut_css = 'terminee_recente'), false)   AS css_terminee_recente,
        coalesce(bool_or(css_illisible), false)                     AS css_illisible_membre,
        -- opposition: any member opposed at the CAF, or linked to an opposed CPAM row
        bool_or(opposition_caf OR opposition_cpam)                  AS opposition
    FROM {ranked_members}
    GROUP BY foyer
)
SELECT
    a.*,
    -- no readable active CSS, but a linked member's CSS status is unreadable: never "no CSS"
    (NOT a.css_active AND a.css_illisible_membre)                   AS css_a_verifier,
    position_plafond_css = 'sous_plafond_gratuite'                  AS sous_plafond_gratuite,
    position_plafond_css IN ('sous_plafond_gratuite', 'sous_plafond_participation')
                                                                    AS sous_plafond_participation,
    CASE WHEN a.css_fin_proche THEN 'en cours, arrivant à échéance dans les '
             || (SELECT fenetre_fin_proche_jours FROM {run_params}) || ' jours'
         WHEN a.css_active THEN 'en cours'
         WHEN a.css_illisible_membre THEN 'de statut illisible dans l''extrait CPAM'
         WHEN a.css_terminee_recente THEN 'terminée au cours des '
             || (SELECT fenetre_terminee_recente_jours FROM {run_params}) || ' derniers jours'
         ELSE 'jamais ouverte ou terminée depuis plus longtemps' END AS echeance_css,
    CASE WHEN a.aah_taux_plein THEN 'AAH à taux plein selon la CAF'
         ELSE 'taux de l''AAH non transmis par la CAF (taux plein à vérifier)' END
                                                                    AS aah_taux_texte,
    r.date_reference
FROM agg AS a
CROSS JOIN {run_params} AS r
