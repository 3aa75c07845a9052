-- One pass's funnel counts (link_stats.json, funnel.passes).
SELECT
    (SELECT count(*) FROM {candidates}) AS candidate_pairs,
    (SELECT count(*) FROM {candidates} WHERE NOT consistent) AS conflicts,
    (SELECT count(*) FROM {linked}) AS linked,
    (SELECT count(*) FROM {linked} WHERE how = 'tie_break') AS linked_by_tie_break,
    (SELECT count(DISTINCT lid) FROM {ok} AS o
       WHERE NOT EXISTS (SELECT 1 FROM {linked} AS k WHERE k.lid = o.lid)) AS ambiguous_caf,
    (SELECT count(DISTINCT rid) FROM {ok} AS o
       WHERE NOT EXISTS (SELECT 1 FROM {linked} AS k WHERE k.rid = o.rid)) AS ambiguous_cpam
