    SELECT
        l.id AS lid,
        r.id AS rid,
        coalesce(({consistent}), FALSE) AS consistent,
        coalesce(({tie_break}), FALSE) AS tie
    FROM {left} AS l
    JOIN {right} AS r ON {join}
