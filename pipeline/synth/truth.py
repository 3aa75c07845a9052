"""Ground truth of one chunk (docs/CONTRACTS.md "Ground truth"), plus the agencies' lists.

Frames only: generate.py concatenates the chunks and writes the files. Line numbers are
physical lines of the raw files (header = 1), offset by the rows of the previous chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from pipeline.synth import optout, rules
from pipeline.synth.params import CssTable

HOUSEHOLD_COLUMNS = ["matricule", "quartier", "nb_personnes", "a_cpam", *rules.RULE_IDS,
                     "a_verifier", "opposition", "contacte_6m"]


@dataclass
class Truth:
    persons: pl.DataFrame  # person_id;matricule;caf_line;cpam_line
    households: pl.DataFrame  # HOUSEHOLD_COLUMNS
    reverse: pl.DataFrame  # cpam_line;person_id;css_gratuite_sans_minima
    opposition_caf: pl.DataFrame  # matricule;nir
    opposition_cpam: pl.DataFrame  # nir
    contacts: pl.DataFrame  # matricule;date_contact
    counts: dict
    msa_reverse: pl.DataFrame | None = None  # msa_line;person_id;css_gratuite_sans_minima


def person_id(col: str = "pid") -> pl.Expr:
    return pl.format("P{}", pl.col(col).cast(pl.String).str.zfill(8))


def build(rng: np.random.Generator, hh: pl.DataFrame, pp: pl.DataFrame, caf_df: pl.DataFrame,
          cpam_df: pl.DataFrame, caf_first: int, cpam_first: int, quartiers: pl.DataFrame,
          table: CssTable, ref: date, msa: tuple[pl.DataFrame, int] | None = None) -> Truth:
    """Truth frames for one chunk; `caf_first`/`cpam_first`: line of the chunk's first row.

    `msa`: the MSA rows and the line of their first row, when the dataset has an MSA extract.
    Then `persons` gains msa_line, `households` gains a_msa, and a household insured at the MSA
    counts as found on the coverage side (the central run links the CAF to the union of the
    CPAM and the MSA), so its rules read its MSA cover."""
    caf_lines = caf_df.select("pid", caf_line=pl.col("_row") + caf_first)
    cpam_lines = cpam_df.select("pid", cpam_line=pl.col("_row") + cpam_first)
    extra = ["a_msa"] if msa else []
    persons = (
        pp.select("pid", "hid", "role", "nir", "nir_cpam")
        .join(hh.select("hid", "matricule", "caf", "a_cpam", *extra), on="hid", how="left")
        .join(caf_lines, on="pid", how="left")
        .join(cpam_lines, on="pid", how="left")
        .with_columns(person_id=person_id())
        .sort("pid")  # the opposition draw below is positional: fix the row order first
    )
    if msa:
        persons = persons.join(msa[0].select("pid", msa_line=pl.col("_row") + msa[1]),
                               on="pid", how="left", maintain_order="left")
    opp = optout.opposition(
        rng, persons.select("pid", "role", in_caf=pl.col("caf"),
                            in_cpam=pl.col("cpam_line").is_not_null()))
    persons = persons.join(opp, on="pid", how="left")
    caf_hh = hh.filter(pl.col("caf"))
    contacts = optout.contacts(rng, caf_hh["matricule"], ref)
    opp_hh = persons.group_by("hid").agg(
        opposition=(pl.col("opp_caf") | pl.col("opp_cpam")).any().cast(pl.Int8))
    recent = contacts.filter(pl.col("date_contact") >= optout.recent(ref)).select(
        "matricule", contacte_6m=pl.lit(1, dtype=pl.Int8))
    covered = caf_hh.with_columns(a_cpam=pl.col("a_cpam") | pl.col("a_msa")) if msa else caf_hh
    households = (
        rules.household_truth(covered, pp, ref, table).with_columns(a_cpam=caf_hh["a_cpam"])
        .join(quartiers, on="code_iris", how="left")
        .join(opp_hh, on="hid", how="left")
        .join(recent, on="matricule", how="left")
        .with_columns(
            quartier=pl.col("quartier").fill_null("HORS_TERRITOIRE"),
            nb_personnes=pl.col("n"),
            a_cpam=pl.col("a_cpam").cast(pl.Int8),
            contacte_6m=pl.col("contacte_6m").fill_null(0),
        )
        .with_columns(pl.col(extra).cast(pl.Int8))
    )
    # reverse rule (CPAM side): an ASSURE with an active free CSS, not in a CAF household
    # receiving RSA, RSAM or PPA
    r = pl.lit(ref)
    minima = pl.col("p_RSA") | pl.col("p_RSAM") | pl.col("p_PPA")
    def reverse_rule(df: pl.DataFrame, first: int, line: str) -> pl.DataFrame:
        return df.filter(
            (pl.col("qualite") == "ASSURE") & (pl.col("css") == "GRATUITE")
            & (pl.col("css_debut") <= r) & (r <= pl.col("css_fin"))
            & (~pl.col("caf") | ~minima)
        ).select(
            pl.col("_row").add(first).alias(line), person_id=person_id(),
            css_gratuite_sans_minima=pl.lit(1, dtype=pl.Int8),
        )

    reverse = reverse_rule(cpam_df, cpam_first, "cpam_line")
    msa_reverse = reverse_rule(msa[0], msa[1], "msa_line") if msa else None
    counts = {
        "caf_households": caf_hh.height,
        "cpam_only_households": hh.height - caf_hh.height,
        "persons": pp.height,
        "caf_households_absent_cpam": int((~caf_hh["a_cpam"]).sum()),
        "hors_territoire_households": int((households["quartier"] == "HORS_TERRITOIRE").sum()),
        "twins_pairs": int((pp["twin_rank"] == 2).sum()),
        "opposition_caf": int(persons["opp_caf"].sum()),
        "opposition_cpam": int(persons["opp_cpam"].sum()),
        "households_opposition": int(households["opposition"].fill_null(0).sum()),
        "contacts": contacts.height,
        "households_contacte_6m": int(households["contacte_6m"].sum()),
        "cpam_reverse": reverse.height,
        **({"caf_households_at_msa": int(caf_hh["a_msa"].sum()),
            "msa_reverse": msa_reverse.height} if msa else {}),
        "rules": {k: int(households[k].sum()) for k in [*rules.RULE_IDS, "a_verifier"]},
    }
    return Truth(
        persons=persons.select("person_id", "matricule", "caf_line", "cpam_line",
                               *(["msa_line"] if msa else [])),
        households=households.select(*HOUSEHOLD_COLUMNS[:4], *extra, *HOUSEHOLD_COLUMNS[4:]),
        reverse=reverse,
        opposition_caf=persons.filter(pl.col("opp_caf")).select("matricule", "nir"),
        opposition_cpam=persons.filter(pl.col("opp_cpam")).select(nir=pl.col("nir_cpam")),
        contacts=contacts.with_columns(pl.col("date_contact").dt.strftime("%Y-%m-%d")),
        counts=counts,
        msa_reverse=msa_reverse,
    )
