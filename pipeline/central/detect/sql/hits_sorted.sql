-- The hits, in a stable order (aggregates and statistics read them).
SELECT * FROM {hits} ORDER BY agence, foyer, priorite, regle
