"""`generate`: one call that writes a complete synthetic dataset (raw extracts + ground truth).

The population is drawn in chunks of CHUNK_HOUSEHOLDS households, each appended to the raw files
as soon as it is ready, so memory stays bounded (10 million persons are practical). Every random
draw comes from a numpy Generator spawned from `seed` (one stream per chunk and step), NIR order
numbers are reserved across chunks, and every file is written in a fixed row order, so the same
arguments give byte-identical files.
"""

from __future__ import annotations

import contextlib
import json
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from pipeline import __version__
from pipeline.common.errors import PipelineError
from pipeline.common.files import atomic_path, write_text
from pipeline.common.progress import step
from pipeline.common.tables import write_csv
from pipeline.synth import (
    css,
    economy,
    extracts,
    households,
    nir,
    params,
    rules,
    truth,
    writer,
)
from pipeline.synth import noise as noise_mod
from pipeline.synth import territory as territory_mod

GENERATOR_VERSION = f"nonrecours-synth {__version__} (modele 2)"
ABSENT_CPAM_RATE = 0.09  # households covered by another scheme (MSA...)
# With an MSA extract (--msa): share of the households absent from the CPAM that the MSA (the
# agricultural scheme) insures; the others stay covered by a scheme outside the convention.
MSA_SHARE = 0.6
CHUNK_HOUSEHOLDS = 100_000  # ~0.6 GB peak per chunk
PERSONS_PER_HOUSEHOLD = 2.8  # all households, CPAM-only ones included (for birth-place spread)
NOTES = [
    "Vérité calculée sur les foyers propres (avant bruit), indépendamment de "
    "pipeline/central/detect ; "
    "colonnes de règles = vérité pure (opposition et contacts à part).",
    "css_fin jamais tirée à R-365, R+60 ou R+61 ; date_contact jamais à moins de 3 jours de la "
    "limite des 6 mois : la vérité ne dépend pas des bornes.",
    "Les lignes malformées sont listées dans truth/malformed.csv (line = ligne physique, en-tête "
    "= 1) ; la personne reste dans persons.csv.",
    "nir_errone : un chiffre changé, la clé ne correspond plus.",
]


def _gen(ss: np.random.SeedSequence) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(ss))


def _add(total: dict, part: dict) -> dict:
    """Sum nested dicts of counts."""
    for k, v in part.items():
        total[k] = _add(total.get(k, {}), v) if isinstance(v, dict) else total.get(k, 0) + v
    return total


def generate(
    households: int,
    seed: int,
    noise: float = 1.0,
    out: Path = Path("sample_data"),
    reference_date: date = date(2026, 3, 2),
    territory: str = "flers",
    noise_profile: str = "standard",
    msa: bool = False,
) -> dict:
    """Write raw/, truth/, territory/ and agencies/ under `out`; return summary counts.

    `msa`: also write raw/msa_extract.csv, a third provider on the coverage side (a share of the
    households "not found at the CPAM" insured at the MSA), and its ground truth. Without it the
    dataset is byte-identical to what it was before the MSA existed."""
    if households < 1:
        raise PipelineError("--households doit être au moins 1")
    if households > 8_000_000:
        raise PipelineError("--households : au plus 8 000 000 (matricules à 7 chiffres)")
    if noise < 0:
        raise PipelineError("--noise doit être positif ou nul")
    noise_mod.profile_rates(noise_profile)  # refuse an unknown profile before writing anything
    out = Path(out)
    ref = reference_date
    terr = territory_mod.load(territory)
    table = params.load_table(ref)
    quartiers = terr.table.select("code_iris", "quartier")
    sizes = [CHUNK_HOUSEHOLDS] * (households // CHUNK_HOUSEHOLDS)
    if households % CHUNK_HOUSEHOLDS:
        sizes.append(households % CHUNK_HOUSEHOLDS)
    global_ss, *chunk_ss = np.random.SeedSequence(seed).spawn(1 + len(sizes))
    # matricules: unique over the run, handed out in increasing order (the CAF file is sorted)
    mats = np.sort(_gen(global_ss).choice(9_000_000, size=households, replace=False) + 1_000_000)
    registry = nir.OrderRegistry()
    hint = int(households * 1.15 * PERSONS_PER_HOUSEHOLD)

    counts: dict = {}
    parts: list[truth.Truth] = []
    malformed: list[pl.DataFrame] = []
    pid0, caf_first, cpam_first, msa_first, done = 0, 2, 2, 2, 0
    with (
        atomic_path(out / "raw" / "caf_extract.csv") as caf_tmp,
        atomic_path(out / "raw" / "cpam_extract.csv") as cpam_tmp,
        open(caf_tmp, "wb") as caf_f,
        open(cpam_tmp, "wb") as cpam_f,
        contextlib.ExitStack() as optional,
    ):
        msa_f = optional.enter_context(open(optional.enter_context(
            atomic_path(out / "raw" / "msa_extract.csv")), "wb")) if msa else None
        caf_f.write(writer.header(writer.CAF_COLUMNS, "\n"))
        cpam_f.write(writer.header(writer.CPAM_COLUMNS, "\r\n"))
        if msa_f:
            msa_f.write(writer.header(writer.MSA_COLUMNS, "\n"))
        for size, ss in zip(sizes, chunk_ss, strict=True):
            label = f"Foyers {done + 1}–{done + size} sur {households}"
            with step(label):
                # streams 12-14 only with the MSA: the first twelve draws stay the same
                rng = [_gen(s) for s in ss.spawn(15 if msa else 12)]
                res = _chunk(rng, size, mats[done:done + size], pid0, (caf_first, cpam_first,
                             msa_first), registry, hint, (noise, noise_profile), terr,
                             quartiers, table, ref)
                caf_f.write(res["caf_bytes"])
                cpam_f.write(res["cpam_bytes"])
                if msa_f:
                    msa_f.write(res["msa_bytes"])
            parts.append(res["truth"])
            malformed.append(res["malformed"])
            _add(counts, res["counts"])
            pid0 += res["counts"]["persons"]
            caf_first += res["counts"]["caf_rows"]
            cpam_first += res["counts"]["cpam_rows"]
            msa_first += res["counts"].get("msa_rows", 0)
            done += size

    with step("Vérité terrain, territoire, listes des agences"):
        _write_truth(out, parts, malformed)
        territory_mod.write(terr, out)
        counts = {k: dict(sorted(v.items())) if isinstance(v, dict) else v
                  for k, v in counts.items()}
        meta = {
            "seed": seed,
            "households": households,
            "noise": noise,
            # the default profile adds no key: its meta.json stays byte-identical
            **({"noise_profile": noise_profile} if noise_profile != "standard" else {}),
            **({"msa_share": MSA_SHARE} if msa else {}),
            "territory": territory,
            "reference_date": ref.isoformat(),
            "generator_version": GENERATOR_VERSION,
            "css_table_from": table.period_from.isoformat(),
            "counts": counts,
            "notes": NOTES,
        }
        write_text(out / "truth" / "meta.json",
                   json.dumps(meta, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    return counts


def _write_truth(out: Path, parts: list[truth.Truth], malformed: list[pl.DataFrame]) -> None:
    def cat(name: str) -> pl.DataFrame:
        return pl.concat([getattr(p, name) for p in parts], how="vertical")

    t = out / "truth"
    write_csv(cat("persons"), t / "persons.csv", sort_by=["person_id"])
    write_csv(cat("households"), t / "households.csv", sort_by=["matricule"])
    write_csv(cat("reverse"), t / "cpam_reverse.csv", sort_by=["cpam_line"])
    if parts and parts[0].msa_reverse is not None:
        write_csv(cat("msa_reverse"), t / "msa_reverse.csv", sort_by=["msa_line"])
    write_csv(pl.concat(malformed), t / "malformed.csv", sort_by=["fichier", "line"])
    a = out / "agencies"
    write_csv(cat("opposition_caf"), a / "caf" / "opposition.csv", sort_by=["matricule", "nir"],
              private=True)
    write_csv(cat("opposition_cpam"), a / "cpam" / "opposition.csv", sort_by=["nir"],
              private=True)
    write_csv(cat("contacts"), a / "caf" / "contacts.csv", sort_by=["matricule"], private=True)


def _kinds(report: pl.DataFrame) -> dict[str, int]:
    return {k: int(v) for k, v in report.group_by("kind").len().sort("kind").iter_rows()}


def _chunk(rng: list[np.random.Generator], n_caf: int, mats: np.ndarray, pid0: int,
           first: tuple[int, int, int], registry: nir.OrderRegistry, hint: int,
           noise: tuple[float, str], terr: territory_mod.Territory, quartiers: pl.DataFrame,
           table: params.CssTable, ref: date) -> dict:
    """One chunk of households: raw lines (bytes, no header), truth frames and counts.

    `first`: line of the chunk's first row in the CAF, CPAM and MSA files. With 15 streams in
    `rng` the chunk also draws the MSA (streams 12-14, after every draw of the two-provider
    dataset, which therefore stays byte-identical)."""
    caf_first, cpam_first, msa_first = first
    with_msa = len(rng) > 12
    pop = households.build(rng[0], n_caf, ref, terr, registry, hint)
    hh, pp = pop.households, pop.persons.with_columns(pl.col("pid") + pid0)
    hh = hh.join(rules.ceilings(pp, hh, table), on="hid", how="left").sort("hid")
    hh = economy.draw(rng[1], hh, pp, hh["plafond_gratuite"].to_numpy())
    hh = economy.contacts(rng[2], hh, terr.postal, terr.streets)
    caf = hh["caf"].to_numpy()
    mat = np.zeros(hh.height, dtype=np.int64)
    mat[caf] = mats
    hh = hh.with_columns(
        matricule=pl.when(pl.col("caf")).then(pl.Series(mat).cast(pl.String)),
        a_cpam=pl.Series(~caf | (rng[3].random(hh.height) >= ABSENT_CPAM_RATE)),
    )
    hh = hh.with_columns(ressources_css=rules.css_resources(hh, table))
    hh = css.draw(rng[4], hh, ref)
    if with_msa:  # CAF households absent from the CPAM, a share of them insured at the MSA
        hh = hh.with_columns(a_msa=pl.Series(rng[12].random(hh.height) < MSA_SHARE)
                             & pl.col("caf") & ~pl.col("a_cpam"))

    caf_df = extracts.caf_frame(rng[5], pp, hh).with_row_index("_row")
    cpam_df = extracts.cpam_frame(rng[6], pp, hh).with_row_index("_row")
    level, profile = noise
    caf_noisy, caf_counts, caf_bad = noise_mod.apply_caf(rng[7], caf_df, level, profile)
    cpam_noisy, cpam_counts, cpam_bad = noise_mod.apply_cpam(rng[8], cpam_df, level, profile)
    caf_s, caf_mal = writer.malform(rng[9], writer.caf_strings(caf_noisy, ref),
                                    writer.CAF_MALFORMED, level, iso=True)
    cpam_s, cpam_mal = writer.malform(rng[10], writer.cpam_strings(cpam_noisy, ref),
                                      writer.CPAM_MALFORMED, level, iso=False)
    msa_df = None
    if with_msa:  # the MSA's extract: the CPAM's model of a beneficiary, its own layout
        msa_df = extracts.cpam_frame(rng[13], pp, hh.with_columns(a_cpam=pl.col("a_msa")))
        msa_df = msa_df.with_row_index("_row")
        msa_noisy, msa_counts, msa_bad = noise_mod.apply_cpam(rng[14], msa_df, level, profile)
        msa_s, msa_mal = writer.malform(rng[14], writer.cpam_strings(msa_noisy, ref, iso=True),
                                        writer.CPAM_MALFORMED, level, iso=True)
        msa_mal = msa_mal.with_columns(pl.col("column").replace(writer.MSA_NAMES))
    t = truth.build(rng[11], hh, pp, caf_df, cpam_df, caf_first, cpam_first, quartiers,
                    table, ref, msa=(msa_df, msa_first) if with_msa else None)
    malformed = pl.concat([
        caf_mal.with_columns(fichier=pl.lit("raw/caf_extract.csv"),
                             line=pl.col("row") + caf_first),
        cpam_mal.with_columns(fichier=pl.lit("raw/cpam_extract.csv"),
                              line=pl.col("row") + cpam_first),
        *([msa_mal.with_columns(fichier=pl.lit("raw/msa_extract.csv"),
                                line=pl.col("row") + msa_first)] if with_msa else []),
    ]).select("fichier", "line", "column", "kind")
    counts = {
        **t.counts,
        "caf_rows": caf_df.height,
        "cpam_rows": cpam_df.height,
        "noise_caf": caf_counts,
        "noise_cpam": cpam_counts,
        "nir_errone_caf": int(caf_bad.sum()),
        "nir_errone_cpam": int(cpam_bad.sum()),
        "malformed_caf": _kinds(caf_mal),
        "malformed_cpam": _kinds(cpam_mal),
    }
    out = {
        "caf_bytes": writer.render(caf_s, writer.CAF_COLUMNS, "\n"),
        "cpam_bytes": writer.render(cpam_s, writer.CPAM_COLUMNS, "\r\n")
        .decode("utf-8").encode("cp1252"),
        "truth": t, "malformed": malformed, "counts": counts,
    }
    if with_msa:
        counts.update(msa_rows=msa_df.height, noise_msa=msa_counts,
                      nir_errone_msa=int(msa_bad.sum()), malformed_msa=_kinds(msa_mal))
        out["msa_bytes"] = writer.render(msa_s.rename(writer.MSA_NAMES), writer.MSA_COLUMNS, "\n")
    return out
