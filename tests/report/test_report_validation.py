"""validate() / raise_on_critical(): suites catch what they claim, and never echo a raw value.

Scenarios run on the default (polars) engine; test_report_engines.py checks that Great
Expectations gives the same records, and the pushdown test below runs GE itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from pipeline.central.report.validation import ValidationOutcome, raise_on_critical, validate
from pipeline.common.errors import PipelineError
from pipeline.shared.suite_spec import available_stages, expand, load_patterns, load_suite

N = 40
BAD_STAGE = "caf_detection"  # contract 6: the features' checks are the household file's
PLANTED_NIR = "1850761169042"  # synthetic, NIR-shaped: must be caught and never echoed


def hx(i: int, salt: int = 0) -> str:
    return f"{(i * 2654435761 + salt * 97) % (1 << 128):032x}"


def tok(i: int, salt: int) -> int:
    """A stand-in Int64 token: 64 bits of a hash."""
    digest = hashlib.blake2b(f"{i}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") - 2**63


def caf_export(n: int = N) -> pl.DataFrame:
    """The CAF's export for the linking operator (contract 6): structure, adult flag, the
    household factors and tokens, no feature; the opposed household's last row has no name or
    date token."""
    return pl.DataFrame({
        "handle": [hx(i, 1) for i in range(n)],
        "foyer": [hx(i // 3, 2) for i in range(n)],
        "opposition": [False] * (n - 1) + [True],
        "adulte": [*([True, False, False] * n)[: n - 1], None],
        **{f"rho_{b}": pl.Series([(i // 3) * 7919 + k + 1 for i in range(n)], dtype=pl.UInt64)
           for k, b in enumerate(("css_active", "css_en_cours", "css_terminee_recente",
                                  "css_illisible"))},
        # contract 5: Int64 tokens (their format is the leak scan's, not the suite's)
        "tok_nir": [tok(i, 3) if i % 3 == 0 else None for i in range(n)],
        "tok_nom_dob": [tok(i, 4) for i in range(n)],
        "tok_prenom_an": [tok(i, 5) for i in range(n)],
    })


def caf_households(n: int = N) -> pl.DataFrame:
    """The CAF's household file for the detecting operator (contract 6): one row per household,
    the features; the opposed household (last row) leaves its flag only."""
    return pl.DataFrame({
        "foyer": [hx(i, 2) for i in range(n)],
        "handle": [hx(i, 1) for i in range(n)],
        "type_foyer": ["monoparent"] * (n - 1) + [None],
        "position_plafond_css": ["sous_plafond_gratuite"] * (n - 1) + [None],
        "a_rsa": [True] * (n - 1) + [None],
        "a_aah": [False] * (n - 1) + [None],
        "aah_taux_plein": pl.Series([None] * n, dtype=pl.Boolean),
        "opposition": [False] * (n - 1) + [True],
        "date_reference": [dt.date(2025, 10, 1)] * n,
    })


def links(n: int = 30) -> pl.DataFrame:
    return pl.DataFrame({
        "caf_handle": [hx(i, 1) for i in range(n)],
        "cpam_handle": [hx(i, 9) for i in range(n)],
        "pass": (["nir", "enfant", "nom_dob", "probabiliste"] * n)[:n],
        "match_weight": [12.5] * n,
        "match_probability": [0.99] * n,
    })


# ------------------------------------------------------------------ suites as data


def test_every_suite_loads_with_unique_ids_and_known_severity() -> None:
    stages = available_stages()
    assert {"caf_raw", "cpam_raw", "caf_ingested", "cpam_ingested", "caf_export",
            "cpam_export", "links", "targets"} <= set(stages)
    for stage in stages:
        suite = load_suite(stage)
        assert suite.stage == stage
        assert suite.expectations, stage
        assert {e["severity"] for e in suite.expectations} <= {"critical", "warning"}


def test_selectors_expand_on_actual_columns() -> None:
    kinds = {"handle": "string", "foyer": "string", "tok_a": "other", "tok_b": "other",
             "role": "string", "rang_foyer": "other", "prestations__nb": "other"}
    specs = expand(load_suite("caf_export"), kinds, {})
    handle_cols = sorted(s.column for s in specs if s.suite_id == "handle_format")
    assert handle_cols == ["foyer", "handle"]
    leak_cols = sorted(s.column for s in specs if s.suite_id == "aucune_donnee_identifiante")
    assert leak_cols == ["role"]  # never the hex handles/tokens, never helper columns
    allowed = next(s for s in specs if s.suite_id == "colonnes_autorisees").kwargs["column_set"]
    assert "tok_a" in allowed and "nom" not in allowed


def test_identifier_patterns_hit_nir_phone_date_not_hex() -> None:
    import re

    pats = [re.compile(p) for k in ("nir_patterns", "phone_patterns", "date_patterns")
            for p in load_patterns()[k]]
    for bad in (PLANTED_NIR, "2 85 07 61 169 042 17", "06 12 34 56 78", "+33 6 12", "1985-07-01",
                "01/07/1985"):
        assert any(p.search(bad) for p in pats), bad
    for ok in ("QN06101M", "61169", "RSA,AL", "certifie", "DEM"):
        assert not any(p.search(ok) for p in pats), ok


# ------------------------------------------------------------------ exports


@pytest.fixture(scope="module")
def good_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[ValidationOutcome, Path]:
    out = tmp_path_factory.mktemp("good")
    return validate("caf_export", caf_export(), out), out


def test_clean_export_passes_and_writes_results(good_export) -> None:
    outcome, out = good_export
    assert outcome.success, outcome.critical_failures
    assert outcome.critical_failures == []
    assert outcome.results_path == out / "validation" / "caf_export.json"
    doc = json.loads(outcome.results_path.read_text("utf-8"))
    assert doc["success"] is True and doc["rows"] == N
    assert doc["statistics"]["evaluated"] == outcome.evaluated >= 8  # contract 6: no feature
    raise_on_critical(outcome)  # no exception


def test_clean_household_file_passes(tmp_path: Path) -> None:
    """The features' checks now run on the detecting operator's household file."""
    outcome = validate(BAD_STAGE, caf_households(), tmp_path)
    assert outcome.success, outcome.critical_failures
    assert outcome.evaluated >= 10


def test_results_are_byte_identical_on_rerun(good_export, tmp_path: Path) -> None:
    outcome, _ = good_export
    again = validate("pseudo_caf", caf_export(), tmp_path)  # alias of caf_export
    assert again.results_path.read_bytes() == outcome.results_path.read_bytes()


def _bad_export_frame() -> pl.DataFrame:
    """A household file (suite caf_detection) with planted faults."""
    return caf_households().with_columns(
        # a duplicated household, a NIR in a text column, an empty household handle, a figure
        pl.when(pl.int_range(pl.len()) == 2).then(pl.col("foyer").first())
        .otherwise("foyer").alias("foyer"),
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit(PLANTED_NIR)).otherwise("type_foyer")
        .alias("type_foyer"),
        pl.lit("DUPONT").alias("nom"),
        pl.when(pl.int_range(pl.len()) == 5).then(pl.lit(None)).otherwise("handle")
        .alias("handle"),
        pl.when(pl.int_range(pl.len()) == 6).then(pl.lit("9100")).otherwise("position_plafond_css")
        .alias("position_plafond_css"),
    )


@pytest.fixture(scope="module")
def bad_export(tmp_path_factory: pytest.TempPathFactory) -> ValidationOutcome:
    return validate(BAD_STAGE, _bad_export_frame(), tmp_path_factory.mktemp("bad"))


def test_bad_export_fails_on_each_planted_fault(bad_export: ValidationOutcome) -> None:
    msgs = "\n".join(bad_export.critical_failures)
    assert not bad_export.success
    assert "colonnes non autorisées : nom" in msgs
    assert "la taille du foyer ne sort pas) (colonne « foyer »)" in msgs
    assert "NIR, une date ou un téléphone (colonne « type_foyer »)" in msgs
    assert "ou autre (colonne « type_foyer ») : 1 valeur(s)" in msgs
    assert "identifiant aléatoire renseigné (colonne « handle ») : 1 valeur(s)" in msgs
    assert "(jamais le montant des ressources) (colonne « position_plafond_css ») : 1" in msgs


def test_polars_pushdown_gives_the_same_results(bad_export: ValidationOutcome,
                                                tmp_path: Path) -> None:
    """Large tables evaluate row predicates in polars: same counts, same verdicts as GE alone."""
    ge = "great_expectations"
    pushed = validate(BAD_STAGE, _bad_export_frame(), tmp_path / "pushed",
                      context={"pushdown_rows": 1}, engine=ge)
    alone = validate(BAD_STAGE, _bad_export_frame(), tmp_path / "alone", engine=ge)
    ge_doc = json.loads(alone.results_path.read_text("utf-8"))
    pl_doc = json.loads(pushed.results_path.read_text("utf-8"))
    engines = {c["engine"] for c in pl_doc["checks"] if c["evaluated"]}
    assert engines == {"great_expectations", "polars+great_expectations"}

    def strip(doc: dict) -> list[dict]:
        return [{k: v for k, v in c.items() if k != "engine"} for c in doc["checks"]]

    assert strip(pl_doc) == strip(ge_doc)
    assert pushed.critical_failures == alone.critical_failures == bad_export.critical_failures
    assert pushed.warnings == alone.warnings == bad_export.warnings


def test_failures_never_echo_a_raw_value(bad_export: ValidationOutcome) -> None:
    text = bad_export.results_path.read_text("utf-8")
    blob = text + "\n".join(bad_export.critical_failures + bad_export.warnings)
    for raw in (PLANTED_NIR, "DUPONT", "XYZ", "A" * 32):
        assert raw not in blob
    assert "partial_unexpected" not in text


def test_raise_on_critical_gives_french_summary(bad_export: ValidationOutcome) -> None:
    with pytest.raises(PipelineError) as err:
        raise_on_critical(bad_export)
    msg = str(err.value)
    assert msg.startswith(f"Validation « {BAD_STAGE} »")
    assert "contrôle(s) critique(s) en échec" in msg and str(bad_export.results_path) in msg
    assert PLANTED_NIR not in msg


# ------------------------------------------------------------------ links


def test_links_one_to_one_known_handles_and_rate(tmp_path: Path) -> None:
    df = links()
    df = df.with_columns(  # row 5 reuses row 0's CPAM person: not one-to-one
        pl.when(pl.int_range(pl.len()) == 5).then(pl.col("cpam_handle").first())
        .otherwise("cpam_handle").alias("cpam_handle"),
        pl.when(pl.int_range(pl.len()) == 6).then(pl.lit(1.5)).otherwise("match_probability")
        .alias("match_probability"),
    )
    known_caf = [hx(i, 1) for i in range(29)]  # the 30th link points to an unknown person
    outcome = validate("links", df, tmp_path, context={
        "caf_handles": known_caf, "cpam_rows": 1000, "caf_rows": 29})
    msgs = "\n".join(outcome.critical_failures)
    assert "un pour un" in msgs and "(colonne « cpam_handle »)" in msgs
    assert "(colonne « caf_handle ») : 1 valeur(s)" in msgs  # unknown CAF handle
    assert "probabilité d'appariement entre 0 et 1" in msgs
    # 30 links for min(29, 1000) persons: above 100 % -> warning, not critical
    assert any("taux de liaison" in w for w in outcome.warnings)
    doc = json.loads(outcome.results_path.read_text("utf-8"))
    skipped = [c for c in doc["checks"] if not c["evaluated"]]
    assert [c["column"] for c in skipped] == ["cpam_handle"]  # no cpam_handles in context
    assert skipped[0]["message"] == "non évaluée (contexte absent : cpam_handles)"


# ------------------------------------------------------------------ targets


def _targets() -> pl.DataFrame:
    rows = []
    for i in range(14):
        rows.append({"agence": "caf", "foyer": hx(i, 6), "handle": hx(i, 7),
                     "quartier": "QN06101M" if i < 12 else "HQ61169A", "liste": "cible",
                     "regles": ["rsa_sans_css"] + (["sous_plafond_sans_css"] if i < 3 else []),
                     "motifs": ["RSA sans CSS"], "actions": ["proposer CSS"], "priorite": 1,
                     "date_reference": dt.date(2025, 10, 1)})
    return pl.DataFrame(rows)


AGG = (
    "\ufefftableau;regle;HQ61169A;QN06101M;Total\n"
    "non_recours;rsa_sans_css;< 11;12;14\n"
    "non_recours;sous_plafond_sans_css;0;< 11;< 11\n"
    "non_recours;Total;< 11;12;14\n"
)


def test_targets_consistent_with_aggregates(tmp_path: Path) -> None:
    agg = tmp_path / "aggregates.csv"
    agg.write_text(AGG, encoding="utf-8")
    ok = validate("targets", _targets(), tmp_path / "ok", context={"aggregates": agg})
    assert ok.success, ok.critical_failures
    # A published cell that disagrees with the targets is critical.
    agg.write_text(AGG.replace(";12;14\nnon_recours;sous", ";13;14\nnon_recours;sous"), "utf-8")
    bad = validate("targets", _targets(), tmp_path / "bad", context={"aggregates": agg})
    assert any("1 cellule(s) publiée(s) différente(s)" in m for m in bad.critical_failures)


def test_target_without_rule_or_bad_list_is_critical(tmp_path: Path) -> None:
    df = _targets().with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit([], dtype=pl.List(pl.String)))
        .otherwise("regles").alias("regles"),
        pl.when(pl.int_range(pl.len()) == 1).then(pl.lit("autre")).otherwise("liste")
        .alias("liste"),
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit(["appeler le 06 12 34 56 78"]))
        .otherwise("motifs").alias("motifs"),
    )
    outcome = validate("targets", df, tmp_path)
    msgs = "\n".join(outcome.critical_failures)
    assert "au moins une règle" in msgs
    assert "liste cible ou a_verifier (colonne « liste »)" in msgs
    assert "NIR ou un téléphone (colonne « motifs »)" in msgs
    assert "06 12 34 56 78" not in outcome.results_path.read_text("utf-8")
    assert any("aggregates" in c and "non évaluée" in c for c in
               [c["message"] for c in json.loads(outcome.results_path.read_text())["checks"]])


def test_unknown_stage_is_a_readable_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="étape de validation inconnue"):
        validate("nope", caf_export(3), tmp_path)


# ------------------------------------------------------------------ CLI


CPAM_HEADER = ("nir_beneficiaire;nir_ouvrant_droit;rang_gemellaire;qualite;nom;prenom;"
               "date_naissance;sexe;adresse;code_postal;code_commune;css;css_debut;css_fin;"
               "medecin_traitant;date_extraction\n")


def test_cli_validates_a_raw_cp1252_extract(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    row = ("{nir};{nir};1;{q};LÉGER;Zoé;01/02/1990;2;1 RUE DES ÉCOLES;61100;61169;NON;;;O;"
           "02/03/2026\n")
    good = tmp_path / "cpam_ok.csv"
    good.write_bytes((CPAM_HEADER + row.format(nir="290026116904217", q="ASSURE") * 5)
                     .encode("cp1252"))
    runner = CliRunner()
    res = runner.invoke(app, ["validate", "cpam_raw", str(good), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "cpam_raw : conforme" in res.output

    bad = tmp_path / "cpam_bad.csv"
    bad.write_bytes((CPAM_HEADER + row.format(nir="290026116904217", q="PATRON") * 5)
                    .encode("cp1252"))
    res = runner.invoke(app, ["validate", "cpam_raw", str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code != 0
    assert isinstance(res.exception, PipelineError)
    assert "qualité ASSURE ou ENFANT" in str(res.exception)
    assert "290026116904217" not in str(res.exception) + res.output

    res = runner.invoke(app, ["validate", "cpam_raw", str(tmp_path / "absent.csv")])
    assert res.exit_code != 0 and "fichier introuvable" in str(res.exception)
