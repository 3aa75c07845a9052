-- CPAM side (reverse rule): one row per CPAM person with its CAF situation when linked (contract
-- 3: no role leaves; css_gratuite_en_cours is true on the insured person's row only).
-- Inputs: {cpam}, {run_params}, {links}, {caf}, {foyers}.
SELECT
    p.handle,
    p.foyer,
    coalesce(p.css_gratuite_en_cours, false)                        AS css_gratuite_active,
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
FROM {cpam} AS p
CROSS JOIN {run_params} AS r
LEFT JOIN {links} AS l ON l.cpam_handle = p.handle
LEFT JOIN {caf} AS c ON c.handle = l.caf_handle
LEFT JOIN {foyers} AS f ON f.foyer = c.foyer
