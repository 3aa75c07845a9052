-- LSH band {band}: {width} consecutive output bits of lane {lane} from bit {shift} (bit sampling
-- of the encoding, pipeline/shared/bloom.yaml `lsh:`, the same positions on both sides).
SELECT id, CAST({band} AS SMALLINT) AS band, ({lane} >> {shift}) & {mask} AS k FROM {records}
