-- Keep the consistent pairs that are unique on both sides; when a record has several consistent
-- candidates, keep the pairs that are unique on both sides among those meeting the tie-break.
CREATE OR REPLACE TEMP TABLE pass_ok AS
SELECT
    lid, rid, tie,
    count(*) OVER (PARTITION BY lid) AS n_l,
    count(*) OVER (PARTITION BY rid) AS n_r
FROM pass_cand
WHERE consistent;

CREATE OR REPLACE TEMP TABLE pass_linked AS
SELECT lid, rid, 'direct' AS how FROM pass_ok WHERE n_l = 1 AND n_r = 1
UNION ALL
SELECT lid, rid, 'tie_break' AS how
FROM (
    SELECT
        lid, rid,
        count(*) OVER (PARTITION BY lid) AS t_l,
        count(*) OVER (PARTITION BY rid) AS t_r
    FROM pass_ok
    WHERE NOT (n_l = 1 AND n_r = 1) AND tie
)
WHERE t_l = 1 AND t_r = 1;
