"""Spark through PySpark: local mode on one machine, or any cluster `spark_master` names.

Tables are temporary views over DataFrames cut from their lineage (`localCheckpoint`): a later
step reads the computed rows, not the plan that made them, so iterative steps (one-to-one rounds,
deterministic passes) stay as cheap on Spark as on DuckDB. One SparkSession per process is shared
by the steps (link, then detect) and stopped when the process ends.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
from pathlib import Path

import polars as pl

from pipeline.central.engines.base import Engine, Table
from pipeline.central.engines.settings import EngineSettings
from pipeline.common.errors import PipelineError

_SESSION = None
_SESSION_KEY: tuple | None = None

# The one type spelling the shared SQL uses that Spark reads differently: DuckDB's VARCHAR has no
# length, Spark's must have one (STRING is the same type on both).
_VARCHAR = re.compile(r"\bVARCHAR\b(?!\s*\()", re.IGNORECASE)


def java_available() -> bool:
    return shutil.which("java") is not None


def _spark_size(value: str) -> str:
    """'4GB' (DuckDB's spelling) -> '4g' (the JVM's)."""
    m = re.fullmatch(r"\s*(\d+)\s*([kmgt])i?b?\s*", value, re.IGNORECASE)
    if not m:
        raise PipelineError(f"limite mémoire invalide pour Spark (attendu p. ex. 4GB) : {value!r}")
    return f"{m.group(1)}{m.group(2).lower()}"


def _conf(settings: EngineSettings) -> tuple[str, dict[str, str]]:
    master = settings.spark_master or f"local[{settings.threads or '*'}]"
    conf = {
        "spark.driver.memory": _spark_size(settings.memory_limit),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.enabled": "false",
        "spark.log.level": "ERROR",
    }
    if master.startswith("local"):
        # one machine: one shuffle partition per core, not Spark's cluster default of 200
        conf["spark.sql.shuffle.partitions"] = str(settings.threads or os.cpu_count() or 2)
    if settings.temp_dir is not None:
        Path(settings.temp_dir).mkdir(parents=True, exist_ok=True)
        conf["spark.local.dir"] = str(settings.temp_dir)
    conf.update(dict(settings.spark_conf))
    return master, conf


def session(settings: EngineSettings):
    """The process's SparkSession for these settings (started on first use)."""
    global _SESSION, _SESSION_KEY
    if not java_available():
        raise PipelineError("moteur Spark indisponible : Java introuvable (paquet Debian "
                            "openjdk-17-jre-headless, voir scripts/install_test_tools.sh)")
    master, conf = _conf(settings)
    key = (master, tuple(sorted(conf.items())))
    if _SESSION is not None and key == _SESSION_KEY:
        return _SESSION
    if _SESSION is not None:
        _SESSION.stop()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName("nonrecours")
    for k, v in conf.items():
        builder = builder.config(k, v)
    _SESSION = builder.getOrCreate()
    _SESSION.sparkContext.setLogLevel("ERROR")
    _SESSION_KEY = key
    atexit.register(_SESSION.stop)
    return _SESSION


class SparkEngine(Engine):
    dialect = "spark"

    def __init__(self, settings: EngineSettings) -> None:
        super().__init__(settings)
        from pyspark.errors import PySparkException
        from pyspark.storagelevel import StorageLevel

        self.error = PySparkException
        self._level = StorageLevel.MEMORY_AND_DISK
        self.spark = session(settings)
        self._frames: dict[str, object] = {}

    def _sql(self, text: str):
        return self.spark.sql(_VARCHAR.sub("STRING", text))

    def _keep(self, name: str, df) -> Table:
        old = self._frames.pop(name, None)
        df.createOrReplaceTempView(name)
        self._frames[name] = df
        if old is not None:
            old.unpersist()
        return Table(name)

    def create(self, name: str, select_sql: str) -> Table:
        df = self._sql(select_sql).localCheckpoint(eager=True, storageLevel=self._level)
        return self._keep(name, df)

    def view(self, name: str, select_sql: str) -> Table:
        self._sql(select_sql).createOrReplaceTempView(name)
        return Table(name)

    def load_frame(self, name: str, frame: pl.DataFrame) -> Table:
        arrow = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
        df = self.spark.createDataFrame(arrow)
        return self._keep(name, df.localCheckpoint(eager=True, storageLevel=self._level))

    def collect(self, select_sql: str) -> pl.DataFrame:
        return pl.from_arrow(self._sql(select_sql).toArrow())

    def columns(self, table: Table) -> list[str]:
        return list(self.spark.table(table.name).columns)

    def execute(self, statement: str) -> None:
        self._sql(statement)

    def drop(self, table: Table) -> None:
        self.spark.catalog.dropTempView(table.name)
        df = self._frames.pop(table.name, None)
        if df is not None:
            df.unpersist()

    def close(self) -> None:
        for name in list(self._frames):
            self.drop(Table(name))
