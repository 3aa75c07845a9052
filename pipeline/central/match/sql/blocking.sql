-- Blocking rule {rule_no} `{name}`: pairs of not-yet-linked records that agree on {on_text}.
SELECT l.id AS lid, r.id AS rid, CAST({rule_no} AS SMALLINT) AS rule_no
FROM {caf_free} AS l
JOIN {cpam_free} AS r ON {on}
