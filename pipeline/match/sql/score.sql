-- Per pair: each comparison's weight (level weight + term-frequency adjustment), the total match
-- weight w (prior + components) and the match probability p.
SELECT *, {prior} + {total} AS w,
       1.0 / (1.0 + pow(2.0, -({prior} + {total}))) AS p
FROM (
    SELECT s.*,
    {components}
    FROM {source} AS s{tf_joins}
) AS weighted
