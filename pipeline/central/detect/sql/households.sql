-- The household view of the rules: one row per CAF household, built from what the detecting
-- operator holds (docs/SEPARATION.md; pipeline/central/detect/detection_inputs.py), never from
-- per-person rows: no household size and no count of linked persons are here.
-- Inputs: {households} (the CAF's household file: contact handle and features), {bits} (per
-- household not opposed at the CAF: « found » flag, linked opposition, and the OR of the
-- linked persons' CSS bits, null for a household not found), {run_params}.

WITH joined AS (
    SELECT
        h.handle,
        h.foyer,
        -- contract 3: no geography leaves the CAF; its lists are split per quartier at
        -- re-identification, and the per-quartier counts are made there too
        'NON_LOCALISE'                                              AS quartier,
        h.type_foyer,
        h.position_plafond_css,
        coalesce(h.a_rsa, false)                                    AS a_rsa,
        coalesce(h.a_aah, false)                                    AS a_aah,
        -- not sent: false wherever `personne_seule` is left (pipeline/shared/detector_files.py),
        -- the only place a rule reads it
        false                                                       AS a_ppa,
        h.aah_taux_plein,
        -- found at the CPAM: an adult of the foyer is linked (the rules' perimeter)
        coalesce(b.trouve_cpam, false)                              AS trouve_cpam,
        coalesce(b.css_active, false)                               AS css_active,
        -- every active CSS of the household ends within the renewal window (features.yaml)
        coalesce(b.css_active AND NOT b.css_en_cours, false)        AS css_fin_proche,
        coalesce(b.css_terminee_recente, false)                     AS css_terminee_recente,
        coalesce(b.css_illisible, false)                            AS css_illisible_membre,
        -- opposition: the household at the CAF, or a person linked to one of its members
        coalesce(h.opposition, false) OR coalesce(b.opposition_liee, false) AS opposition
    FROM {households} AS h
    LEFT JOIN {bits} AS b ON b.foyer = h.foyer
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
FROM joined AS a
CROSS JOIN {run_params} AS r
