-- What the passes and the model read: (id, attributes, tokens). Each token arrives as a signed
-- 64-bit integer (export contract 5: the MAC's first 64 bits, pipeline/shared/tokens.yaml): joins
-- and comparisons on a fixed-width integer are several times faster and lighter than on text.
-- Tokens are keyed PRF outputs, so two different tokens share their 64 bits with probability
-- 2^-64 per pair of distinct values (about 3e-6 for ten million distinct values of a column):
-- negligible next to data errors.
SELECT
    CAST(id AS INTEGER) AS id,
    {columns}
FROM {source}
