"""`generate`: one call that writes a complete synthetic dataset (raw extracts + ground truth).

Every random draw comes from a numpy Generator spawned from `seed` (one stream per step), and
every file is written in a fixed row order, so the same arguments give byte-identical files.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from pipeline import __version__
from pipeline.common.errors import PipelineError
from pipeline.common.files import write_text
from pipeline.common.progress import step
from pipeline.common.tables import write_csv
from pipeline.synth import css, economy, extracts, households, optout, params, rules, writer
from pipeline.synth import noise as noise_mod
from pipeline.synth import territory as territory_mod

GENERATOR_VERSION = f"nonrecours-synth {__version__} (modele 1)"
ABSENT_CPAM_RATE = 0.09  # households covered by another scheme (MSA...)


def _streams(seed: int, k: int) -> list[np.random.Generator]:
    return [np.random.Generator(np.random.PCG64(s)) for s in np.random.SeedSequence(seed).spawn(k)]


def generate(
    households: int,
    seed: int,
    noise: float = 1.0,
    out: Path = Path("sample_data"),
    reference_date: date = date(2026, 3, 2),
    territory: str = "flers",
) -> dict:
    """Write raw/, truth/, territory/ and agencies/ under `out`; return summary counts."""
    if households < 1:
        raise PipelineError("--households doit être au moins 1")
    if households > 8_000_000:
        raise PipelineError("--households : au plus 8 000 000 (matricules à 7 chiffres)")
    if noise < 0:
        raise PipelineError("--noise doit être positif ou nul")
    out = Path(out)
    ref = reference_date
    rng = _streams(seed, 12)
    terr = territory_mod.load(territory)
    table = params.load_table(ref)

    with step(f"Population synthétique ({households} foyers CAF)"):
        pop = households_build(rng, households, ref, terr)
        hh, pp = pop
        ceil = rules.ceilings(pp, hh, table)
        hh = hh.join(ceil, on="hid", how="left").sort("hid")
        hh = economy.draw(rng[1], hh, pp, hh["plafond_gratuite"].to_numpy())
        hh = economy.contacts(rng[2], hh, terr.postal, terr.streets)
        caf = hh["caf"].to_numpy()
        matricule = np.full(hh.height, None, dtype=object)
        mats = rng[3].choice(9_000_000, size=int(caf.sum()), replace=False) + 1_000_000
        hh = hh.with_columns(
            matricule=pl.Series(np.where(caf, 0, 0), dtype=pl.Int64).scatter(
                np.flatnonzero(caf), mats).cast(pl.String),
            a_cpam=pl.Series(~caf | (rng[3].random(hh.height) >= ABSENT_CPAM_RATE)),
        ).with_columns(
            matricule=pl.when(pl.col("caf")).then(pl.col("matricule")),
            ressources_css=rules.css_resources(hh, table),
        )
        del matricule
        hh = css.draw(rng[4], hh, ref)

    with step("Extraits CAF et CPAM (bruit, lignes malformées)"):
        caf_df = extracts.caf_frame(rng[5], pp, hh).with_row_index("_row")
        cpam_df = extracts.cpam_frame(rng[6], pp, hh).with_row_index("_row")
        caf_noisy, caf_counts, caf_bad_nir = noise_mod.apply_caf(rng[7], caf_df, noise)
        cpam_noisy, cpam_counts, cpam_bad_nir = noise_mod.apply_cpam(rng[8], cpam_df, noise)
        caf_s, caf_mal = writer.malform(rng[9], writer.caf_strings(caf_noisy, ref),
                                        writer.CAF_MALFORMED, noise, iso=True)
        cpam_s, cpam_mal = writer.malform(rng[10], writer.cpam_strings(cpam_noisy, ref),
                                          writer.CPAM_MALFORMED, noise, iso=False)
        writer.write_caf(out / "raw" / "caf_extract.csv", caf_s)
        writer.write_cpam(out / "raw" / "cpam_extract.csv", cpam_s)

    with step("Vérité terrain, territoire, listes des agences"):
        summary = _truth(out, rng[11], hh, pp, caf_df, cpam_df, terr, table, ref)
        territory_mod.write(terr, out)
        malformed = pl.concat([
            caf_mal.with_columns(fichier=pl.lit("raw/caf_extract.csv")),
            cpam_mal.with_columns(fichier=pl.lit("raw/cpam_extract.csv")),
        ]).select("fichier", "line", "column", "kind")
        write_csv(malformed, out / "truth" / "malformed.csv", sort_by=["fichier", "line"])
        counts = {
            **summary,
            "caf_rows": caf_df.height,
            "cpam_rows": cpam_df.height,
            "noise_caf": dict(sorted(caf_counts.items())),
            "noise_cpam": dict(sorted(cpam_counts.items())),
            "nir_errone_caf": int(caf_bad_nir.sum()),
            "nir_errone_cpam": int(cpam_bad_nir.sum()),
            "malformed_caf": _kinds(caf_mal),
            "malformed_cpam": _kinds(cpam_mal),
        }
        meta = {
            "seed": seed,
            "households": households,
            "noise": noise,
            "territory": territory,
            "reference_date": ref.isoformat(),
            "generator_version": GENERATOR_VERSION,
            "css_table_from": table.period_from.isoformat(),
            "counts": counts,
            "notes": [
                "Vérité calculée sur les foyers propres (avant bruit), indépendamment de "
                "pipeline/detect ; colonnes de règles = vérité pure (opposition et contacts "
                "à part).",
                "css_fin jamais tirée à R-365, R+60 ou R+61 ; date_contact jamais à moins de "
                "3 jours de la limite des 6 mois : la vérité ne dépend pas des bornes.",
                "Les lignes malformées sont listées dans truth/malformed.csv (line = ligne "
                "physique, en-tête = 1) ; la personne reste dans persons.csv.",
                "nir_errone : un chiffre changé, la clé ne correspond plus.",
            ],
        }
        write_text(out / "truth" / "meta.json",
                   json.dumps(meta, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    return counts


def households_build(rng: list[np.random.Generator], n: int, ref: date,
                     terr: territory_mod.Territory) -> tuple[pl.DataFrame, pl.DataFrame]:
    pop = households.build(rng[0], n, ref, terr)
    return pop.households, pop.persons


def _kinds(report: pl.DataFrame) -> dict[str, int]:
    return {k: int(v) for k, v in report.group_by("kind").len().sort("kind").iter_rows()}


def _truth(out: Path, rng: np.random.Generator, hh: pl.DataFrame, pp: pl.DataFrame,
           caf_df: pl.DataFrame, cpam_df: pl.DataFrame, terr: territory_mod.Territory,
           table: params.CssTable, ref: date) -> dict:
    """truth/persons.csv, households.csv, cpam_reverse.csv and the agencies' lists."""
    caf_lines = caf_df.select("pid", caf_line=pl.col("_row") + 2)
    cpam_lines = cpam_df.select("pid", cpam_line=pl.col("_row") + 2)
    persons = (
        pp.select("pid", "hid", "role")
        .join(hh.select("hid", "matricule", "caf", "a_cpam"), on="hid", how="left")
        .join(caf_lines, on="pid", how="left")
        .join(cpam_lines, on="pid", how="left")
        .with_columns(person_id=pl.format("P{}", pl.col("pid").cast(pl.String).str.zfill(8)))
    )
    write_csv(persons.select("person_id", "matricule", "caf_line", "cpam_line"),
              out / "truth" / "persons.csv", sort_by=["person_id"])

    # agencies' lists
    opp = optout.opposition(
        rng, persons.select("pid", "role", in_caf=pl.col("caf"),
                            in_cpam=pl.col("cpam_line").is_not_null()))
    persons = persons.join(opp, on="pid", how="left").join(pp.select("pid", "nir", "nir_cpam"),
                                                          on="pid")
    write_csv(persons.filter(pl.col("opp_caf")).select("matricule", "nir"),
              out / "agencies" / "caf" / "opposition.csv", sort_by=["matricule", "nir"],
              private=True)
    write_csv(persons.filter(pl.col("opp_cpam")).select(nir=pl.col("nir_cpam")),
              out / "agencies" / "cpam" / "opposition.csv", sort_by=["nir"], private=True)
    caf_hh = hh.filter(pl.col("caf"))
    contacts = optout.contacts(rng, caf_hh["matricule"], ref)
    write_csv(contacts.with_columns(pl.col("date_contact").dt.strftime("%Y-%m-%d")),
              out / "agencies" / "caf" / "contacts.csv", sort_by=["matricule"], private=True)
    opp_hh = persons.group_by("hid").agg(
        opposition=(pl.col("opp_caf") | pl.col("opp_cpam")).any().cast(pl.Int8))
    recent = contacts.filter(pl.col("date_contact") >= optout.recent(ref)).select(
        "matricule", contacte_6m=pl.lit(1, dtype=pl.Int8))

    # household truth
    quartiers = terr.table.select("code_iris", "quartier")
    truth = (
        rules.household_truth(caf_hh, ref, table)
        .join(quartiers, on="code_iris", how="left")
        .join(opp_hh, on="hid", how="left")
        .join(recent, on="matricule", how="left")
        .with_columns(
            quartier=pl.col("quartier").fill_null("HORS_TERRITOIRE"),
            nb_personnes=pl.col("n"),
            a_cpam=pl.col("a_cpam").cast(pl.Int8),
            contacte_6m=pl.col("contacte_6m").fill_null(0),
        )
    )
    cols = ["matricule", "quartier", "nb_personnes", "a_cpam", *rules.RULE_IDS, "a_verifier",
            "opposition", "contacte_6m"]
    write_csv(truth.select(cols), out / "truth" / "households.csv", sort_by=["matricule"])

    # reverse rule (CPAM side)
    r = pl.lit(ref)
    minima = (pl.col("p_RSA") | pl.col("p_RSAM") | pl.col("p_PPA"))
    reverse = (
        cpam_df.filter(
            (pl.col("qualite") == "ASSURE") & (pl.col("css") == "GRATUITE")
            & (pl.col("css_debut") <= r) & (r <= pl.col("css_fin"))
            & (~pl.col("caf") | ~minima)
        )
        .select(cpam_line=pl.col("_row") + 2, pid="pid")
        .with_columns(
            person_id=pl.format("P{}", pl.col("pid").cast(pl.String).str.zfill(8)),
            css_gratuite_sans_minima=pl.lit(1, dtype=pl.Int8),
        )
    )
    write_csv(reverse.select("cpam_line", "person_id", "css_gratuite_sans_minima"),
              out / "truth" / "cpam_reverse.csv", sort_by=["cpam_line"])

    summary = {
        "caf_households": caf_hh.height,
        "cpam_only_households": hh.height - caf_hh.height,
        "persons": pp.height,
        "caf_households_absent_cpam": int((~caf_hh["a_cpam"]).sum()),
        "hors_territoire_households": int((truth["quartier"] == "HORS_TERRITOIRE").sum()),
        "twins_pairs": int((pp["twin_rank"] == 2).sum()),
        "opposition_caf": int(persons["opp_caf"].sum()),
        "opposition_cpam": int(persons["opp_cpam"].sum()),
        "households_opposition": int(truth["opposition"].fill_null(0).sum()),
        "contacts": contacts.height,
        "households_contacte_6m": int(truth["contacte_6m"].sum()),
        "cpam_reverse": reverse.height,
        "rules": {k: int(truth[k].sum()) for k in [*rules.RULE_IDS, "a_verifier"]},
    }
    return summary
