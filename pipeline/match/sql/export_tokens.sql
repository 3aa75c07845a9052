-- What the passes and the model read: (id, attributes, tokens). Each 128-bit hex token becomes
-- its first 60 bits as a BIGINT (sql/<engine>/token_key.sql, the same number on every engine;
-- NULL stays NULL): joins and comparisons on a fixed-width integer are several times faster and
-- lighter than on 32-character strings. Tokens are HMAC outputs, so two different tokens share
-- their first 60 bits with probability 2^-60 per pair of distinct values (about 4e-5 for ten
-- million distinct values of a column): negligible next to data errors.
SELECT
    CAST(id AS INTEGER) AS id,
    {columns}
FROM {source}
