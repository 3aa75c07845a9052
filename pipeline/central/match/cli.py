"""Commands of this stage, mounted by pipeline/cli.py: `link`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.central.engines.options import (
    EngineOpt,
    MemoryLimitOpt,
    SparkConfOpt,
    SparkMasterOpt,
    TempDirOpt,
    ThreadsOpt,
    settings_from,
)
from pipeline.common.outputs import Remplacer


def register(app: typer.Typer) -> None:
    """Add the `link` command to the top-level app."""

    @app.command("link")
    def link_command(
        caf: Annotated[Path, typer.Option(
            "--caf", help="Export pseudonymisé de la CAF (.parquet).")],
        cpam: Annotated[Path, typer.Option(
            "--cpam", help="Export pseudonymisé de la CPAM (.parquet).")],
        out: Annotated[Path, typer.Option(
            "--out", help="Dossier de sortie (links.parquet, ...).")],
        config: Annotated[Path | None, typer.Option(
            "--config", help="Modèle de liaison (défaut : pipeline/shared/comparisons.yaml).")]
        = None,
        truth: Annotated[Path | None, typer.Option(
            "--truth",
            help="Vérité terrain (données synthétiques seulement) : caf_handle, cpam_handle.")]
        = None,
        engine: EngineOpt = "duckdb",
        memory_limit: MemoryLimitOpt = "4GB",
        temp_dir: TempDirOpt = None,
        threads: ThreadsOpt = None,
        spark_master: SparkMasterOpt = None,
        spark_conf: SparkConfOpt = None,
        remplacer: Remplacer = False,
    ) -> None:
        """Lier les personnes des deux exports : passes déterministes puis Fellegi–Sunter."""
        from pipeline.central.match import link
        from pipeline.common.outputs import exclusive_output
        from pipeline.common.progress import info

        settings = settings_from(engine, memory_limit, temp_dir, threads, spark_master,
                                 spark_conf)
        with exclusive_output(out, replace=remplacer, outputs=[out / "links.parquet"]):
            result = link(caf, cpam, out, config=config, truth=truth, engine=settings)
        by_pass = result.stats["funnel"]["links_by_pass"]
        detail = ", ".join(f"{k} {v}" for k, v in by_pass.items())
        info(f"{result.n_links} liens ({detail}) ; {result.n_clerical} paires à revoir "
             f"-> {out}")
        quality = result.stats.get("quality")
        if quality:
            info(f"précision {quality['precision']:.4f}, rappel {quality['recall']:.4f}, "
                 f"F1 {quality['f1']:.4f}")
