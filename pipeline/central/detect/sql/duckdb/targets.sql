-- Fold the hits into one row per household and agency (contract "Targets"): rules, reasons and
-- actions listed by priority, then rule id.
SELECT agence, foyer, min(handle) AS handle, min(quartier) AS quartier,
       CASE WHEN bool_or(liste = 'cible') THEN 'cible' ELSE 'a_verifier' END AS liste,
       list(regle ORDER BY priorite, regle) AS regles,
       list(motif ORDER BY priorite, regle) AS motifs,
       list(action ORDER BY priorite, regle) AS actions,
       CAST(min(priorite) AS INTEGER) AS priorite,
       (SELECT date_reference FROM {run_params}) AS date_reference
FROM {hits} GROUP BY agence, foyer
