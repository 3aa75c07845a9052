"""French names: faker's fr_FR lists plus modern and foreign-born pools, sampled with numpy.

The lists are read once into polars Series and sampled by index, so drawing ten million names is
a gather, not a Python loop. Surnames come out upper case (as agencies store them), given names
in title case, several given names separated by spaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from faker.providers.person.fr_FR import Provider as FrPerson

NAMES_YAML = Path(__file__).with_name("names.yaml")


@dataclass(frozen=True)
class Pools:
    """Name pools, each a polars Series, with sampling weights for surnames."""

    last: pl.Series
    last_weights: np.ndarray
    last_abroad: pl.Series
    particles: pl.Series
    given: pl.Series  # all given-name pools concatenated
    given_offsets: np.ndarray  # start of pool p in `given`
    given_sizes: np.ndarray
    birthplaces_fr: list[str]
    birthplaces_fr_w: np.ndarray
    birthplaces_abroad: list[str]
    birthplaces_abroad_w: np.ndarray


# Given-name pool ids: sex (1/2) x era/origin.
CLASSIC_M, CLASSIC_F, MODERN_M, MODERN_F, ABROAD_M, ABROAD_F = range(6)


def _names(values: object) -> list[str]:
    return list(dict.fromkeys(values.keys() if isinstance(values, dict) else values))


@lru_cache(maxsize=1)
def pools() -> Pools:
    """Load the pools once per process."""
    doc = yaml.safe_load(NAMES_YAML.read_text(encoding="utf-8"))
    last = [n.upper() for n in _names(FrPerson.last_names)]
    ranks = np.arange(len(last), dtype=np.float64)
    weights = 1.0 / (ranks + 15.0)  # the faker list is in frequency order: Zipf-like weights
    given_lists = [
        _names(FrPerson.first_names_male), _names(FrPerson.first_names_female),
        doc["modern_male"], doc["modern_female"], doc["etranger_male"], doc["etranger_female"],
    ]
    sizes = np.array([len(g) for g in given_lists])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    fr = doc["birthplaces_france"]
    ab = doc["birthplaces_abroad"]
    return Pools(
        last=pl.Series(last, dtype=pl.String),
        last_weights=weights / weights.sum(),
        last_abroad=pl.Series(doc["etranger_last"], dtype=pl.String),
        particles=pl.Series(doc["particles"], dtype=pl.String),
        given=pl.Series([g for lst in given_lists for g in lst], dtype=pl.String),
        given_offsets=offsets,
        given_sizes=sizes,
        birthplaces_fr=[str(c) for c, _ in fr],
        birthplaces_fr_w=np.array([w for _, w in fr], dtype=np.float64) / sum(w for _, w in fr),
        birthplaces_abroad=[str(c) for c, _ in ab],
        birthplaces_abroad_w=np.array([w for _, w in ab], dtype=np.float64)
        / sum(w for _, w in ab),
    )


def birthplaces(rng: np.random.Generator, abroad: np.ndarray, population: int) -> pl.Series:
    """5-character birth places from the weighted lists.

    Some French-born people are moved to another commune of the same département: 40 % up to a
    million people, more beyond, so that no (sex, birth month, place) cell nears the 999 order
    numbers the NIR allows (a real commune does not see 999 births of one sex in a month).
    """
    p = pools()
    n = len(abroad)
    move_rate = 1.0 - 0.6 * min(1.0, 1_000_000 / max(population, 1))
    fr = pl.Series(p.birthplaces_fr).gather(rng.choice(len(p.birthplaces_fr), n,
                                                        p=p.birthplaces_fr_w))
    ab = pl.Series(p.birthplaces_abroad).gather(rng.choice(len(p.birthplaces_abroad), n,
                                                            p=p.birthplaces_abroad_w))
    other = pl.Series(rng.integers(1, 500, n)).cast(pl.String).str.zfill(3)
    move = pl.Series(rng.random(n) < move_rate)
    df = pl.DataFrame({"fr": fr, "ab": ab, "o": other, "m": move, "a": abroad})
    dept = pl.col("fr").str.slice(0, 2)
    return df.select(
        pl.when(pl.col("a")).then(pl.col("ab"))
        .when(pl.col("m") & ~dept.is_in(["2A", "2B", "97", "99"]))
        .then(pl.concat_str([dept, pl.col("o")]))
        .otherwise(pl.col("fr")).alias("place")
    ).to_series()


def surnames(rng: np.random.Generator, abroad: np.ndarray) -> pl.Series:
    """Birth surnames, upper case; some with a particle, some double-barrelled."""
    p = pools()
    n = len(abroad)
    base = p.last.gather(rng.choice(len(p.last), size=n, p=p.last_weights))
    foreign = p.last_abroad.gather(rng.integers(0, len(p.last_abroad), n))
    second = p.last.gather(rng.choice(len(p.last), size=n, p=p.last_weights))
    particle = p.particles.gather(rng.integers(0, len(p.particles), n))
    u = rng.random(n)
    use_foreign = abroad & (rng.random(n) < 0.7)
    df = pl.DataFrame({"b": base, "f": foreign, "s": second, "p": particle, "u": u,
                       "a": use_foreign})
    return df.select(
        pl.when(pl.col("a")).then(pl.col("f"))
        .when(pl.col("u") < 0.03).then(pl.concat_str([pl.col("p"), pl.col("b")], separator=" "))
        .when(pl.col("u") < 0.05).then(pl.concat_str([pl.col("b"), pl.col("s")], separator="-"))
        .otherwise(pl.col("b"))
        .alias("nom")
    ).to_series()


def given_names(
    rng: np.random.Generator, sexe: np.ndarray, birth_year: np.ndarray, abroad: np.ndarray
) -> pl.Series:
    """All given names (1 to 3, title case, space-separated), by sex, era and origin."""
    p = pools()
    n = len(sexe)
    female = (sexe == 2).astype(np.int64)
    pool = np.where(abroad & (rng.random(n) < 0.6), ABROAD_M + female,
                    np.where((birth_year >= 1990) & (rng.random(n) < 0.75), MODERN_M + female,
                             CLASSIC_M + female))
    size = p.given_sizes[pool]
    base = rng.integers(0, 1 << 30, n) % size
    step = 1 + rng.integers(0, 1 << 30, n) % np.maximum(size // 3, 1)
    count = np.where(birth_year >= 1990, 1 + (rng.random(n) < 0.5),
                     1 + (rng.random(n) < 0.7) + (rng.random(n) < 0.35))
    cols = {}
    for k in range(3):
        idx = p.given_offsets[pool] + (base + k * step) % size
        s = p.given.gather(idx)
        cols[f"g{k}"] = s
    hyphen = (rng.random(n) < 0.05) & (pool <= CLASSIC_F)
    df = pl.DataFrame({**cols, "c": count, "h": hyphen, "f": female.astype(bool)})
    first = (
        pl.when(pl.col("h"))
        .then(pl.concat_str([pl.when(pl.col("f")).then(pl.lit("Marie")).otherwise(pl.lit("Jean")),
                             pl.col("g0")], separator="-"))
        .otherwise(pl.col("g0"))
    )
    return df.select(
        pl.concat_str(
            [first,
             pl.when(pl.col("c") >= 2).then(pl.col("g1")),
             pl.when(pl.col("c") >= 3).then(pl.col("g2"))],
            separator=" ", ignore_nulls=True,
        ).alias("prenoms")
    ).to_series()
