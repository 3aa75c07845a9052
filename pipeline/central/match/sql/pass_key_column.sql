    SELECT id, {c} AS c, {column} AS v FROM {records} WHERE {column} IS NOT NULL
