"""Engine settings from the command line: refused in French when malformed, passed down when not."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.central.engines import EngineSettings, current_settings, use_settings
from pipeline.central.engines.spark_engine import _conf
from pipeline.common.errors import InputError


def test_unknown_engine_is_refused_in_french(run_cli, tmp_path: Path) -> None:
    res = run_cli("link", "--caf", str(tmp_path / "a.parquet"), "--cpam",
                  str(tmp_path / "b.parquet"), "--out", str(tmp_path / "out"),
                  "--engine", "oracle")
    assert res.returncode != 0
    assert "moteur inconnu « oracle »" in res.stdout + res.stderr


def test_malformed_spark_setting_is_refused() -> None:
    with pytest.raises(InputError, match="clé=valeur"):
        EngineSettings.parse_conf(["spark.executor.memory"])
    assert EngineSettings.parse_conf(["a.b = 1", "c=d=e"]) == (("a.b", "1"), ("c", "d=e"))


def test_spark_settings_follow_the_options(tmp_path: Path) -> None:
    local = EngineSettings(name="spark", threads=3, memory_limit="6GB", temp_dir=tmp_path,
                           spark_conf=(("spark.sql.shuffle.partitions", "50"),))
    master, conf = _conf(local)
    assert master == "local[3]"
    assert conf["spark.driver.memory"] == "6g"
    assert conf["spark.local.dir"] == str(tmp_path)
    assert conf["spark.sql.shuffle.partitions"] == "50"  # the user's setting wins
    master, _ = _conf(EngineSettings(name="spark", spark_master="spark://m:7077"))
    assert master == "spark://m:7077"


def test_use_settings_is_the_default_inside_the_block_only() -> None:
    spark = EngineSettings(name="spark")
    assert current_settings().name == "duckdb"
    with use_settings(spark):
        assert current_settings() is spark
    assert current_settings().name == "duckdb"
