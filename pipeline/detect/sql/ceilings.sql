-- CSS resource ceilings per household: the sum, over its ranked members, of what each rank adds
-- to the official table (css_increments: cell(k) - cell(k-1), `extra` beyond 4 persons), halved
-- for a minor in alternating residence. For n <= 4 full-time members this is exactly the official
-- cell; beyond 4 it is cell(4) + extra per person (art. R.861-3 CSS).
-- Inputs: ceiling_members(foyer, rang, alterne_mineur, zone), css_increments, run_params.

CREATE OR REPLACE TEMP VIEW household_ceilings AS
SELECT
    m.foyer,
    count(*)::INTEGER AS n,
    sum(i.inc_gratuite
        * CASE WHEN m.alterne_mineur THEN r.facteur_residence_alternee ELSE 1.0 END) AS plafond_gratuite,
    sum(i.inc_participation
        * CASE WHEN m.alterne_mineur THEN r.facteur_residence_alternee ELSE 1.0 END) AS plafond_participation,
    count(*) FILTER (WHERE m.alterne_mineur)::INTEGER AS nb_alternance
FROM ceiling_members AS m
CROSS JOIN run_params AS r
JOIN css_increments AS i ON i.zone = m.zone AND i.rang = m.rang
GROUP BY m.foyer;
