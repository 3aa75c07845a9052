-- Assigned pairs at or above the link weight become links of the probabilistic pass.
SELECT lid, rid, {pass_name} AS pass, 'fellegi_sunter' AS how
FROM {assigned}
WHERE w >= {link_weight}
