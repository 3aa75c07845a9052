-- Keep the consistent pairs that are unique on both sides; when a record has several consistent
-- candidates, keep the pairs that are unique on both sides among those meeting the tie-break.
SELECT lid, rid, {pass_name} AS pass, 'direct' AS how FROM {ok} WHERE n_l = 1 AND n_r = 1
UNION ALL
SELECT lid, rid, {pass_name} AS pass, 'tie_break' AS how
FROM (
    SELECT
        lid, rid,
        count(*) OVER (PARTITION BY lid) AS t_l,
        count(*) OVER (PARTITION BY rid) AS t_r
    FROM {ok}
    WHERE NOT (n_l = 1 AND n_r = 1) AND tie
) AS tied
WHERE t_l = 1 AND t_r = 1
