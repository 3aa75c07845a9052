-- Rows per CAF household: a household of one row gives no household context.
SELECT foyer, count(*) AS n FROM {caf} WHERE foyer IS NOT NULL GROUP BY foyer
