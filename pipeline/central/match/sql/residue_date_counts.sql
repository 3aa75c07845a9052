-- Rows of one side's residue and how many of them have a known birth date (`dates` = 1): the
-- exact count of cross pairs per date class follows from the two sides' counts.
SELECT count(*) AS n, sum(dates) AS known
FROM {records}
