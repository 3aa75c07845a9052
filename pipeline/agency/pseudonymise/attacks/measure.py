"""The central operator's attacks on the tokens, scored against the truth known at the agency.

`class_attack` rebuilds the year / month / day classes of one export (or of both stacked), names
them from what the export shows (pipeline/agency/pseudonymise/attacks/labels.py) and scores, per
birth
date part, the share of rows whose value the attacker gets right, against the prior: the modal
value of the row's visible stratum (minor flag, role, sex), the best guess anyone makes without a
token (computed on the file's own truth, so on small files a slight overestimate).
`strata_name_attack` then runs the rank-alignment attack within the year classes.

Cost: the clustering is a handful of grouped passes per round; above SAMPLE_ROWS rows the measure
runs on whole households drawn by their (keyed, random-looking) identifier, and says so.
"""

from __future__ import annotations

import polars as pl

from pipeline.agency.pseudonymise.attacks import labels
from pipeline.agency.pseudonymise.attacks.clusters import (
    column_partitions,
    components,
    family,
    name_family,
    partition_stats,
    purity,
)
from pipeline.agency.pseudonymise.attacks.public_names import first_name_table

SAMPLE_ROWS = 100_000
PARTS = {"annee": "c_annee", "mois": "c_mois", "jour": "c_jour"}
# strata of the no-token guess: large enough that their mode is what public statistics would
# give, not an echo of a handful of rows (the household rank would split them into tiny cells)
VISIBLE = ("mineur", "role", "sexe")
MIN_STRATUM = 20  # rows a year class needs to serve as a stratum of the rank attack


def sample_households(frame: pl.DataFrame, rows: int = SAMPLE_ROWS) -> pl.DataFrame:
    """Whole households (siblings stay together) with the smallest identifiers, ~`rows` rows."""
    if frame.height <= rows:
        return frame
    key = pl.coalesce("foyer", "handle")
    sizes = frame.group_by(key.alias("k")).len().sort("k")
    keep = sizes.filter(pl.col("len").cum_sum() <= rows)["k"].implode()
    return frame.filter(key.is_in(keep))


def with_classes(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` plus one class column per birth-date part (c_annee, c_mois, c_jour)."""
    return frame.with_columns(
        components(frame, family(part, frame.columns)).alias(col)
        for part, col in PARTS.items())


def _prior_and_score(frame: pl.DataFrame, truth: list[str], guess: list[str]) -> dict:
    """Shares right by the attack, wrong by it, by the stratum's mode, and by both combined."""
    strata = [c for c in VISIBLE if c in frame.columns] or [pl.lit(0).alias("_s")]
    df = frame.select(*truth, *guess, *strata).drop_nulls(truth)
    n = df.height
    if n == 0:
        return {"lignes": 0}
    skeys = [c if isinstance(c, str) else "_s" for c in strata]
    mode = (df.group_by(*skeys, *truth).len("n")
            .sort([*skeys, "n", *truth], descending=[False] * len(skeys) + [True]
                  + [False] * len(truth))
            .unique(skeys, keep="first", maintain_order=True)
            .rename({t: f"{t}_mode" for t in truth}).drop("n"))
    df = df.join(mode, on=skeys, how="left", nulls_equal=True)
    named = pl.all_horizontal([pl.col(g).is_not_null() for g in guess])
    right = pl.all_horizontal([pl.col(g) == pl.col(t) for g, t in zip(guess, truth,
                                                                        strict=True)])
    prior = pl.all_horizontal([pl.col(f"{t}_mode") == pl.col(t) for t in truth])
    s = df.select(
        retrouve=(named & right).sum(), faux=(named & ~right).sum(), a_priori=prior.sum(),
        combine=pl.when(named).then(right).otherwise(prior).sum()).row(0, named=True)
    return {"lignes": n, "part_retrouvee": round(s["retrouve"] / n, 4),
            "part_fausse": round(s["faux"] / n, 4), "a_priori": round(s["a_priori"] / n, 4),
            "attaque_ou_a_priori": round(s["combine"] / n, 4),
            "gain_sur_a_priori": round((s["combine"] - s["a_priori"]) / n, 4)}


def class_attack(frame: pl.DataFrame) -> tuple[dict, pl.DataFrame]:
    """Clustering + naming + score on `frame` (export rows joined with the truth columns
    naiss_annee, naiss_mois, naiss_jour). Returns the figures and the frame with its classes
    and the attacker's guesses (annee_g, mois_g, jour_g)."""
    sampled = sample_households(frame)
    df = with_classes(sampled)
    years = labels.label_years(df)
    months, days = labels.label_months_days(df, years)
    df = (df.join(years.rename({"annee": "annee_g"}), on="c_annee", how="left")
          .join(months.rename({"mois": "mois_g"}), on="c_mois", how="left")
          .join(days.rename({"jour": "jour_g"}), on="c_jour", how="left"))
    tokens = [c for c in frame.columns if c.startswith("tok_")]
    out: dict = {
        "lignes": frame.height,
        # above SAMPLE_ROWS, whole households drawn by identifier (see sample_households)
        "echantillon": {"lignes": df.height, "echantillonne": df.height < frame.height},
        "partition_par_colonne": column_partitions(df, tokens),
    }
    truth = {"annee": "naiss_annee", "mois": "naiss_mois", "jour": "naiss_jour"}
    for part, col in PARTS.items():
        out[part] = {"colonnes": family(part, df.columns),
                     **partition_stats(df[col]),
                     "part_dans_la_classe_de_sa_valeur": purity(df[col], df[truth[part]]),
                     "classes_nommees": {"annee": years, "mois": months, "jour": days}[part].height,
                     **_prior_and_score(df, [truth[part]], [f"{part}_g"])}
    names_only = name_family(df.columns)
    by_names = components(df, names_only)
    out["annee_par_noms_seuls"] = {
        "colonnes": names_only, **partition_stats(by_names),
        "part_dans_la_classe_de_sa_valeur": purity(by_names, df[truth["annee"]])}
    out["date_complete"] = _prior_and_score(df, list(truth.values()),
                                            ["annee_g", "mois_g", "jour_g"])
    return out, df


def _stratum(df: pl.DataFrame, by_sex: bool) -> pl.Series:
    """Year class (x sex) of each row; classes under MIN_STRATUM rows are pooled in one stratum
    (-1): a stratum of one row would hand the oracle its answer."""
    big = pl.col("c_annee").count().over("c_annee") >= MIN_STRATUM
    g = pl.when(big).then(pl.col("c_annee")).otherwise(-1) * 3
    if by_sex and "sexe" in df.columns:
        g = g + pl.col("sexe").cast(pl.Int64).fill_null(0)
    return df.select(g.alias("g"))["g"]


def public_first_names(df: pl.DataFrame, token: str, truth: str) -> float | None:
    """Rank alignment of a first-name token against the public table, within each (year
    class, sex): for a named year the table's ranking of that year, else that of all years."""
    from pipeline.agency.pseudonymise.leakage import attack_share, pair_counts

    if token not in df.columns or "sexe" not in df.columns:
        return None
    table = first_name_table()
    strata = df.select(g=_stratum(df, True), annee=pl.col("annee_g"),
                       sexe=pl.col("sexe").cast(pl.Int8))
    pairs = pair_counts(df[token], df[truth], strata["g"])
    overall = (table.group_by("sexe", "prenom1").agg(n=pl.col("rang").len())
               .sort(["sexe", "n", "prenom1"], descending=[False, True, False])
               .with_columns(rang=pl.int_range(pl.len(), dtype=pl.Int64).over("sexe")).drop("n"))
    cells = strata.unique("g").with_columns(pl.col("g").cast(pl.Int32))
    named = cells.join(table, on=["annee", "sexe"], how="inner")
    unnamed = cells.filter(pl.col("annee").is_null()).join(overall, on="sexe", how="inner")
    ref = pl.concat([named.select("g", "prenom1", "rang"), unnamed.select("g", "prenom1", "rang")]
                    ).rename({"prenom1": "guess"})
    return attack_share(pairs, ref, by_stratum=True)


def strata_name_attack(df: pl.DataFrame, attacked: dict[str, tuple[str, bool]],
                       truths: dict[str, pl.Series]) -> dict:
    """Rank alignment within the year classes (with and without sex), oracle and public."""
    from pipeline.agency.pseudonymise.leakage import attack_share, pair_counts

    out = {}
    for tok, (col, phon) in attacked.items():
        if tok not in df.columns:
            continue
        truth = truths[f"{col}_phon" if phon else col]
        out[tok] = {
            "oracle_par_classe_annee": attack_share(
                pair_counts(df[tok], truth, _stratum(df, False)), by_stratum=True),
            "oracle_par_classe_annee_sexe": attack_share(
                pair_counts(df[tok], truth, _stratum(df, True)), by_stratum=True),
        }
        if col == "prenom1" and not phon:
            out[tok]["table_publique_par_annee_sexe"] = public_first_names(df, tok, col)
    return out


def cross_export_attack(exports: dict[str, pl.DataFrame], truths: dict[str, pl.DataFrame]
                        ) -> dict:
    """`class_attack` on both exports stacked, as the central operator holds them.

    A column keyed alike on both sides (same name, same subkey: tok_dob_ym, tok_nom_a...)
    joins rows across the exports by equal values, so each class spans both files and the CPAM
    rows take the names the CAF's minor flag and household ranks give. The links file adds no
    edge that the shared values do not already give when the two dates agree, and would merge
    two years when they differ: it is not used.
    """
    frames = [e.join(truths[a], on="handle", how="left").with_columns(agence=pl.lit(a))
              for a, e in sorted(exports.items())]
    figures, classed = class_attack(pl.concat(frames, how="diagonal_relaxed"))
    # a linkage token is meant to pair the two files: its per-column partition is read per export
    figures.pop("partition_par_colonne")
    truth = {"annee": "naiss_annee", "mois": "naiss_mois", "jour": "naiss_jour"}
    figures["par_organisme"] = {
        a: {part: _prior_and_score(classed.filter(pl.col("agence") == a), [t], [f"{part}_g"])
            for part, t in truth.items()}
        for a in sorted(exports)}
    return figures
