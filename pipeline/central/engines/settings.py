"""Engine settings: which engine, its resources, and (for Spark) where the cluster is.

One `EngineSettings` value travels from the command line to `link()` and `detect()`; a caller that
cannot pass it down (the central run calls both) sets it for a block with `use_settings`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.common.errors import InputError

ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class EngineSettings:
    """`memory_limit`, `temp_dir` (spill folder) and `threads` apply to both engines (Spark local
    mode: driver memory, spark.local.dir, local[threads]); `spark_master` and `spark_conf`
    (key=value pairs, applied last) to Spark only."""

    name: str = "duckdb"
    memory_limit: str = "4GB"
    temp_dir: Path | None = None
    threads: int | None = None
    spark_master: str | None = None
    spark_conf: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise InputError("--engine", f"moteur inconnu « {self.name} » (connus : "
                                         f"{', '.join(ENGINES)})")
        if self.threads is not None and self.threads < 1:
            raise InputError("--threads", "nombre de fils invalide (au moins 1)")

    @staticmethod
    def parse_conf(pairs: list[str] | None) -> tuple[tuple[str, str], ...]:
        """`--spark-conf key=value` options into pairs; a malformed one is refused in French."""
        out = []
        for pair in pairs or []:
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise InputError("--spark-conf", f"réglage Spark invalide (attendu clé=valeur) : "
                                                 f"{pair!r}")
            out.append((key.strip(), value.strip()))
        return tuple(out)


_CURRENT: ContextVar[EngineSettings | None] = ContextVar("engine_settings", default=None)


def current_settings() -> EngineSettings:
    """The settings `use_settings` put in force, else the defaults (DuckDB, 4GB)."""
    return _CURRENT.get() or EngineSettings()


@contextlib.contextmanager
def use_settings(settings: EngineSettings) -> Iterator[EngineSettings]:
    """Run a block (e.g. the whole central run) with these engine settings as the default."""
    token = _CURRENT.set(settings)
    try:
        yield settings
    finally:
        _CURRENT.reset(token)
