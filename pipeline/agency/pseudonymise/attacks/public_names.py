"""A public-style first-name table by birth year and sex, for the frequency attacker.

The real attacker would hold INSEE's « fichier des prénoms » (births per first name, year and
sex since 1900). It cannot be downloaded here, and the synthetic people are not drawn from it,
so this table is GENERATOR-DERIVED: the given-name sampler of pipeline/synth, run on its own
seed over a large fixed population per year and sex, normalised as ingest normalises names.
It is to the synthetic extracts what the INSEE file is to a real one: the distribution of the
population the file is drawn from, not the file itself.
"""

from __future__ import annotations

import functools

import numpy as np
import polars as pl

PER_CELL = 600  # draws per (year, sex): ranks of the ~100 names of a pool settle well below
YEARS = (1900, 2030)
SEED = 18_900_101  # independent of any dataset seed
ABROAD_SHARE = 0.1


@functools.cache
def first_name_table() -> pl.DataFrame:
    """(annee, sexe, prenom1, rang): rank 0 = the commonest first name of that year and sex."""
    from pipeline.agency.ingest.normalise.names import given_names
    from pipeline.synth import names

    rng = np.random.default_rng(SEED)
    years = np.arange(YEARS[0], YEARS[1])
    cells = len(years) * 2
    birth_year = np.repeat(years, 2 * PER_CELL)
    sexe = np.tile(np.repeat(np.array([1, 2]), PER_CELL), len(years))
    abroad = rng.random(cells * PER_CELL) < ABROAD_SHARE
    raw = names.given_names(rng, sexe, birth_year, abroad)
    counts = pl.DataFrame({"annee": birth_year.astype(np.int32), "sexe": sexe.astype(np.int8),
                           "p": raw}).group_by("annee", "sexe", "p").len("n")
    first, _ = given_names(pl.col("p"))  # normalised once per distinct raw value
    spelled = counts.select(pl.col("p").unique()).with_columns(prenom1=first)
    df = counts.join(spelled, on="p").drop_nulls("prenom1")
    return (df.group_by("annee", "sexe", "prenom1").agg(pl.col("n").sum())
            .sort(["annee", "sexe", "n", "prenom1"], descending=[False, False, True, False])
            .with_columns(rang=pl.int_range(pl.len(), dtype=pl.Int64).over("annee", "sexe"))
            .drop("n"))
