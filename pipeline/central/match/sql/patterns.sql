-- Distinct agreement patterns and their counts: all EM ever sees of the pairs.
SELECT {columns}, count(*) AS n
FROM {table}
GROUP BY {columns}
ORDER BY {columns}
