-- One export into two working tables, both keyed by `id` = the row's position in the Parquet
-- file (0-based): every later tie-break is by id, so reruns on the same files give the same
-- links whatever the number of threads.
--   {table}_handles(id, handle): only used to write the outputs and to name a bad row.
--   {table}(id, attributes, tokens): what the passes and the model read. Each 128-bit hex token
--   is replaced by its 64-bit DuckDB hash (NULL stays NULL): joins and comparisons on a fixed-
--   width integer are several times faster and lighter than on 32-character strings. Two
--   different tokens get the same hash with probability 2^-64 per pair of distinct values (about
--   3e-6 for ten million distinct values of a column): negligible next to data errors.
CREATE OR REPLACE TABLE {table}_handles AS
SELECT file_row_number::INTEGER AS id, handle
FROM read_parquet({path}, file_row_number = true);

CREATE OR REPLACE TABLE {table} AS
SELECT
    file_row_number::INTEGER AS id,
    {columns}
FROM read_parquet({path}, file_row_number = true);
