"""What the agency side and the central side both rely on, and neither owns.

Agency packages (ingest, pseudonymise, reidentify) and central packages (match, detect, central)
import from here; this package imports from neither side.
"""
