-- The first row whose handle an earlier row already has (only run when there is one).
SELECT min(id) AS first_duplicate
FROM (SELECT id, row_number() OVER (PARTITION BY handle ORDER BY id) AS k FROM {handles}) AS d
WHERE k > 1
