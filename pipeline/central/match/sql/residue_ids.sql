-- Record ids of one side's residue rows, in order (the random pairs for u are drawn among them).
SELECT id FROM {records} ORDER BY id
