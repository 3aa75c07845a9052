-- Records of one side that no pass linked yet (ids in `{free}`), with only the columns the next
-- step reads: a deterministic pass (its joins and conditions) or, after the last pass, the
-- probabilistic step's blocking.
SELECT {columns}
FROM {records} AS t
WHERE EXISTS (SELECT 1 FROM {free} AS f WHERE f.id = t.id)
