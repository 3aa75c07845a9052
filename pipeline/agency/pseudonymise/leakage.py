"""Leakage checks on a pseudonymised export: frequency (rank) attack.

The identifier scan (`scan_frame`, `scan_export`, `LeakageFound`) lives in
pipeline/shared/leak_scan.py; it is re-exported here for older imports.

`frequency_leakage` measures what an attacker holding the export and public name-frequency
tables could recover: rank each name-token column by frequency, align it with a reference ranking
of names, and count the records whose name comes out right (the truth is known at the agency).
Two references: `public` (faker's fr_FR surname list, which is in frequency order) and `oracle`
(the exact name distribution of the extract itself: the best any attacker can do), over the whole
file and within each stratum the export itself reveals (minor / adult): that is the real central
attacker. Two counterfactuals show why the export carries no age: the same attacker if the exact
age (birth-year name statistics) or a 5-year band were exported. A naive control, one unsalted
HMAC per name field, is attacked the same way for comparison.

With the birth-date parts in the truth, `classes_jetons` adds the central operator's strongest
attacks (pipeline/agency/pseudonymise/attacks): the year / month / day classes equal token values
rebuild, named from the minor flag, the household rank and the calendar, scored against the
no-token prior; and the rank attack within the year classes (oracle, and a public-style
first-name table by year). The headline `pire_part_retrouvee` is the worst of all.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from pipeline.agency.pseudonymise.hmac_engine import get_engine
from pipeline.agency.pseudonymise.phonetic import encode_unique
from pipeline.common.tables import read_parquet
from pipeline.shared.attributes import age_expr
from pipeline.shared.leak_scan import (  # noqa: F401  (re-exported until removed)
    LeakageFound,
    scan_export,
    scan_frame,
)

# --- frequency / rank-alignment attack -----------------------------------------------------

# token column -> (truth column, phonetic?): version 1 name tokens (the attacks' control), then
# the version 2 keys that carry a name (tokens.yaml), attacked on the name they carry.
ATTACKED = {
    "tok_nom_a": ("nom", False),
    "tok_nom_phon_a": ("nom", True),
    "tok_prenom_a": ("prenom1", False),
    "tok_prenom_phon_a": ("prenom1", True),
    "tok_nom_commune": ("nom", False),
    "tok_phon_dob": ("nom", True),
    "tok_prenom_dob": ("prenom1", False),
    "tok_nom_ym": ("prenom1", False),
    # typo-tolerant keys: names + commune (no date), first name in the surname's place, and a
    # deletion variant (surname minus its first letter + date)
    "tok_noms_commune": ("nom", False),
    "tok_invseul_dob": ("prenom1", False),
    "tok_nomdel_dob_00": ("nom", False),
}


def public_reference() -> dict[str, list[str]]:
    """Public surname ranking shipped with faker fr_FR (its fr_FR surnames are listed by
    frequency). Its first-name lists are alphabetical, not ranked, so they make no reference:
    the oracle attack covers first names (and is the upper bound anyway)."""
    from faker.providers.person.fr_FR import Provider

    s = pl.Series(list(Provider.last_names)).str.normalize("NFKD")
    s = s.str.replace_all(r"[^\x00-\x7f]", "").str.to_uppercase().str.replace_all(r"['-]", " ")
    return {"nom": s.to_list()}


def _uniqueness(export: pl.DataFrame) -> dict:
    """Per token column: non-null count, share of distinct values, share of the commonest."""
    cols = [c for c in export.columns if c.startswith("tok_")]
    if not cols:
        return {}
    # counted on a 64-bit hash of each token: integer grouping is far cheaper than on strings,
    # and a collision among a few million values (odds ~1e-7) would not move a rounded share.
    # Sorted, equal hashes form runs: distinct = number of runs, commonest = longest run (one
    # integer sort per column, ~5x cheaper than hashing into n_unique and unique_counts).
    # Integer tokens are sorted as they are: exact, and no hashing pass.
    runs = [(pl.col(c).drop_nulls() if export.schema[c].is_integer()
             else pl.col(c).drop_nulls().hash(seed=0)).sort().rle() for c in cols]
    stats = export.select(
        [pl.struct(n=pl.col(c).count(), d=r.len(), m=r.struct.field("len").max()).alias(c)
         for c, r in zip(cols, runs, strict=True)]
    ).row(0, named=True)
    out = {}
    for col in cols:
        n, d, m = stats[col]["n"], stats[col]["d"], stats[col]["m"]
        out[col] = {"non_nuls": n} if not n else {
            "non_nuls": n, "part_distincts": round(d / n, 4), "frequence_max": round(m / n, 4)}
    return out


def pair_counts(tokens: pl.Series, truth: pl.Series, strata: pl.Series | None = None
                ) -> pl.DataFrame:
    """(g, t, v, n): how many records carry token t and true value v in stratum g.

    The one pass over the records; every attack variant then works on this table. Tokens are
    replaced by their dense rank: integers in the same order as the token text, so every later
    sort and join is on integers and every tie breaks as it would on the text.
    """
    if strata is None:
        strata = pl.Series("g", [0], dtype=pl.Int32).new_from_index(0, tokens.len())
    frame = pl.DataFrame({"t": tokens.rank("dense"), "v": truth,
                          "g": strata.cast(pl.Int32).fill_null(-1)})
    return frame.drop_nulls(["t", "v"]).group_by("g", "t", "v").len("n")


def _ranks(table: pl.DataFrame, col: str) -> pl.DataFrame:
    """Rank values of `col` by frequency within each stratum (ties broken by value)."""
    return (table.group_by("g", col).agg(pl.col("n").sum())
            .sort(["g", "n", col], descending=[False, True, False])
            .with_columns(rang=pl.int_range(pl.len(), dtype=pl.Int64).over("g"))
            .drop("n"))


def attack_share(pairs: pl.DataFrame, reference: list[str] | pl.DataFrame | None = None, *,
                 by_stratum: bool = False) -> float:
    """Share of records whose true value the rank-alignment attack recovers.

    Tokens are ranked by frequency and the k-th commonest token is guessed to be the k-th
    value of `reference` (an ordered public ranking, or a frame (g, guess, rang) ranking each
    stratum on its own) or, when None, of the true distribution
    (the oracle: the best any frequency attacker can do). With `by_stratum`, ranks are taken
    within each stratum (e.g. age), as an attacker with per-birth-year name statistics would.
    """
    total = int(pairs["n"].sum())
    if total == 0:
        return 0.0
    if not by_stratum:
        pairs = pairs.group_by("t", "v").agg(pl.col("n").sum()).with_columns(g=pl.lit(0))
    tokens = _ranks(pairs, "t")
    if reference is None:
        guesses = tokens.join(_ranks(pairs, "v").rename({"v": "guess"}), on=["g", "rang"])
    elif isinstance(reference, pl.DataFrame):  # (g, guess, rang): one ranking per stratum
        guesses = tokens.join(reference.select(pl.col("g").cast(pl.Int32), "guess", "rang"),
                              on=["g", "rang"])
    else:
        ref = pl.DataFrame({"guess": pl.Series(reference, dtype=pl.String)}).unique(
            maintain_order=True).with_columns(rang=pl.int_range(pl.len(), dtype=pl.Int64))
        guesses = tokens.join(ref, on="rang")
    hits = pairs.join(guesses.select("g", "t", "guess"), on=["g", "t"]).filter(
        pl.col("guess") == pl.col("v"))["n"].sum()
    return round(int(hits) / total, 5)


def rank_attack(tokens: pl.Series, truth: pl.Series, reference: list[str] | None = None,
                strata: pl.Series | None = None) -> float:
    """Convenience: `attack_share` straight from the token and truth columns."""
    return attack_share(pair_counts(tokens, truth, strata), reference,
                        by_stratum=strata is not None)


def true_age() -> pl.Expr:
    """Exact age, known at the agency only: for the counterfactual attacks."""
    return age_expr(ref="date_extraction").alias("age")


def _attacks(tokens: pl.Series, truth: pl.Series, visible: pl.Series, age: pl.Series,
             public: list[str] | None) -> dict:
    """Every attack variant on one token column (see the module docstring)."""
    by_visible = pair_counts(tokens, truth, visible)
    by_age = pair_counts(tokens, truth, age)
    banded = by_age.with_columns(g=pl.when(pl.col("g") >= 0).then(pl.col("g") // 5)
                                 .otherwise(pl.col("g"))).group_by("g", "t", "v").agg(
        pl.col("n").sum())
    return {
        "oracle_global": attack_share(by_visible),
        "oracle_par_strate_exportee": attack_share(by_visible, by_stratum=True),
        "si_age_exporte": attack_share(by_age, by_stratum=True),
        "si_tranche_5ans_exportee": attack_share(banded, by_stratum=True),
        "public_global": attack_share(by_visible, public) if public else None,
    }


def _hmac_distinct(values: pl.Series, key: bytes) -> pl.Series:
    """Unsalted per-field HMAC (the naive control), computed once per distinct value."""
    uniq = values.drop_nulls().unique()
    mapping = pl.DataFrame({"v": uniq, "t": get_engine()(uniq, key)})
    return values.alias("v").to_frame().join(mapping, on="v", how="left",
                                             maintain_order="left")["t"]


BIRTH_PARTS = ("naiss_annee", "naiss_mois", "naiss_jour")


def agency_truth(ingested: pl.DataFrame, handles: pl.DataFrame, agency: str) -> pl.DataFrame:
    """handle -> true name, first name, age and birth-date parts: what the attacks are scored
    against, known at the agency only (never written anywhere)."""
    nom = "nom_naissance" if agency == "caf" else "nom"
    known = ingested.select("line", pl.col(nom).alias("nom"), "prenom1", true_age(),
                            *[c for c in BIRTH_PARTS if c in ingested.columns])
    if handles["line"].equals(known["line"]):  # pseudonymise's: same lines, same order
        return pl.concat([handles.select("handle"), known.drop("line")], how="horizontal")
    return handles.select("handle", "line").join(known, on="line", how="left").drop("line")


def _class_attacks(export: pl.DataFrame, truth: pl.DataFrame) -> dict:
    """Token-equivalence classes (year, month, day) named and scored, then the rank attack
    within the year classes (pipeline/agency/pseudonymise/attacks)."""
    from pipeline.agency.pseudonymise.attacks.measure import class_attack, strata_name_attack

    figures, classed = class_attack(export.join(truth, on="handle", how="left"))
    truths = {c: classed[c] for c in ("nom", "prenom1")}
    truths |= {f"{c}_phon": encode_unique(classed[c]) for c in ("nom", "prenom1")}
    figures["attaque_rang_par_classe"] = strata_name_attack(classed, ATTACKED, truths)
    return figures


# Rows the attacks run on when pseudonymise writes an export (whole households, see
# `sample_by_household`): the checks on every row (identifier scan, token uniqueness) stay
# exhaustive; at 25,000 rows a 1 % share is known to +/- 0.13 point (two standard errors), which
# is enough to tell a pass from a fail, in a second instead of ~7 CPU seconds at 100,000 rows.
# `make bench-leakage-1m` runs the same attacks on every row of a 1,000,000-record export.
STEP_SAMPLE_ROWS = 25_000


def sample_by_household(export: pl.DataFrame, rows: int | None = None) -> pl.DataFrame:
    """Whole households (siblings together) whose identifier is below a bound: ~`rows` rows.

    The foyer (else person) handle is random, so the households under a hex bound are a uniform
    sample, and the same one on every run of the same export. One string comparison per row:
    ranking every household identifier to take the smallest ones exactly cost seconds at 1M.
    """
    sampled = household_sample(export.height, rows)
    return export if sampled is None else export.filter(sampled)


def household_sample(height: int, rows: int | None = None) -> pl.Expr | None:
    """The row filter of `sample_by_household` on a frame of `height` rows with the export's
    `handle` and `foyer` columns (the handles table has them too), None when every row is kept."""
    from pipeline.agency.pseudonymise.attacks.measure import SAMPLE_ROWS

    rows = SAMPLE_ROWS if rows is None else rows
    if height <= rows:
        return None
    span = 16 ** 8
    bound = f"{min(span - 1, round(span * rows / height)):08x}"
    return pl.coalesce("foyer", "handle").str.slice(0, 8) < bound


def frequency_leakage_frame(export: pl.DataFrame, truth: pl.DataFrame | None = None,
                            reference_names: dict[str, list[str]] | None = None,
                            *, naive_control: bool = True,
                            sample_rows: int | None = None) -> dict:
    """Uniqueness per token column and, with `truth` (handle, nom, prenom1, age and the birth
    parts: see `agency_truth`), the attacks."""
    if truth is None:
        return {"unicite": _uniqueness(export)}
    # Above `sample_rows` rows (default: the attacks' own SAMPLE_ROWS), the attacks and the
    # uniqueness figures run on whole households drawn by identifier: on near-unique keys
    # (version 2) ranking a million distinct values per column and stratum dominated the
    # export's run time, for the same ~0 result; sorting every token column of 1M rows for the
    # uniqueness cost 1.2 CPU s of the ~10 the step takes. A token column that partitions the
    # export shows the same commonest share in the sample (1M synthetic CAF rows, 25,000-row
    # sample: within 0.0006 on every contract 5 token, within 0.005 on the version 1 control's
    # partitioning tokens, e.g. tok_sexe 0.5000 / 0.5049); the share of distinct values does not
    # carry over (a sample has fewer repeats: tok_noms_commune 0.196 on all rows, 0.745 in the
    # sample), so `part_distincts` describes the sample only. The identifier scan (the gate)
    # reads every row; `make bench-leakage-1m` runs every measure on every row.
    full_rows = export.height
    export = sample_by_household(export, sample_rows)
    result: dict = {"unicite": _uniqueness(export)}
    result["echantillon_attaques"] = {
        "lignes": export.height, "lignes_export": full_rows,
        "echantillonne": export.height < full_rows,
        "portee": ("unicité des jetons (la part de valeurs distinctes d'un échantillon "
                   "surestime celle de l'export), attaques par rang, contrôle naïf et classes "
                   "de jetons sur l'échantillon (foyers entiers) ; contrôle des identifiants "
                   "sur toutes les lignes") if export.height < full_rows
        else "toutes les mesures sur toutes les lignes"}
    if export.height < full_rows:  # the sample's truth: two joins on 25,000 rows, not 1M
        truth = truth.filter(pl.col("handle").is_in(export["handle"].implode()))
    ref = reference_names or public_reference()
    visible = (pl.col("mineur").cast(pl.Int16) if "mineur" in export.columns
               else pl.lit(0, pl.Int16)).alias("strate")
    if "age" not in truth.columns:
        truth = truth.with_columns(age=pl.lit(None, pl.Int16))
    df = export.select("handle", visible, *[c for c in ATTACKED if c in export.columns]).join(
        truth, on="handle", how="left")
    phon = {c: encode_unique(df[c]) for c in ("nom", "prenom1")}
    ref_phon = {c: encode_unique(pl.Series(v, dtype=pl.String)).drop_nulls().to_list()
                for c, v in ref.items()}
    attack = {}
    for tok, (col, is_phon) in ATTACKED.items():
        if tok in df.columns:
            attack[tok] = _attacks(df[tok], phon[col] if is_phon else df[col], df["strate"],
                                   df["age"], ref_phon.get(col) if is_phon else ref.get(col))
    result["attaque_rang"] = attack
    if naive_control:
        # Any key will do for the control; deriving it from the file keeps reruns identical.
        key = hashlib.sha256(b"controle-naif\x1f" + "".join(export["handle"].sort()).encode()
                             ).hexdigest().encode("ascii")
        result["controle_naif"] = {
            f"hmac_non_sale_{col}": _attacks(_hmac_distinct(df[col], key), df[col],
                                             df["strate"], df["age"], ref.get(col))
            for col in ("nom", "prenom1")}
    # The headline is the strongest attack the export allows: within its visible strata, and
    # within the year classes its tokens rebuild.
    worst = max((v["oracle_par_strate_exportee"] for v in attack.values()), default=0.0)
    if set(BIRTH_PARTS) <= set(truth.columns):
        result["classes_jetons"] = _class_attacks(export, truth)
        worst = max([worst, *(v["oracle_par_classe_annee_sexe"] for v in
                              result["classes_jetons"]["attaque_rang_par_classe"].values())])
    result["pire_part_retrouvee"] = worst
    result["objectif_sous_1pct"] = worst < 0.01
    return result


def frequency_leakage(export_file: Path, reference_names: dict[str, list[str]] | None = None,
                      *, handles_file: Path | None = None,
                      ingested_file: Path | None = None) -> dict:
    """File version: with the agency's handles and ingested files, also run the attacks."""
    export = read_parquet(Path(export_file), "export")
    truth = None
    if handles_file and ingested_file:
        handles = read_parquet(Path(handles_file), "table des handles")
        ingested = read_parquet(Path(ingested_file), "extrait normalisé")
        agency = "caf" if "nom_naissance" in ingested.columns else "cpam"
        truth = agency_truth(ingested, handles, agency)
    return frequency_leakage_frame(export, truth, reference_names)
