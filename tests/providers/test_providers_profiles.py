"""Provider profiles as data (pipeline/shared/providers.yaml) and what is derived from them."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipeline.agency.ingest.layout import LAYOUT_DIR
from pipeline.common.errors import PipelineError, RefusalError
from pipeline.shared import providers as prov


def test_profiles_give_providers_contracts_and_sides() -> None:
    assert list(prov.PROVIDERS) == ["caf", "cpam", "msa"]
    assert prov.AGENCIES == ("caf", "cpam")  # the data contracts, derived from `modele`
    assert prov.modele("msa") == "cpam" and prov.modele("caf") == "caf"
    assert prov.is_benefits("caf") and not prov.is_benefits("msa")
    assert prov.on_side(["msa", "caf", "cpam"], prov.COVERAGE) == ["cpam", "msa"]
    assert prov.ordered(["msa", "caf"]) == ["caf", "msa"]
    assert prov.holders(["caf", "cpam", "msa"], "assures_cpam") == ["cpam", "msa"]
    assert prov.holders(["caf", "cpam"], "foyers") == ["caf"]
    assert prov.benefits_provider(["msa", "caf"]) == "caf"
    with pytest.raises(PipelineError, match="exactement un fournisseur côté « prestations »"):
        prov.benefits_provider(["cpam", "msa"])
    with pytest.raises(PipelineError, match="organisme inconnu : « mdph »"):
        prov.modele("mdph")


@pytest.mark.parametrize(("change", "message"), [
    ({"cote": "logement"}, "côté « logement » inconnu"),
    ({"modele": "rsi"}, "modèle\\(s\\) sans fournisseur de référence"),
    ({"reidentifie": None}, "« msa » sans reidentifie"),
])
def test_a_broken_profile_fails_naming_the_provider(tmp_path: Path, change: dict,
                                                    message: str) -> None:
    import yaml

    data = yaml.safe_load(prov.PROFILES.read_text("utf-8"))
    msa = {**data["fournisseurs"]["msa"], **change}
    data["fournisseurs"]["msa"] = {k: v for k, v in msa.items() if v is not None}
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with pytest.raises(PipelineError, match=message):
        prov._load(path)


def test_every_reidentifiable_kind_is_a_detection_view() -> None:
    from pipeline.shared.rules import load_rules

    views = {r.vue for r in load_rules()}
    kinds = {k for p in prov.PROVIDERS.values() for k in p.reidentifie}
    assert kinds <= views and views <= kinds  # every target has a provider that can take it
    for p in prov.PROVIDERS.values():
        assert (LAYOUT_DIR / p.disposition).is_file()


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from pipeline.synth.generate import generate

    base = tmp_path_factory.mktemp("synth")
    generate(households=150, seed=7, out=base / "two")
    generate(households=150, seed=7, out=base / "three", msa=True)
    return base / "two", base / "three"


def test_synth_msa_option_adds_a_file_and_changes_no_other_extract(datasets) -> None:
    two, three = datasets
    assert prov.dataset_providers(two) == ["caf", "cpam"]
    assert prov.dataset_providers(three) == ["caf", "cpam", "msa"]
    for name in ("raw/caf_extract.csv", "raw/cpam_extract.csv", "truth/cpam_reverse.csv"):
        assert (two / name).read_bytes() == (three / name).read_bytes(), name
    assert not (two / "raw" / "msa_extract.csv").exists()
    header = (three / "raw" / "msa_extract.csv").read_text("utf-8").splitlines()[0]
    assert header.startswith("nir;nir_ouvrant_droit;") and ";c2s;c2s_debut;c2s_fin;" in header


def test_msa_extract_ingests_into_the_cpam_contract(datasets, tmp_path: Path) -> None:
    from pipeline.agency.ingest.api import ingest
    from pipeline.agency.ingest.schema import output_schema

    _, three = datasets
    raw = three / "raw" / "msa_extract.csv"
    result = ingest("msa", raw, tmp_path / "msa")
    ingested = pl.read_parquet(result.ingested)
    assert dict(ingested.schema) == output_schema("cpam")
    assert result.rows_accepted >= 0.95 * result.rows_read > 0
    assert set(ingested["css"].drop_nulls()) <= {"NON", "GRATUITE", "PARTICIPATION", "INCONNU"}
    assert ingested["css_debut"].drop_nulls().len() > 0  # the C2S dates were read as dates


def test_demo_spec_lists_the_msa_only_when_asked() -> None:
    from pipeline.trust.demo import demo_spec

    two, three = demo_spec(), demo_spec(["caf", "cpam", "msa"])
    assert "msa" not in two["parties"] and "msa" not in two["fields"]
    assert three["parties"]["msa"]["roles"] == ["fournisseur_donnees"]
    assert three["fields"]["msa"] == three["fields"]["cpam"]  # the CPAM contract's columns
    assert three["contact_fields"]["msa"] == three["contact_fields"]["cpam"]
    assert {k: v for k, v in three["fields"].items() if k != "msa"} == two["fields"]


def _convention(providers: list[str]):
    from pipeline.trust.convention import Convention
    from pipeline.trust.demo import demo_spec

    content = demo_spec(providers)
    content["parties"] = {p: {**v, "ed25519": ""} for p, v in content["parties"].items()}
    return Convention(Path("conv.yaml"), content, {})


def test_central_readiness_needs_one_benefits_and_a_coverage_provider() -> None:
    from pipeline.trust.convention import central_readiness_errors

    assert central_readiness_errors(_convention(["caf", "msa"])) == []
    assert central_readiness_errors(_convention(["caf", "cpam", "msa"])) == []
    errors = central_readiness_errors(_convention(["cpam", "msa"]))
    assert any("exactement un fournisseur côté « prestations »" in e for e in errors), errors
    errors = central_readiness_errors(_convention(["caf"]))
    assert any("aucun fournisseur côté « couverture »" in e for e in errors), errors


def test_coverage_union_keeps_one_file_and_refuses_shared_handles(tmp_path: Path) -> None:
    from pipeline.central.coverage import PROVIDER_COLUMN, union

    paths = {}
    for agency, handles in (("cpam", ["a1", "b2"]), ("msa", ["c3"])):
        paths[agency] = tmp_path / f"{agency}.pseudo.parquet"
        pl.DataFrame({"handle": handles, "foyer": ["f"] * len(handles)}).write_parquet(
            paths[agency])
    assert union(paths, ["cpam"], tmp_path) == paths["cpam"]  # one provider: untouched
    both = pl.read_parquet(union(paths, ["cpam", "msa"], tmp_path))
    assert both["handle"].to_list() == ["a1", "b2", "c3"]  # reading order
    assert both[PROVIDER_COLUMN].to_list() == ["cpam", "cpam", "msa"]
    pl.DataFrame({"handle": ["b2"], "foyer": ["g"]}).write_parquet(paths["msa"])
    with pytest.raises(RefusalError, match="handles communs aux fichiers de cpam, msa"):
        union(paths, ["cpam", "msa"], tmp_path)


def test_territory_init_with_the_msa(tmp_path: Path) -> None:
    """`territoire init --fournisseur msa`: a three-provider convention (the MSA sending the
    CPAM contract's columns), its keys and wrapped linkage key, and the paths `--config` gives,
    the MSA's inbox included for `match`."""
    from types import SimpleNamespace

    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.territory.config import apply_config, load_config
    from pipeline.trust.convention import central_readiness_errors, load_convention

    root = tmp_path / "t"
    res = CliRunner().invoke(app, ["territoire", "init", "--dossier", str(root), "--nom",
                                   "Domfront", "--fournisseur", "msa"])
    assert res.exit_code == 0, res.output
    cfg = load_config(root / "territoire.toml")
    conv = load_convention(cfg.path("convention"))
    assert conv.data_providers == ["caf", "cpam", "msa"]
    assert conv.allowed_fields("msa") == conv.allowed_fields("cpam")
    assert conv.contact_fields("msa") == conv.contact_fields("cpam")
    assert central_readiness_errors(conv) == []
    assert cfg.agencies == ["caf", "cpam", "msa"]
    assert cfg.path("extrait", "msa") == root / "brut" / "msa_extract.csv"
    assert (root / "cles" / "msa" / "private" / "msa.x25519.key.json").is_file()
    assert (root / "cles" / "envoi" / f"{conv.id}.msa.wrapped.json").is_file()
    ctx = SimpleNamespace(info_name="match", default_map=None, params={})
    apply_config(ctx, root / "territoire.toml")  # what `match --config` reads
    assert ctx.default_map["fournisseur"] == [f"msa={root / 'transfert' / 'msa'}"]
