-- Step 1 of the household view: every CAF person with its CPAM link (if any). The central side
-- reads features only (pipeline/shared/features.yaml): the CAF household's position relative to
-- the CSS ceilings, its type and benefit flags were computed at the CAF; each linked person's CSS
-- status at the reference date at the CPAM. No resources, ceiling, age or CSS date is here.
-- Inputs (loaded by pipeline/central/detect/engine.py): {caf}, {cpam}, {links}.

SELECT
    c.handle,
    c.foyer,
    coalesce(c.opposition, false)                          AS opposition_caf,
    c.adulte,
    -- contract 3: no geography leaves the CAF; its lists are split per quartier at
    -- re-identification, and the per-quartier counts are made there too
    CAST(NULL AS VARCHAR)                                  AS quartier,
    c.type_foyer,
    c.position_plafond_css,
    c.a_rsa,
    c.a_aah,
    c.a_ppa,
    c.aah_taux_plein,
    l.cpam_handle,
    p.statut_css,
    coalesce(p.opposition, false)                          AS opposition_cpam,
    -- contract 3: no role leaves (only `adulte`); the re-identifying CAF picks the contact person
    CAST(row_number() OVER (PARTITION BY c.foyer ORDER BY c.handle) AS INTEGER) AS rang_dossier,
    -- a linked member whose (readable) CSS covers the reference date
    coalesce(p.statut_css IN ('en_cours', 'fin_proche'), false) AS css_en_cours,
    -- a linked member whose CSS status the CPAM extract does not state (INCONNU, empty): it
    -- never reads as "no CSS" (docs/CONTRACTS.md "Rules")
    (l.cpam_handle IS NOT NULL AND coalesce(p.statut_css = 'a_verifier', true)) AS css_illisible
FROM {caf} AS c
LEFT JOIN {links} AS l ON l.caf_handle = c.handle
LEFT JOIN {cpam} AS p ON p.handle = l.cpam_handle
