"""Spark in the tests: local mode, two threads; skipped (saying why) only when Java is absent."""

from __future__ import annotations

import shutil

import pytest

from pipeline.central.engines import EngineSettings

needs_spark = pytest.mark.skipif(
    shutil.which("java") is None,
    reason="Java absent : installer openjdk-17-jre-headless (scripts/install_test_tools.sh)",
)


def spark_settings() -> EngineSettings:
    return EngineSettings(name="spark", threads=2, memory_limit="1GB")
