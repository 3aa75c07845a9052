"""Privacy-preserving CAF x CPAM matching against non-take-up (TZNR).

Data flow, one sub-package per stage: synth (test data) -> ingest -> pseudonymise (agency side)
-> trust (conventions, manifests, audit) -> match -> detect (central side) -> reidentify (agency
side) -> report. See docs/CONTRACTS.md for the files that pass between stages.
"""

__version__ = "0.1.0"
