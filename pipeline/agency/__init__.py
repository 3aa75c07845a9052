"""The agency side: what runs inside the CAF, the CPAM (or any provider) on raw identities.

Ingest reads the raw extract, pseudonymise writes the export that leaves, reidentify turns the
central targets back into lists. Nothing here imports the central side (tests/test_layout.py).
"""
