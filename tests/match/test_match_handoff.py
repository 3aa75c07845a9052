"""The linking operator's hand-off (pipeline/central/match/handoff.py, contract 6): from exports
that carry only handles, `adulte`, opposition and the masked columns, L writes sums that the
CAF's shares unmask into the OR bits computed in the clear, the per-person household opposition,
and the CAF's link list; exports without masked columns give no hand-off, half of them is
refused."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "shared"))
from test_shared_masked_sums import KEY, population

from pipeline.agency.pseudonymise import status_masks
from pipeline.central.detect.status_bits import unmask
from pipeline.central.match.handoff import write_handoff
from pipeline.central.match.status_sums import insured_opposition, sent_where_read
from pipeline.common.errors import PipelineError
from pipeline.shared import separation
from pipeline.shared.masked_sums import household_or, person_bits
from pipeline.shared.providers import AGENCIES

BENEFITS = AGENCIES[0]


def exports(tmp: Path, pop: dict[str, pl.DataFrame], masked: bool = True) -> tuple[Path, ...]:
    """The two exports as L receives them (no feature, no status), and the links."""
    caf, cpam = pop["caf"], pop["cpam"]
    if masked:
        caf = caf.join(status_masks.factors(caf["foyer"], KEY), on="foyer", how="left",
                       maintain_order="left")
        cpam = cpam.join(status_masks.mask(person_bits(cpam), KEY), on="handle", how="left",
                         maintain_order="left").drop("statut_css")
    paths = tmp / "caf.parquet", tmp / "cpam.parquet", tmp / "links.parquet"
    for frame, path in zip((caf, cpam, pop["links"]), paths, strict=True):
        frame.write_parquet(path)
    return paths


def test_sums_unmask_to_the_bits_in_the_clear(tmp_path: Path) -> None:
    pop = population()
    written = write_handoff(BENEFITS, *exports(tmp_path, pop), tmp_path / "out")
    assert sorted(p.name for p in written.values()) == sorted(
        [separation.SUMS_FILE, separation.OPPOSITION_FILE,
         separation.LINKS_FILE.format(provider=BENEFITS)])
    sums = pl.read_parquet(written["sommes"])
    assert sums.columns == separation.SUMS_FIELDS
    # the CAF's share, over the link list L gives it
    liens = pl.read_parquet(written["liens"])
    assert liens.columns == separation.LINKS_FIELDS
    assert liens.sort(liens.columns).equals(pop["links"].sort(liens.columns))
    rho = status_masks.factors(pop["caf"]["foyer"], KEY)
    shares = status_masks.caf_shares(pop["caf"], rho, liens, KEY)
    clear = sent_where_read(pop["caf"], pop["cpam"], pop["links"],
                            household_or(pop["caf"], person_bits(pop["cpam"]), pop["links"]))
    got = unmask(sums, shares)
    assert got.sort("foyer").equals(clear.select(got.columns).sort("foyer"))
    opp = pl.read_parquet(written["oppositions"])
    assert opp.columns == separation.OPPOSITION_FIELDS
    assert opp.equals(insured_opposition(pop["caf"], pop["cpam"], pop["links"]))
    # a household with an opposed linked person is flagged; the sums file has no status
    assert sums["opposition_liee"].any()
    assert not {"statut_css", *status_masks.BITS} & set(sums.columns)


def test_no_masked_column_no_handoff(tmp_path: Path) -> None:
    assert write_handoff(BENEFITS, *exports(tmp_path, population(40), masked=False),
                         tmp_path / "out") == {}
    assert not (tmp_path / "out").exists()


def test_half_masked_exports_refused(tmp_path: Path) -> None:
    caf, cpam, links = exports(tmp_path, population(40))
    pl.read_parquet(caf).drop(separation.FACTORS[1]).write_parquet(caf)
    with pytest.raises(PipelineError, match="colonnes masquées incomplètes"):
        write_handoff(BENEFITS, caf, cpam, links, tmp_path / "out")
    pl.read_parquet(caf).drop(separation.FACTORS, strict=False).write_parquet(caf)
    with pytest.raises(PipelineError, match="colonnes masquées absentes"):
        write_handoff(BENEFITS, caf, cpam, links, tmp_path / "out")
