CASE WHEN {col} IS NULL THEN NULL
     WHEN {col} RLIKE '^[0-9a-fA-F]{{15}}' THEN CAST(conv(left({col}, 15), 16, 10) AS BIGINT)
     ELSE raise_error('jeton non hexadécimal') END
