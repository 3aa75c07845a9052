-- Per pair: each comparison's weight (level weight + term-frequency adjustment) and the total
-- match weight w (prior + components). The match probability is derived from w where the outputs
-- are written (pipeline/central/match/engine.py), once, the same on every engine.
SELECT *, {prior} + {total} AS w
FROM (
    SELECT s.*,
    {components}
    FROM {source} AS s{tf_joins}
) AS weighted
