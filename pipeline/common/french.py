"""French number formatting for everything a CCAS worker or an auditor reads.

Thousands are separated by a narrow no-break space (« 18 609 »), as the official CSS tables
print them. (The reasons built in SQL by pipeline/shared/rules.py do the same in DuckDB.)
"""

from __future__ import annotations

THOUSANDS = "\u202f"


def integer(x: float) -> str:
    """18609.4 -> '18 609' (rounded to the unit)."""
    return f"{x:,.0f}".replace(",", THOUSANDS)


def euros(x: float) -> str:
    """18609 -> '18 609 €'."""
    return integer(x) + "\u00a0€"
