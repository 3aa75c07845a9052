-- Assigned pairs between the review and the link weights: for clerical review.
SELECT lid, rid FROM {assigned} WHERE w < {link_weight}
