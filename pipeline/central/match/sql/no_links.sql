-- An empty link table (a model without deterministic passes).
SELECT CAST(NULL AS INTEGER) AS lid, CAST(NULL AS INTEGER) AS rid,
       CAST(NULL AS STRING) AS pass, CAST(NULL AS STRING) AS how
FROM (SELECT 1 AS x) AS one
WHERE x = 0
