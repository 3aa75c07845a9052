-- One join column of one side of a keyed pass (pass_candidates_keyed.sql): its non-null values
-- with the record id and the column number {c}.
    SELECT id, {c} AS c, {column} AS v FROM {records} WHERE {column} IS NOT NULL
