-- Free CAF records with an empty `foyer_lie` (no link made yet to map households).
SELECT l.*, CAST(NULL AS STRING) AS foyer_lie
FROM {free} AS l
