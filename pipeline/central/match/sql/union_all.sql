-- Several tables of the same columns as one (links of every pass, pairs of every round).
{selects}
