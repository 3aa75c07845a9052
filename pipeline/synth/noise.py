"""Recording noise, applied independently to each agency's copy (the truth stays clean).

Each perturbation picks rows with probability rate x `noise` among the rows where it makes sense
and returns how many it touched, so meta.json can say what the matcher had to cope with.
Rates at noise = 1.0 are the defaults below (roughly what record-linkage studies report for
administrative files).
"""

from __future__ import annotations

import numpy as np
import polars as pl

RATES = {
    "typo_nom": 0.015,
    "typo_prenom": 0.008,
    "jour_mois_inverses": 0.01,
    "jour_inconnu_00": 0.003,
    "nir_absent": 0.02,
    "nir_errone": 0.005,
    "prenoms_ordre": 0.02,
    "accents_retires": 0.03,
    "accent_ajoute": 0.005,
    "casse": 0.02,
    "valeur_substitut": 0.001,
    "nom_usage_absent": 0.05,
}
PLACEHOLDERS_NOM = ["INCONNU", "X", "SANS NOM"]
PLACEHOLDERS_PRENOM = ["X", "INCONNU"]


class Noiser:
    """Draws masks and keeps counts for one file."""

    def __init__(self, rng: np.random.Generator, noise: float) -> None:
        self.rng = rng
        self.noise = noise
        self.counts: dict[str, int] = {}

    def mask(self, kind: str, eligible: np.ndarray) -> np.ndarray:
        rate = min(RATES[kind] * self.noise, 1.0)
        m = eligible & (self.rng.random(len(eligible)) < rate)
        self.counts[kind] = self.counts.get(kind, 0) + int(m.sum())
        return m

    def typo(self, df: pl.DataFrame, col: str, kind: str, lower: bool = False) -> pl.DataFrame:
        """Substitute, delete, transpose or double one character."""
        s = df[col]
        length = s.str.len_chars().fill_null(0).to_numpy()
        m = self.mask(kind, length >= 3)
        n = df.height
        pos = (self.rng.random(n) * (np.maximum(length, 2) - 1)).astype(np.int64)
        op = self.rng.integers(0, 4, n)
        letters = np.array(list("abcdefghijklmnopqrstuvwxyz" if lower else "ABCDEFGHIJKLMNOPRSTUV"))
        sub = pl.Series(letters[self.rng.integers(0, len(letters), n)])
        p = pl.Series(pos)
        head = pl.col(col).str.slice(0, p)
        c0 = pl.col(col).str.slice(p, 1)
        c1 = pl.col(col).str.slice(p + 1, 1)
        new = (
            pl.when(pl.Series(op) == 0)
            .then(pl.concat_str([head, sub, pl.col(col).str.slice(p + 1)]))
            .when(pl.Series(op) == 1).then(pl.concat_str([head, pl.col(col).str.slice(p + 1)]))
            .when(pl.Series(op) == 2)
            .then(pl.concat_str([head, c1, c0, pl.col(col).str.slice(p + 2)]))
            .otherwise(pl.concat_str([head, c0, pl.col(col).str.slice(p)]))
        )
        return df.with_columns(pl.when(pl.Series(m)).then(new).otherwise(pl.col(col)).alias(col))

    def swap_day_month(self, df: pl.DataFrame) -> pl.DataFrame:
        d, mo = df["bd"].to_numpy(), df["bm"].to_numpy()
        m = self.mask("jour_mois_inverses", (d <= 12) & (d != mo) & (d > 0))
        return df.with_columns(
            bd=pl.when(pl.Series(m)).then(pl.col("bm")).otherwise(pl.col("bd")),
            bm=pl.when(pl.Series(m)).then(pl.col("bd")).otherwise(pl.col("bm")),
        )

    def unknown_day(self, df: pl.DataFrame) -> pl.DataFrame:
        """Day 00: mostly people born abroad (civil status without a known day)."""
        abroad = df["abroad"].to_numpy()
        m = self.mask("jour_inconnu_00", abroad | (self.rng.random(df.height) < 0.1))
        return df.with_columns(bd=pl.when(pl.Series(m)).then(0).otherwise(pl.col("bd")))

    def drop_nir(self, df: pl.DataFrame, col: str) -> pl.DataFrame:
        m = self.mask("nir_absent", df[col].is_not_null().to_numpy())
        return df.with_columns(pl.when(pl.Series(m)).then(None).otherwise(pl.col(col)).alias(col))

    def mistype_nir(self, df: pl.DataFrame, cols: list[str]) -> tuple[pl.DataFrame, np.ndarray]:
        """Change one digit among positions 8-13 (commune, order): the key no longer matches."""
        m = self.mask("nir_errone", df[cols[0]].is_not_null().to_numpy())
        n = df.height
        pos = pl.Series(self.rng.integers(7, 13, n))
        bump = pl.Series(self.rng.integers(1, 10, n))
        out = []
        for col in cols:
            digit = pl.col(col).str.slice(pos, 1).cast(pl.Int64, strict=False)
            new = pl.concat_str([pl.col(col).str.slice(0, pos),
                                 ((digit + bump) % 10).cast(pl.String),
                                 pl.col(col).str.slice(pos + 1)])
            out.append(pl.when(pl.Series(m) & (pl.col(col) == pl.col(cols[0])))
                       .then(new).otherwise(pl.col(col)).alias(col))
        return df.with_columns(out), m

    def rotate_given(self, df: pl.DataFrame, col: str) -> pl.DataFrame:
        several = df[col].str.contains(" ").fill_null(False).to_numpy()
        m = self.mask("prenoms_ordre", several)
        parts = pl.col(col).str.split(" ")
        new = pl.concat_list([parts.list.slice(1), parts.list.slice(0, 1)]).list.join(" ")
        return df.with_columns(pl.when(pl.Series(m)).then(new).otherwise(pl.col(col)).alias(col))

    def accents(self, df: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
        n = df.height
        out = []
        for col in cols:
            has = df[col].str.contains(r"[^\x00-\x7F]").fill_null(False).to_numpy()
            drop = self.mask("accents_retires", has)
            has_e = df[col].str.contains("E").fill_null(False).to_numpy()
            add = self.mask("accent_ajoute", has_e & ~drop)
            stripped = pl.col(col).str.normalize("NFKD").str.replace_all(r"\p{Mn}", "")
            out.append(
                pl.when(pl.Series(drop)).then(stripped)
                .when(pl.Series(add)).then(pl.col(col).str.replace("E", "É", literal=True))
                .otherwise(pl.col(col)).alias(col)
            )
        del n
        return df.with_columns(out)

    def casing(self, df: pl.DataFrame, col: str, upper: bool) -> pl.DataFrame:
        m = self.mask("casse", df[col].is_not_null().to_numpy())
        new = pl.col(col).str.to_uppercase() if upper else pl.col(col).str.to_titlecase()
        return df.with_columns(pl.when(pl.Series(m)).then(new).otherwise(pl.col(col)).alias(col))

    def placeholders(self, df: pl.DataFrame, nom: str, prenom: str) -> pl.DataFrame:
        n = df.height
        m = self.mask("valeur_substitut", np.ones(n, dtype=bool))
        which = self.rng.random(n) < 0.5
        vn = pl.Series(np.array(PLACEHOLDERS_NOM)[self.rng.integers(0, 3, n)])
        vp = pl.Series(np.array(PLACEHOLDERS_PRENOM)[self.rng.integers(0, 2, n)])
        return df.with_columns(
            pl.when(pl.Series(m & which)).then(vn).otherwise(pl.col(nom)).alias(nom),
            pl.when(pl.Series(m & ~which)).then(vp).otherwise(pl.col(prenom)).alias(prenom),
        )

    def drop_usage(self, df: pl.DataFrame) -> pl.DataFrame:
        m = self.mask("nom_usage_absent", df["nom_usage"].is_not_null().to_numpy())
        return df.with_columns(
            nom_usage=pl.when(pl.Series(m)).then(None).otherwise(pl.col("nom_usage")))


def apply_caf(rng: np.random.Generator, df: pl.DataFrame, noise: float
              ) -> tuple[pl.DataFrame, dict[str, int], np.ndarray]:
    """Noise on the CAF copy; returns the frame, counts and the mistyped-NIR mask."""
    z = Noiser(rng, noise)
    df = z.typo(df, "nom_naissance", "typo_nom")
    df = z.typo(df, "prenoms", "typo_prenom", lower=True)
    df = z.swap_day_month(df)
    df = z.unknown_day(df)
    df = z.drop_nir(df, "nir")
    df, bad = z.mistype_nir(df, ["nir"])
    df = z.rotate_given(df, "prenoms")
    df = z.accents(df, ["nom_naissance", "prenoms"])
    df = z.casing(df, "prenoms", upper=True)
    df = z.drop_usage(df)
    df = z.placeholders(df, "nom_naissance", "prenoms")
    return df, z.counts, bad


def apply_cpam(rng: np.random.Generator, df: pl.DataFrame, noise: float
               ) -> tuple[pl.DataFrame, dict[str, int], np.ndarray]:
    """Noise on the CPAM copy (an adult's mistyped NIR is mistyped in both NIR columns)."""
    z = Noiser(rng, noise)
    df = z.typo(df, "nom", "typo_nom")
    df = z.typo(df, "prenom", "typo_prenom")
    df = z.swap_day_month(df)
    df = z.unknown_day(df)
    df, bad = z.mistype_nir(df, ["nir_beneficiaire", "nir_ouvrant_droit"])
    df = z.accents(df, ["nom", "prenom"])
    df = z.casing(df, "nom", upper=False)
    df = z.placeholders(df, "nom", "prenom")
    return df, z.counts, bad
