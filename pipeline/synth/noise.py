"""Recording noise, applied independently to each agency's copy (the truth stays clean).

Each perturbation picks rows with probability rate x `noise` among the rows where it makes sense,
rewrites only those rows (gather -> polars expression -> scatter, so the cost follows the few
noisy rows, not the file) and counts them, so meta.json says what the matcher had to cope with.
Rates at noise = 1.0 are the defaults below (roughly what record-linkage studies report for
administrative files).

Profiles: `standard` (the default; its output is unchanged by the profile machinery) and
`realiste`, as harsh as real files: higher typo and missing-NIR rates, more usage names recorded
as birth names, plus errors the standard profile never makes — blank and mistyped birth dates, a
wrong birth year, first name and surname swapped, a mistyped NIR key, a compound surname cut to
its first part. The extra perturbations run after the standard ones, on the same generator.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from pipeline.common.errors import PipelineError

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
    "nom_usage_en_naissance": 0.02,  # of women with a usage name: recorded as birth name
    "particule_collee": 0.3,  # of names with a particle: LE GALL -> LEGALL
}
# `realiste` profile: rates that override RATES, and the kinds only this profile applies.
REALISTE = {
    "typo_nom": 0.03,
    "typo_prenom": 0.02,
    "nir_absent": 0.05,
    "nom_usage_en_naissance": 0.10,
    "nom_usage_absent": 0.10,
    "date_vide": 0.01,  # birth date left blank
    "date_chiffre_errone": 0.015,  # one of day / month / last year digit mistyped
    "annee_erronee": 0.01,  # birth year off by one
    "noms_inverses": 0.01,  # surname typed in the first-name field and vice versa
    "nir_cle_erronee": 0.01,  # one digit of the NIR key mistyped
    "nom_compose_tronque": 0.3,  # of hyphenated surnames: only the first part kept
}
PROFILES: dict[str, dict[str, float]] = {"standard": {}, "realiste": REALISTE}
PARTICLE = r"^(DE LA|DE|DU|DES|LE) "
PLACEHOLDERS_NOM = pl.Series(["INCONNU", "X", "SANS NOM"])
PLACEHOLDERS_PRENOM = pl.Series(["X", "INCONNU"])
UPPER = pl.Series(list("ABCDEFGHIJKLMNOPRSTUV"))
LOWER = pl.Series(list("abcdefghijklmnoprstuv"))


def profile_rates(profile: str) -> dict[str, float]:
    """The rate overrides of a noise profile (a clear French error for an unknown one)."""
    if profile not in PROFILES:
        raise PipelineError(f"--profil-bruit : profil inconnu « {profile} » "
                            f"(attendu : {', '.join(PROFILES)})")
    return PROFILES[profile]


class Noiser:
    """Draws masks and keeps counts for one file."""

    def __init__(self, rng: np.random.Generator, noise: float, profile: str = "standard"
                 ) -> None:
        self.rng = rng
        self.noise = noise
        self.profile = profile
        self.overrides = profile_rates(profile)
        self.counts: dict[str, int] = {}

    def pick(self, kind: str, eligible: np.ndarray, overall: bool = False) -> np.ndarray:
        """Row indices hit by this kind of noise.

        The rate applies to the eligible rows, or with `overall` to the whole file (a day/month
        swap can only show when the day is 12 or less, yet 1 % of the file should carry one).
        """
        rate = self.overrides.get(kind, RATES.get(kind, 0.0)) * self.noise
        if overall:
            rate *= len(eligible) / max(int(eligible.sum()), 1)
        rate = min(rate, 1.0)
        idx = np.flatnonzero(eligible & (self.rng.random(len(eligible)) < rate))
        self.counts[kind] = self.counts.get(kind, 0) + len(idx)
        return idx

    @staticmethod
    def patch(df: pl.DataFrame, idx: np.ndarray,
              fn: Callable[[pl.DataFrame], pl.DataFrame]) -> pl.DataFrame:
        """Apply `fn` to the rows `idx` only and write its columns back in place."""
        if len(idx) == 0:
            return df
        new = fn(df[idx])
        return df.with_columns(df[c].scatter(idx, new[c]) for c in new.columns)

    def typo(self, df: pl.DataFrame, col: str, kind: str, lower: bool = False) -> pl.DataFrame:
        """Substitute, delete, transpose or double one character."""
        length = df[col].str.len_chars().fill_null(0).to_numpy()
        idx = self.pick(kind, length >= 3)
        k = len(idx)
        pos = pl.Series((self.rng.random(k) * (length[idx] - 1)).astype(np.int64))
        op = pl.Series(self.rng.integers(0, 4, k))
        letters = LOWER if lower else UPPER
        sub = letters.gather(self.rng.integers(0, len(letters), k))
        c = pl.col(col)
        head = c.str.slice(0, pos)
        new = (
            pl.when(op == 0).then(pl.concat_str([head, sub, c.str.slice(pos + 1)]))
            .when(op == 1).then(pl.concat_str([head, c.str.slice(pos + 1)]))
            .when(op == 2).then(pl.concat_str([head, c.str.slice(pos + 1, 1),
                                               c.str.slice(pos, 1), c.str.slice(pos + 2)]))
            .otherwise(pl.concat_str([head, c.str.slice(pos, 1), c.str.slice(pos)]))
        )
        return self.patch(df, idx, lambda s: s.select(new.alias(col)))

    def swap_day_month(self, df: pl.DataFrame) -> pl.DataFrame:
        d, mo = df["bd"].to_numpy(), df["bm"].to_numpy()
        idx = self.pick("jour_mois_inverses", (d <= 12) & (d != mo) & (d > 0), overall=True)
        return self.patch(df, idx, lambda s: s.select(bd=pl.col("bm"), bm=pl.col("bd")))

    def unknown_day(self, df: pl.DataFrame) -> pl.DataFrame:
        """Day 00: mostly people born abroad (civil status without a known day)."""
        abroad = df["abroad"].to_numpy()
        idx = self.pick("jour_inconnu_00", abroad | (self.rng.random(df.height) < 0.1),
                        overall=True)
        return self.patch(df, idx, lambda s: s.select(pl.lit(0, dtype=pl.Int8).alias("bd")))

    def drop_nir(self, df: pl.DataFrame, col: str) -> pl.DataFrame:
        idx = self.pick("nir_absent", df[col].is_not_null().to_numpy())
        return self.patch(df, idx, lambda s: s.select(pl.lit(None, pl.String).alias(col)))

    def mistype_nir(self, df: pl.DataFrame, cols: list[str]) -> tuple[pl.DataFrame, np.ndarray]:
        """Change one digit among positions 8-13 (commune, order): the key no longer matches.

        With two columns (CPAM), the second is changed too where it holds the same NIR (an
        adult's own row), so the row stays self-consistent.
        """
        df, idx = self._bump_nir_digit(df, cols, "nir_errone", 7, 13)
        mask = np.zeros(df.height, dtype=bool)
        mask[idx] = True
        return df, mask

    def rotate_given(self, df: pl.DataFrame, col: str) -> pl.DataFrame:
        idx = self.pick("prenoms_ordre", df[col].str.contains(" ").fill_null(False).to_numpy())
        parts = pl.col(col).str.split(" ")
        new = pl.concat_list([parts.list.slice(1), parts.list.slice(0, 1)]).list.join(" ")
        return self.patch(df, idx, lambda s: s.select(new.alias(col)))

    def accents(self, df: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
        for col in cols:
            has = df[col].str.contains(r"[^\x00-\x7F]").fill_null(False).to_numpy()
            drop = self.pick("accents_retires", has)
            stripped = pl.col(col).str.normalize("NFKD").str.replace_all(r"\p{Mn}", "")
            df = self.patch(df, drop, lambda s, e=stripped, c=col: s.select(e.alias(c)))
            has_e = df[col].str.contains("E", literal=True).fill_null(False).to_numpy()
            has_e[drop] = False
            add = self.pick("accent_ajoute", has_e)
            added = pl.col(col).str.replace("E", "É", literal=True)
            df = self.patch(df, add, lambda s, e=added, c=col: s.select(e.alias(c)))
        return df

    def casing(self, df: pl.DataFrame, col: str, upper: bool) -> pl.DataFrame:
        idx = self.pick("casse", df[col].is_not_null().to_numpy())
        new = pl.col(col).str.to_uppercase() if upper else pl.col(col).str.to_titlecase()
        return self.patch(df, idx, lambda s: s.select(new.alias(col)))

    def placeholders(self, df: pl.DataFrame, nom: str, prenom: str) -> pl.DataFrame:
        idx = self.pick("valeur_substitut", np.ones(df.height, dtype=bool))
        on_nom = self.rng.random(len(idx)) < 0.5
        vn = PLACEHOLDERS_NOM.gather(self.rng.integers(0, len(PLACEHOLDERS_NOM), len(idx)))
        vp = PLACEHOLDERS_PRENOM.gather(self.rng.integers(0, len(PLACEHOLDERS_PRENOM), len(idx)))
        w = pl.Series(on_nom)
        return self.patch(df, idx, lambda s: s.select(
            pl.when(w).then(vn).otherwise(pl.col(nom)).alias(nom),
            pl.when(w).then(pl.col(prenom)).otherwise(vp).alias(prenom),
        ))

    def usage_as_birth_name(self, df: pl.DataFrame) -> pl.DataFrame:
        """The married name typed into the birth-name field (a classic registration error)."""
        idx = self.pick("nom_usage_en_naissance", df["nom_usage"].is_not_null().to_numpy())
        return self.patch(df, idx, lambda s: s.select(
            nom_naissance=pl.col("nom_usage"), nom_usage=pl.lit(None, pl.String)))

    def glue_particle(self, df: pl.DataFrame, col: str) -> pl.DataFrame:
        has = df[col].str.contains(PARTICLE).fill_null(False).to_numpy()
        idx = self.pick("particule_collee", has)
        return self.patch(df, idx, lambda s: s.select(pl.col(col).str.replace_all(" ", "")))

    def drop_usage(self, df: pl.DataFrame) -> pl.DataFrame:
        idx = self.pick("nom_usage_absent", df["nom_usage"].is_not_null().to_numpy())
        return self.patch(df, idx, lambda s: s.select(pl.lit(None, pl.String).alias("nom_usage")))

    # ------------------------------------------------------------ `realiste` profile only

    def blank_date(self, df: pl.DataFrame) -> pl.DataFrame:
        idx = self.pick("date_vide", df["by"].is_not_null().to_numpy())
        none = pl.lit(None)
        return self.patch(df, idx, lambda s: s.select(
            by=none.cast(pl.Int16), bm=none.cast(pl.Int8), bd=none.cast(pl.Int8)))

    def mistype_date(self, df: pl.DataFrame) -> pl.DataFrame:
        """One component changed: a day (1-28) or month redrawn, or the year's last digit."""
        ok = df["by"].is_not_null().to_numpy() & (df["bd"].fill_null(0).to_numpy() > 0)
        idx = self.pick("date_chiffre_errone", ok)
        k = len(idx)
        part = pl.Series(self.rng.integers(0, 3, k))
        step = pl.Series(self.rng.integers(1, 9, k))  # never 0 or a multiple of the modulus
        day, month, year = pl.col("bd").cast(pl.Int16), pl.col("bm").cast(pl.Int16), pl.col("by")
        return self.patch(df, idx, lambda s: s.select(
            bd=pl.when(part == 0).then((day - 1 + step) % 28 + 1).otherwise(day).cast(pl.Int8),
            bm=pl.when(part == 1).then((month - 1 + step) % 12 + 1).otherwise(month)
            .cast(pl.Int8),
            by=pl.when(part == 2).then(year - year % 10 + (year % 10 + step) % 10)
            .otherwise(year).cast(pl.Int16),
        ))

    def wrong_year(self, df: pl.DataFrame) -> pl.DataFrame:
        idx = self.pick("annee_erronee", df["by"].is_not_null().to_numpy())
        sign = pl.Series(self.rng.choice(np.array([-1, 1], dtype=np.int16), len(idx)))
        return self.patch(df, idx, lambda s: s.select((pl.col("by") + sign).cast(pl.Int16)))

    def swap_names(self, df: pl.DataFrame, nom: str, prenom: str) -> pl.DataFrame:
        ok = (df[nom].is_not_null() & df[prenom].is_not_null()).to_numpy()
        idx = self.pick("noms_inverses", ok)
        return self.patch(df, idx, lambda s: s.select(
            pl.col(prenom).str.replace(r" .*$", "").str.to_uppercase().alias(nom),
            pl.col(nom).alias(prenom)))

    def mistype_nir_key(self, df: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
        """One digit of the 2-digit key changed (in both CPAM columns where they agree)."""
        return self._bump_nir_digit(df, cols, "nir_cle_erronee", 13, 15)[0]

    def _bump_nir_digit(self, df: pl.DataFrame, cols: list[str], kind: str, lo: int,
                        hi: int) -> tuple[pl.DataFrame, np.ndarray]:
        """Add 1-9 (mod 10) to one digit at a position in [lo, hi) of the NIRs `kind` picks;
        the other columns change only where they hold the same NIR as the first."""
        idx = self.pick(kind, df[cols[0]].is_not_null().to_numpy())
        pos = pl.Series(self.rng.integers(lo, hi, len(idx)))
        bump = pl.Series(self.rng.integers(1, 10, len(idx)))

        def change(col: str) -> pl.Expr:
            c = pl.col(col)
            digit = c.str.slice(pos, 1).cast(pl.Int64, strict=False)
            new = pl.concat_str([c.str.slice(0, pos), ((digit + bump) % 10).cast(pl.String),
                                 c.str.slice(pos + 1)])
            return pl.when(c == pl.col(cols[0])).then(new).otherwise(c).alias(col)

        return self.patch(df, idx, lambda s: s.select(change(c) for c in cols)), idx

    def cut_compound(self, df: pl.DataFrame, col: str) -> pl.DataFrame:
        idx = self.pick("nom_compose_tronque", df[col].str.contains("-").fill_null(False)
                        .to_numpy())
        return self.patch(df, idx, lambda s: s.select(pl.col(col).str.replace(r"-.*$", "")))

    def realistic(self, df: pl.DataFrame, nom: str, prenom: str, nirs: list[str]
                  ) -> pl.DataFrame:
        """The `realiste` profile's extra errors (nothing is drawn under `standard`)."""
        if self.profile == "standard":
            return df
        df = self.cut_compound(df, nom)
        df = self.swap_names(df, nom, prenom)
        df = self.mistype_date(df)
        df = self.wrong_year(df)
        df = self.blank_date(df)
        return self.mistype_nir_key(df, nirs)


def apply_caf(rng: np.random.Generator, df: pl.DataFrame, noise: float,
              profile: str = "standard") -> tuple[pl.DataFrame, dict[str, int], np.ndarray]:
    """Noise on the CAF copy; returns the frame, counts and the mistyped-NIR mask."""
    z = Noiser(rng, noise, profile)
    df = z.usage_as_birth_name(df)
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
    df = z.realistic(df, "nom_naissance", "prenoms", ["nir"])
    return df, z.counts, bad


def apply_cpam(rng: np.random.Generator, df: pl.DataFrame, noise: float,
               profile: str = "standard") -> tuple[pl.DataFrame, dict[str, int], np.ndarray]:
    """Noise on the CPAM copy (an adult's mistyped NIR is mistyped in both NIR columns)."""
    z = Noiser(rng, noise, profile)
    df = z.glue_particle(df, "nom")
    df = z.typo(df, "nom", "typo_nom")
    df = z.typo(df, "prenom", "typo_prenom")
    df = z.swap_day_month(df)
    df = z.unknown_day(df)
    df, bad = z.mistype_nir(df, ["nir_beneficiaire", "nir_ouvrant_droit"])
    df = z.accents(df, ["nom", "prenom"])
    df = z.casing(df, "nom", upper=False)
    df = z.placeholders(df, "nom", "prenom")
    df = z.realistic(df, "nom", "prenom", ["nir_beneficiaire", "nir_ouvrant_droit"])
    return df, z.counts, bad
