-- Coverage side (reverse rule): one row per insured person with a free CSS in force (the
-- rule's perimeter), with its CAF situation when linked; never a CAF household id
-- (docs/SEPARATION.md). Inputs: {insured} (handle, foyer, opposition of the person's group),
-- {insured_caf} (per linked person: its CAF household's RSA-or-PPA flag and opposition),
-- {run_params}.
SELECT
    i.handle,
    i.foyer,
    true                                                            AS css_gratuite_active,
    c.cpam_handle IS NOT NULL                                       AS lie_caf,
    coalesce(c.a_minima, false)                                     AS a_minima,
    -- opposition: the person's group, or its linked CAF household (at either agency)
    coalesce(i.opposition, false) OR coalesce(c.opposition_foyer, false) AS opposition,
    'NON_LOCALISE'                                                  AS quartier,
    CASE WHEN c.cpam_handle IS NULL THEN 'inconnu(e) de la CAF'
         ELSE 'ni RSA ni prime d''activité versés par la CAF' END    AS situation_caf,
    r.date_reference
FROM {insured} AS i
CROSS JOIN {run_params} AS r
LEFT JOIN {insured_caf} AS c ON c.cpam_handle = i.handle
