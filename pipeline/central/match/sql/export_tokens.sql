-- What the passes and the model read: (id, attributes, tokens). Each 128-bit hex token becomes
-- its first 64 bits as a signed BIGINT (value - 2^63; sql/<engine>/token_key.sql, the same
-- number on every engine; NULL stays NULL): joins and comparisons on a fixed-width integer are
-- several times faster and lighter than on 32-character strings. Tokens are HMAC outputs, so two
-- different tokens share their first 64 bits with probability 2^-64 per pair of distinct values
-- (about 3e-6 for ten million distinct values of a column): negligible next to data errors.
SELECT
    CAST(id AS INTEGER) AS id,
    {columns}
FROM {source}
