"""The central operator's attacks on the exported tokens (issue: "an attacker in the test suite").

Side-neutral: every attack reads only what the central operator holds (the exports, the public
token catalogue, public name statistics); the truth, known at the agency (or to the evaluator),
is used only to score them.

- clusters: token-equivalence classes (union-find in columns) per birth-date part;
- labels: naming the classes from the minor flag, the household rank and the calendar;
- measure: scores against the prior, per export and across both, and the rank attack within
  the classes;
- public_names: the attacker's first-name table by birth year (generator-derived).
"""

from pipeline.agency.pseudonymise.attacks.measure import (
    class_attack,
    cross_export_attack,
    strata_name_attack,
)

__all__ = ["class_attack", "cross_export_attack", "strata_name_attack"]
