-- Rows, distinct handles and the first row without a handle, of one loaded export.
SELECT count(*) AS n, count(DISTINCT handle) AS n_distinct,
       min(CASE WHEN handle IS NULL THEN id END) AS first_null
FROM {handles}
