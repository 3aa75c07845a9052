"""Commands of this stage, mounted by pipeline/cli.py: `link`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
            "--config", help="Modèle de liaison (défaut : pipeline/match/comparisons.yaml).")]
        = None,
        truth: Annotated[Path | None, typer.Option(
            "--truth",
            help="Vérité terrain (données synthétiques seulement) : caf_handle, cpam_handle.")]
        = None,
        memory_limit: Annotated[str, typer.Option(
            "--memory-limit", help="Limite mémoire DuckDB.")] = "4GB",
        temp_dir: Annotated[Path | None, typer.Option(
            "--temp-dir", help="Dossier où DuckDB déborde sur disque au-delà de la limite.")]
        = None,
        threads: Annotated[int | None, typer.Option(
            "--threads", help="Fils DuckDB (défaut : tous).")] = None,
        remplacer: Remplacer = False,
    ) -> None:
        """Lier les personnes des deux exports : passes déterministes puis Fellegi–Sunter."""
        from pipeline.common.outputs import exclusive_output
        from pipeline.common.progress import info
        from pipeline.match import link

        with exclusive_output(out, replace=remplacer, outputs=[out / "links.parquet"]):
            result = link(caf, cpam, out, config=config, truth=truth,
                          memory_limit=memory_limit, temp_dir=temp_dir, threads=threads)
        by_pass = result.stats["funnel"]["links_by_pass"]
        detail = ", ".join(f"{k} {v}" for k, v in by_pass.items())
        info(f"{result.n_links} liens ({detail}) ; {result.n_clerical} paires à revoir "
             f"-> {out}")
        quality = result.stats.get("quality")
        if quality:
            info(f"précision {quality['precision']:.4f}, rappel {quality['recall']:.4f}, "
                 f"F1 {quality['f1']:.4f}")
