-- Candidate pairs: the union of the blocking rules, each pair once with the first rule giving it.
SELECT lid, rid, min(rule_no) AS first_rule
FROM {pairs}
GROUP BY lid, rid
