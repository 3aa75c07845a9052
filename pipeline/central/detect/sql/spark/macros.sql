-- Spark versions of the French formatting macros of pipeline/shared/rules.py (SQL_MACROS), used
-- by the compiled reason templates: same names, same outputs. Thousands separator U+202F,
-- before the euro sign U+00A0.
CREATE OR REPLACE TEMPORARY FUNCTION fr_int(x DOUBLE) RETURNS STRING
RETURN replace(format_number(CAST(round(x) AS BIGINT), 0), ',', ' ');
CREATE OR REPLACE TEMPORARY FUNCTION fr_eur(x DOUBLE) RETURNS STRING
RETURN CASE WHEN x IS NULL THEN 'non connues'
            WHEN round(x, 2) = round(x) THEN fr_int(x) || ' €'
            ELSE replace(format_number(CAST(floor(abs(round(x, 2))) * sign(x) AS BIGINT), 0),
                         ',', ' ')
                 || ',' || lpad(CAST(CAST(round((abs(round(x, 2))
                                   - floor(abs(round(x, 2)))) * 100) AS BIGINT) AS STRING), 2, '0')
                 || ' €' END;
CREATE OR REPLACE TEMPORARY FUNCTION fr_date(d DATE) RETURNS STRING
RETURN coalesce(date_format(d, 'dd/MM/yyyy'), 'date inconnue');
CREATE OR REPLACE TEMPORARY FUNCTION fr_personnes(n BIGINT) RETURNS STRING
RETURN CAST(n AS STRING) || CASE WHEN n > 1 THEN ' personnes' ELSE ' personne' END
