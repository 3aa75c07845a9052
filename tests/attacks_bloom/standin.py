"""A tiny CLK-style encoder for the attack tests, independent of the shipped one.

It encodes exactly the attacker's item model (bloom_items.item_lists): each labelled item sets
K keyed positions of BITS; the hardened variant XORs T key-chosen input bits into each output
bit (the linear diffusion layer of Armknecht, Heng & Schnell, PoPETs 2023). The attacks must
break the control built here whatever the shipped encoder's parameters are; the bench runs them
on the shipped encoder.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl

from pipeline.agency.pseudonymise.attacks.bloom_items import incidence, item_lists

BITS = 1024
K = 10
T = 5


def encode(plain: pl.DataFrame, secret: bytes, *, hardened: bool, bits: int = BITS,
           k: int = K, t: int = T) -> np.ndarray:
    """(n, bits) uint8 filters of `plain` (columns of bloom_items.PLAIN_COLUMNS)."""
    inc, vocab = incidence(item_lists(plain))
    pos = np.zeros((len(vocab), bits), dtype=np.uint8)
    for i, item in enumerate(vocab):  # over the vocabulary, not the records
        digest = hashlib.blake2b(item.encode(), key=secret, digest_size=4 * k).digest()
        pos[i, np.frombuffer(digest, dtype="<u4") % bits] = 1
    filters = ((inc.astype(np.float32) @ pos.astype(np.float32)) > 0).astype(np.uint8)
    if not hardened:
        return filters
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(secret + b"mix").digest()[:8],
                                               "little"))
    mix = np.stack([rng.choice(bits, size=t, replace=False) for _ in range(bits)])
    return (filters[:, mix].sum(axis=2) % 2).astype(np.uint8)
