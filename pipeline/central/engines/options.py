"""The engine options shared by the `link` and `match` commands (one declaration, two commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.central.engines.settings import ENGINES, EngineSettings

# NONRECOURS_ENGINE also reaches the `match` stage that `run` (make match) starts as a process.
EngineOpt = Annotated[str, typer.Option(
    "--engine", envvar="NONRECOURS_ENGINE",
    help=f"Moteur de calcul : {' ou '.join(ENGINES)} (voir README, « Engines »).")]
MemoryLimitOpt = Annotated[str, typer.Option(
    "--memory-limit", help="Limite mémoire du moteur (DuckDB ; Spark local : mémoire du driver).")]
TempDirOpt = Annotated[Path | None, typer.Option(
    "--temp-dir", help="Dossier où le moteur déborde sur disque au-delà de la limite.")]
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", help="Fils de calcul (défaut : tous les cœurs).")]
SparkMasterOpt = Annotated[str | None, typer.Option(
    "--spark-master", help="Maître Spark (défaut : local[fils] ; p. ex. spark://hôte:7077).")]
SparkConfOpt = Annotated[list[str] | None, typer.Option(
    "--spark-conf", help="Réglage Spark clé=valeur (répétable), appliqué en dernier.")]


def settings_from(engine: str, memory_limit: str, temp_dir: Path | None, threads: int | None,
                  spark_master: str | None, spark_conf: list[str] | None) -> EngineSettings:
    return EngineSettings(name=engine, memory_limit=memory_limit, temp_dir=temp_dir,
                          threads=threads, spark_master=spark_master,
                          spark_conf=EngineSettings.parse_conf(spark_conf))
