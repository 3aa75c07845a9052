CASE WHEN {col} IS NULL THEN NULL
     WHEN {col} RLIKE '^[0-9a-fA-F]{{16}}'
         THEN CAST(CAST(conv(left({col}, 16), 16, 10) AS DECIMAL(20, 0)) - 9223372036854775808
                   AS BIGINT)
     ELSE raise_error('jeton non hexadécimal') END
