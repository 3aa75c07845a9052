"""Cross-column rules that need several canonical columns at once (second pass).

Birth vs usage name ("DUPONT EPOUSE MARTIN"), NIR against sex and birth date, birth date after the
extraction date, CSS contract consistency. They run on typed columns, after `convert`.
"""

from __future__ import annotations

import polars as pl

from pipeline.agency.ingest.convert import IGNORE, WARN, Conversion
from pipeline.agency.ingest.layout import Layout
from pipeline.shared.providers import is_benefits

W_SEX = "sexe incohérent avec le NIR"
W_YEAR = "année de naissance incohérente avec le NIR"
W_MONTH = "mois de naissance incohérent avec le NIR"
R_FUTURE = "date de naissance postérieure à la date d'extraction"
W_CSS_NO_DATES = "CSS sans date de début ou de fin"
W_CSS_DATES_NON = "dates de CSS renseignées alors que css = NON"
W_CSS_ORDER = "fin de CSS antérieure au début"


def build(layout: Layout) -> Conversion:
    """Second-pass expressions over the typed frame."""
    conv = Conversion(outputs={}, issues=[], prefix="b")
    src = {c.name: c.source for c in layout.columns}
    col = pl.col

    if is_benefits(layout.agency):
        # convert.py already split "DUPONT EPOUSE MARTIN" (per distinct value).
        usage = pl.coalesce(col("nom_usage"), col("__usage_from_birth"))
        conv.outputs["nom_usage"] = pl.when(usage.ne_missing(col("nom_naissance"))).then(usage)

    nir = col("nir")
    conv.add_issue(src["sexe"], WARN, pl.when(
        col("sexe").is_not_null() & col("__nir_sexe").is_not_null()
        & (col("sexe").cast(pl.Int8, strict=False) != col("__nir_sexe"))
    ).then(pl.lit(W_SEX)))
    nir_year = nir.str.slice(1, 2).cast(pl.Int16, strict=False)
    conv.add_issue(src["date_naissance"], WARN, pl.when(
        col("naiss_annee").is_not_null() & (nir_year != col("naiss_annee") % 100)
    ).then(pl.lit(W_YEAR)))
    nir_month = nir.str.slice(3, 2).cast(pl.Int16, strict=False)
    conv.add_issue(src["date_naissance"], WARN, pl.when(
        col("naiss_mois").is_not_null() & nir_month.is_between(1, 12)
        & (nir_month != col("naiss_mois"))
    ).then(pl.lit(W_MONTH)))

    future = col("date_naissance") > col("date_extraction")
    conv.add_issue(src["date_naissance"], IGNORE, pl.when(future).then(pl.lit(R_FUTURE)))
    keep = future.fill_null(False).not_()
    for name in ("date_naissance", "naiss_annee", "naiss_mois", "naiss_jour"):
        conv.outputs[name] = pl.when(keep).then(col(name))

    if not is_benefits(layout.agency):
        with_css = col("css").is_in(["GRATUITE", "PARTICIPATION"])
        conv.add_issue(src["css"], WARN, pl.when(
            with_css & (col("css_debut").is_null() | col("css_fin").is_null())
        ).then(pl.lit(W_CSS_NO_DATES)))
        conv.add_issue(src["css"], WARN, pl.when(
            (col("css") == "NON") & (col("css_debut").is_not_null() | col("css_fin").is_not_null())
        ).then(pl.lit(W_CSS_DATES_NON)))
        conv.add_issue(src["css_fin"], WARN, pl.when(
            col("css_fin") < col("css_debut")
        ).then(pl.lit(W_CSS_ORDER)))
    return conv
