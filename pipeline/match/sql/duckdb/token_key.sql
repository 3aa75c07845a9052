CAST(('0x' || left({col}, 15)) AS BIGINT)
