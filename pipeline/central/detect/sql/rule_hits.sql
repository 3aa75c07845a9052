-- Households (or insured persons) of view {view} that rule {regle} finds: outside opposition,
-- inside the rule's perimeter (gate), meeting its predicate (rules.yaml).
SELECT {agence} AS agence, foyer, handle, quartier, {liste} AS liste,
       {regle} AS regle, {motif} AS motif,
       {action} AS action, CAST({priorite} AS INTEGER) AS priorite
FROM {view}
WHERE NOT coalesce(opposition, false) AND ({gate})
  AND coalesce(({predicate}), false)
