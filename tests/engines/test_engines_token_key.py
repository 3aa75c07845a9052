"""The 64-bit token key is the same number on every engine (and in plain Python)."""

from __future__ import annotations

import random

import polars as pl
import pytest
from spark_support import needs_spark, spark_settings

from pipeline.central.engines import EngineSettings
from pipeline.central.engines.duckdb_engine import DuckDBEngine
from pipeline.central.match.db import render

_RNG = random.Random(20261202)
TOKENS = [f"{_RNG.getrandbits(128):032x}" for _ in range(200)] + [
    "f" * 32, "0" * 32, "8" + "0" * 31, "7" + "f" * 31]


def _keys(engine) -> list[int | None]:
    t = engine.load_frame("toks", pl.DataFrame({"i": range(len(TOKENS) + 1),
                                                "tok": [*TOKENS, None]}))
    expr = render(engine, "token_key", col="tok").strip()
    return engine.collect(f"SELECT i, {expr} AS k FROM {t} ORDER BY i")["k"].to_list()


def _python(tok: str) -> int:
    """The first 64 bits, shifted into the signed range every engine has."""
    return int(tok[:16], 16) - 2**63


def test_duckdb_key_is_the_first_64_bits_of_the_token() -> None:
    with DuckDBEngine(EngineSettings(threads=1)) as engine:
        keys = _keys(engine)
    assert keys == [*map(_python, TOKENS), None]
    assert len(set(keys[:-1])) == len(set(TOKENS))


@needs_spark
def test_spark_key_equals_duckdb_key() -> None:
    from pipeline.central.engines.spark_engine import SparkEngine

    with SparkEngine(spark_settings()) as engine:
        assert _keys(engine) == [*map(_python, TOKENS), None]


def test_a_non_hexadecimal_token_is_refused_on_duckdb() -> None:
    with DuckDBEngine(EngineSettings(threads=1)) as engine:
        t = engine.load_frame("bad", pl.DataFrame({"tok": ["pas-un-jeton-hexa-decimal"]}))
        expr = render(engine, "token_key", col="tok").strip()
        with pytest.raises(engine.error):
            engine.collect(f"SELECT {expr} FROM {t}")
