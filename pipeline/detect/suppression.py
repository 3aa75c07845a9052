"""Re-export: small-cell suppression lives in the shared layer (pipeline/shared/suppression.py)."""

from pipeline.shared.suppression import (  # noqa: F401
    PRIMARY,
    PUBLISHED,
    SECONDARY,
    SuppressedTable,
    exposed_cells,
    extend,
    suppress,
)
