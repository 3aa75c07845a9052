-- Agreement levels of residue pairs: g_bloom from the Hamming distance of the two encodings
-- on the scale of the pair's date class (`dates`: how many of the two rows have a known birth
-- date; a blank date sets no bits, the same distance means something else)
-- (ham = bits set in one lane and not the other, summed over the lanes: popcount of the XOR as
-- bit_count(a | b) - bit_count(a & b), the same on every engine), g_foyer = household context
-- (2: the CAF row's household is already linked to the CPAM row's household; 1: linked to
-- another one; 0: none of its other members linked; -1: a household of one row, no context),
-- `guarded` = the namesake guard holds (comparisons.yaml residue.namesake_guard), then the token comparisons of comparisons.yaml.
SELECT
    d.lid,
    d.rid,
    d.ham,
    CAST(CASE {bloom_whens} ELSE 0 END AS TINYINT) AS g_bloom,
    CAST(CASE WHEN coalesce(fs.n, 1) <= 1 THEN -1 WHEN fm.foyer_lie IS NULL THEN 0
              WHEN fm.foyer_lie = r.foyer THEN 2 ELSE 1 END AS TINYINT) AS g_foyer_contexte,
    CAST(CASE WHEN coalesce({guard}, FALSE) THEN 1 ELSE 0 END AS TINYINT) AS guarded{gammas}
FROM (
    SELECT p.lid, p.rid, {ham} AS ham, bl.dates + br.dates AS dates
    FROM {pairs} AS p
    JOIN {res_l} AS bl ON bl.id = p.lid
    JOIN {res_r} AS br ON br.id = p.rid
) AS d
JOIN {caf} AS l ON l.id = d.lid
JOIN {cpam} AS r ON r.id = d.rid
LEFT JOIN {foyer_map} AS fm ON fm.foyer = l.foyer
LEFT JOIN {foyer_sizes} AS fs ON fs.foyer = l.foyer
