"""The export contract's version: written into every manifest by the agency, checked by the gate.

One declaration, read by both sides: an export of another version is refused centrally with a
French message, so an agency running an old release cannot feed a central step that reads its
columns differently.
"""

import polars as pl

EXPORT_SCHEMA_VERSION = "6"  # 2: composite match-keys (tokens.yaml); 3: data minimisation
# (features only: no role, sex, NIR status, commune or quartier; sex and NIR status in NIR keys);
# 4: token derivation v3 (component digests + CBC-MAC-AES) and the staged Bloom-filter residue
# exchange (residu.parquet, pipeline/shared/bloom.yaml); 5: tokens as Int64 columns (the MAC's
# first 64 bits, tokens.yaml `encoding`), the key the central step joined on since contract 2;
# 6: separated detection (pipeline/shared/separation.py): the linking operator's export carries
# no feature, only handles, `adulte`, opposition, tokens and masked columns; the features go to
# the detecting operator in each agency's detection file
HANDLE_HEX_CHARS = 32  # every handle (person, household): 128 random bits as lower-case hex


def malformed_handle(c: pl.Expr) -> pl.Expr:
    """True where a text value is not a handle (exactly HANDLE_HEX_CHARS lower-case hex
    characters); null stays null: the caller says whether an empty handle is allowed."""
    return (c.str.len_bytes() != HANDLE_HEX_CHARS) | c.str.contains("[^0-9a-f]")
