-- Step 1 of the household view: every CAF person with its CPAM link (if any). Members of the
-- CSS household (art. R.861-2 CSS: allocataire, spouse, dependants under 25 -- `a_charge_css`,
-- computed at the agency) are ranked the way art. R.861-3 CSS ranks a household: the allocataire
-- first, then the spouse, then dependants from the oldest to the youngest. Other persons of the
-- CAF dossier stay in the foyer (contact, opposition) but add nothing to the ceiling.
-- Inputs (registered by pipeline/detect/engine.py): caf, cpam, links, run_params.

CREATE OR REPLACE TEMP VIEW caf_members AS
SELECT
    c.handle,
    c.foyer,
    c.role,
    c.mineur,
    c.rang_foyer,
    -- an export without the column (older agencies' exports) counts everyone (warned)
    coalesce(c.a_charge_css, true)                         AS a_charge_css,
    coalesce(c.opposition, false)                          AS opposition_caf,
    coalesce(c.residence_alternee, false)                  AS residence_alternee,
    c.quartier,
    c.code_commune,
    c.situation_familiale,
    c.ressources_12m,
    c.prestations,
    c.aah_taux_plein,
    c.aide_logement_mensuelle,
    c.statut_occupation,
    l.cpam_handle,
    p.css,
    p.css_debut,
    p.css_fin,
    coalesce(p.opposition, false)                          AS opposition_cpam,
    -- a linked member whose (readable) CSS covers the reference date
    (p.css IN ('GRATUITE', 'PARTICIPATION')
        AND p.css_debut <= r.date_reference AND r.date_reference <= p.css_fin) AS css_en_cours,
    -- a linked member whose CSS status the CPAM extract does not state (INCONNU, empty): it
    -- never reads as "no CSS" (docs/CONTRACTS.md "Rules")
    (l.cpam_handle IS NOT NULL
        AND coalesce(p.css NOT IN ('NON', 'GRATUITE', 'PARTICIPATION'), true)) AS css_illisible
FROM caf AS c
CROSS JOIN run_params AS r
LEFT JOIN links AS l ON l.caf_handle = c.handle
LEFT JOIN cpam AS p ON p.handle = l.cpam_handle;

CREATE OR REPLACE TEMP TABLE ranked_members AS
WITH dossier AS (
    SELECT
        m.*,
        -- the rank in the whole CAF dossier (contact person, composition order)
        row_number() OVER (
            PARTITION BY m.foyer
            ORDER BY
                CASE m.role WHEN 'DEM' THEN 0 WHEN 'CJT' THEN 1 ELSE 2 END,
                -- the agency ranked dependants oldest first from their exact birth dates (same
                -- day: the full-time child first); no age reaches the central side
                m.rang_foyer NULLS LAST,
                m.handle
        )::INTEGER AS rang_dossier
    FROM caf_members AS m
)
SELECT
    d.*,
    -- the R.861-3 rank among the members of the CSS household (the others get their own
    -- sequence, never used for a ceiling)
    row_number() OVER (PARTITION BY d.foyer, d.a_charge_css ORDER BY d.rang_dossier)::INTEGER
        AS rang,
    -- a minor child in alternating residence counts for half of its rank's increment
    (d.role = 'ENF' AND d.residence_alternee AND coalesce(d.mineur, true)) AS alterne_mineur
FROM dossier AS d;

-- The household's zone decides which cells apply (overseas departements: uplifted cells).
CREATE OR REPLACE TEMP VIEW ceiling_members AS
SELECT
    m.foyer,
    m.rang,
    m.alterne_mineur,
    CASE WHEN list_contains(r.departements_outre_mer, left(z.code_commune, 3))
         THEN 'outre_mer' ELSE 'metropole' END AS zone
FROM ranked_members AS m
CROSS JOIN run_params AS r
JOIN (
    SELECT foyer, arg_min(code_commune, rang_dossier) FILTER (WHERE code_commune IS NOT NULL)
               AS code_commune
    FROM ranked_members GROUP BY foyer
) AS z ON z.foyer = m.foyer
WHERE m.a_charge_css;
