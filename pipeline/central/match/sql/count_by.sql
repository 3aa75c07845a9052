-- Row count per value of one column (funnel and model statistics).
SELECT {column} AS k, count(*) AS n
FROM {table}
WHERE {where}
GROUP BY {column}
