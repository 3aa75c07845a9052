-- Match-weight histogram of the scored candidate pairs, one-bit bins.
SELECT CAST(floor(w) AS INTEGER) AS b, count(*) AS n
FROM {scored}
WHERE w IS NOT NULL AND NOT isnan(w)
GROUP BY CAST(floor(w) AS INTEGER)
ORDER BY b
