-- CAF household -> CPAM household, from the links made so far: the CPAM household holding the
-- most of the CAF household's linked members (ties: smallest handle), for the households of
-- the CAF records `{free}` (a pass: its free records; the residue: every record). Exposed as
-- `foyer_lie` by free_with_foyer.sql, which a pass reading foyer_lie uses
-- (pipeline/central/match/passes.py).
SELECT foyer, foyer_lie
FROM (
    SELECT
        l.foyer AS foyer,
        r.foyer AS foyer_lie,
        row_number() OVER (PARTITION BY l.foyer ORDER BY count(*) DESC, r.foyer) AS rk
    FROM {links} AS k
    JOIN {caf} AS l ON l.id = k.lid
    JOIN {cpam} AS r ON r.id = k.rid
    WHERE l.foyer IS NOT NULL AND r.foyer IS NOT NULL
      -- only the households asked for (a pass: those it may still link into)
      AND l.foyer IN (SELECT f.foyer FROM {free} AS f)
    GROUP BY l.foyer, r.foyer
) AS ranked
WHERE rk = 1
