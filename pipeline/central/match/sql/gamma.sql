-- Agreement level of each comparison for the pairs of `{pairs}`: -1 = not comparable (a token is
-- null), 0 = different, then increasing with specificity (comparisons.yaml, most specific first).
SELECT
    p.lid,
    p.rid,
{gammas}
FROM {pairs} AS p
JOIN {caf} AS l ON l.id = p.lid
JOIN {cpam} AS r ON r.id = p.rid
