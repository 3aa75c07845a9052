-- Namesakes of this territory, per side: the share of rows whose date-free names key
-- ({token}) another row of the same file also holds (a file holds each person once, so these
-- are different people with the same names). Where that share is high, the same names with
-- another birth date say little: the namesake guard applies.
SELECT count(*) AS n, coalesce(sum(CASE WHEN k > 1 THEN 1 ELSE 0 END), 0) AS shared
FROM (
    SELECT count(*) OVER (PARTITION BY {token}) AS k
    FROM {records}
    WHERE {token} IS NOT NULL
) AS t
