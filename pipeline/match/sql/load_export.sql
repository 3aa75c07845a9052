-- One export into a working table. `id` numbers the rows in handle order, so that every later
-- tie-break (by id) is a tie-break by handle: reruns give the same links whatever the threads.
-- `row_no` is the 1-based row of the Parquet file, used only to name a bad row in an error.
CREATE OR REPLACE TABLE {table} AS
SELECT
    (row_number() OVER (ORDER BY handle) - 1)::INTEGER AS id,
    (file_row_number + 1)::BIGINT AS row_no,
    {columns}
FROM read_parquet({path}, file_row_number = true);
