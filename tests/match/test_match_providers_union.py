"""The coverage side as several exports (CPAM, MSA...): link() reads their union, in order."""

from __future__ import annotations

import polars as pl
import pytest
from match_fixtures import export, noisy_population

from pipeline.central.match import link
from pipeline.common.errors import InputError

COLS = ["caf_handle", "cpam_handle", "pass", "match_weight", "match_probability"]


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("providers")
    caf, cpam, _ = noisy_population(160, seed=11, nir_share=0.4)
    caf_df, cpam_df = export(caf, "caf"), export(cpam, "cpam")
    half = cpam_df.height // 2
    paths = {"caf": tmp / "caf.parquet", "all": tmp / "cpam_all.parquet",
             "cpam": tmp / "cpam.parquet", "msa": tmp / "msa.parquet"}
    caf_df.write_parquet(paths["caf"])
    cpam_df.write_parquet(paths["all"])
    cpam_df.head(half).with_columns(fournisseur=pl.lit("CPAM")).write_parquet(paths["cpam"])
    cpam_df.slice(half).with_columns(fournisseur=pl.lit("MSA")).write_parquet(paths["msa"])
    return {"tmp": tmp, "paths": paths, "cpam": cpam_df, "half": half}


def test_union_of_files_links_like_one_file_and_keeps_the_provider(population: dict) -> None:
    p, tmp = population["paths"], population["tmp"]
    one = link(p["caf"], p["all"], tmp / "one", threads=2)
    two = link(p["caf"], [p["cpam"], p["msa"]], tmp / "two", threads=2)
    a = pl.read_parquet(one.links)
    b = pl.read_parquet(two.links)
    assert a.height > 100
    assert b.select(COLS).equals(a)
    assert "fournisseur" not in a.columns
    # each link names the provider whose file holds its coverage-side record
    msa = set(population["cpam"]["handle"].slice(population["half"]).to_list())
    expected = b.select(pl.when(pl.col("cpam_handle").is_in(list(msa))).then(pl.lit("MSA"))
                        .otherwise(pl.lit("CPAM")).alias("f"))["f"]
    assert b["fournisseur"].to_list() == expected.to_list()
    assert set(b["fournisseur"]) == {"CPAM", "MSA"}
    assert one.stats["inputs"]["cpam"]["rows"] == two.stats["inputs"]["cpam"]["rows"]


def test_a_handle_repeated_in_a_later_file_names_that_file_and_line(population: dict) -> None:
    p, tmp = population["paths"], population["tmp"]
    cpam = population["cpam"]
    dup = tmp / "dup.parquet"
    cpam.head(3).write_parquet(dup)  # the first CPAM handles again
    with pytest.raises(InputError) as err:
        link(p["caf"], [p["all"], dup], tmp / "dup_out", threads=2)
    assert err.value.path == str(dup) and err.value.line == 1
    assert "en double" in err.value.reason


def test_residue_requests_are_per_provider_and_cover_the_unlinked_rows(population: dict) -> None:
    """Each provider of the union gets its request: its own rows stage 1 left unlinked, sorted;
    together, the rows the single-file run requests."""
    from pipeline.central.match.residue import request_path

    p, tmp = population["paths"], population["tmp"]
    one = link(p["caf"], p["all"], tmp / "req_one", threads=2)
    two = link(p["caf"], [p["cpam"], p["msa"]], tmp / "req_two", threads=2)

    def handles(out, provider: str) -> list[str]:
        lines = request_path(out, provider).read_text(encoding="utf-8").splitlines()
        assert lines[0] == "handle"
        return lines[1:]

    linked = set(pl.read_parquet(two.links)["cpam_handle"])
    half = population["half"]
    for provider, rows in (("CPAM", population["cpam"].head(half)),
                           ("MSA", population["cpam"].slice(half))):
        expected = sorted(set(rows["handle"]) - linked)
        assert expected  # the fixture leaves rows of both providers unlinked
        assert handles(tmp / "req_two", provider) == expected
    assert sorted(handles(tmp / "req_two", "CPAM") + handles(tmp / "req_two", "MSA")) == \
        handles(tmp / "req_one", "cpam")
    assert handles(tmp / "req_two", "caf") == handles(tmp / "req_one", "caf")
    assert len(handles(tmp / "req_one", "caf")) == one.stats["residue"]["requests"]["caf"]
