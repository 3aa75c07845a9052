-- Every quartier of the CAF households: the columns of the aggregates, zeros included.
SELECT DISTINCT quartier FROM {foyers}
