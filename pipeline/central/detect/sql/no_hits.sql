-- No applicable rule: an empty hit table of the right columns.
SELECT CAST(NULL AS STRING) AS agence, CAST(NULL AS STRING) AS foyer,
       CAST(NULL AS STRING) AS handle, CAST(NULL AS STRING) AS quartier,
       CAST(NULL AS STRING) AS liste, CAST(NULL AS STRING) AS regle,
       CAST(NULL AS STRING) AS motif, CAST(NULL AS STRING) AS action,
       CAST(NULL AS INTEGER) AS priorite
FROM (SELECT 1 AS x) AS one
WHERE x = 0
