"""Tokens are read as the Int64 the agency wrote (export contract 5), on every engine; a text
token column (an export of contract 4 or earlier) fails the load instead of joining as text."""

from __future__ import annotations

import random

import polars as pl
import pytest
from spark_support import needs_spark, spark_settings

from pipeline.central.engines import EngineSettings
from pipeline.central.engines.duckdb_engine import DuckDBEngine
from pipeline.central.match.db import _column_expr

_RNG = random.Random(20261202)
TOKENS = [_RNG.getrandbits(64) - 2**63 for _ in range(200)] + [-(2**63), 2**63 - 1, 0]


def _keys(engine) -> list[int | None]:
    t = engine.load_frame("toks", pl.DataFrame({"i": range(len(TOKENS) + 1),
                                                "tok_a": [*TOKENS, None]},
                                               schema_overrides={"tok_a": pl.Int64}))
    cols = f"{_column_expr('tok_a', True)}, {_column_expr('tok_b', False)}"
    return engine.collect(f"SELECT i, {cols} FROM {t} ORDER BY i").rows()


def test_duckdb_reads_the_tokens_as_written() -> None:
    with DuckDBEngine(EngineSettings(threads=1)) as engine:
        rows = _keys(engine)
    assert [r[1] for r in rows] == [*TOKENS, None]
    assert {r[2] for r in rows} == {None}  # a token the export lacks reads as NULL


@needs_spark
def test_spark_reads_the_same_numbers() -> None:
    from pipeline.central.engines.spark_engine import SparkEngine

    with SparkEngine(spark_settings()) as engine:
        assert [r[1] for r in _keys(engine)] == [*TOKENS, None]


def test_a_text_token_column_fails_the_load_on_duckdb() -> None:
    with DuckDBEngine(EngineSettings(threads=1)) as engine:
        t = engine.load_frame("bad", pl.DataFrame({"tok_a": ["0123456789abcdef0123456789abcdef"]}))
        with pytest.raises(engine.error):
            engine.collect(f"SELECT {_column_expr('tok_a', True)} FROM {t}")
