-- Fold the hits into one row per household and agency (contract "Targets"): rules, reasons and
-- actions listed by priority, then rule id (Spark has no ordered aggregate: sort the collected
-- (priorite, regle, value) structs, then keep the value).
SELECT agence, foyer, min(handle) AS handle, min(quartier) AS quartier,
       CASE WHEN bool_or(liste = 'cible') THEN 'cible' ELSE 'a_verifier' END AS liste,
       transform(array_sort(collect_list(struct(priorite, regle, regle AS v))), x -> x.v)
           AS regles,
       transform(array_sort(collect_list(struct(priorite, regle, motif AS v))), x -> x.v)
           AS motifs,
       transform(array_sort(collect_list(struct(priorite, regle, action AS v))), x -> x.v)
           AS actions,
       CAST(min(priorite) AS INTEGER) AS priorite,
       (SELECT date_reference FROM {run_params}) AS date_reference
FROM {hits} GROUP BY agence, foyer
