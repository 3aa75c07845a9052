"""The data providers whose exports a convention crosses, declared once.

Agency code (ingest, pseudonymise, reidentify), central code (match, detect, central), the trust
layer, the territory set-up and the benches all read this tuple instead of spelling the pair
again, so that a third provider is added here (and in its layout, tokens and convention), not in
every module. The order is the reading order of every per-provider output.
"""

from __future__ import annotations

AGENCIES: tuple[str, ...] = ("caf", "cpam")
