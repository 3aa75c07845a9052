-- Frequency of each value of token `{token}` over both files (term-frequency adjustment).
SELECT v, CAST(count(*) AS DOUBLE) / sum(count(*)) OVER () AS f
FROM (SELECT {token} AS v FROM {caf} UNION ALL SELECT {token} AS v FROM {cpam}) AS t
WHERE v IS NOT NULL
GROUP BY v
