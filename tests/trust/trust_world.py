"""A throw-away trust world: four parties with fresh (non-demo) keys, a signed convention, the
linkage-key ceremony done, and two signed pseudonymised exports."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import yaml

from pipeline.shared import separation
from pipeline.shared.contract import EXPORT_SCHEMA_VERSION
from pipeline.trust.convention import create_convention, sign_convention
from pipeline.trust.demo import PARTIES as DEMO_PARTIES
from pipeline.trust.demo import demo_spec
from pipeline.trust.keys import create_linkage_key, generate_agency_keys, unwrap_linkage_key
from pipeline.trust.manifest import write_manifest
from pipeline.trust.reference import current_hashes

ROOT = Path(__file__).resolve().parents[2]
PARTIES = tuple(p for p in DEMO_PARTIES if p != "msa")
TODAY = dt.date(2026, 11, 22)


@dataclasses.dataclass
class World:
    root: Path
    keys: dict[str, Path]
    convention: Path
    convention_id: str
    fingerprint: str
    exports: dict[str, Path]

    def write_export(self, agency: str, df: pl.DataFrame, *, fingerprint: str | None = None,
                     keys_dir: Path | None = None) -> Path:
        path = self.exports[agency]
        path.parent.mkdir(parents=True, exist_ok=True)
        df.write_parquet(path)
        write_manifest(path, agency=agency, convention_id=self.convention_id,
                       key_fingerprint=fingerprint or self.fingerprint,
                       keys_dir=keys_dir or self.keys[agency],
                       schema_version=EXPORT_SCHEMA_VERSION,
                       reference={"fichiers_reference": current_hashes()})
        return path

    def sign_all(self) -> None:
        for party in PARTIES:
            sign_convention(self.convention, party, self.keys[party])


def export_frame(agency: str) -> pl.DataFrame:
    cols = {"handle": ["0" * 32, "1" * 32, "2" * 32], "foyer": ["a" * 32, "a" * 32, "b" * 32],
            "tok_nir": pl.Series([-(2**62) - 12345, None, 2**62 + 6789], dtype=pl.Int64)}
    # contract 6: no feature; the CAF's adult flag and factors, the coverage side's pads
    if agency == "caf":
        cols["adulte"] = [True, False, True]
    for name in separation.linker_fields(agency == "caf"):
        cols[name] = pl.Series([7, 11, 13], dtype=pl.UInt64)
    return pl.DataFrame(cols)


def make_world(root: Path, convention_id: str = "test-conv", *, demo: bool = False,
               spec_changes: dict | None = None, sign: bool = True) -> World:
    keys = {p: root / "keys" / p for p in PARTIES}
    for party, folder in keys.items():
        generate_agency_keys(party, folder)
    fp = create_linkage_key(convention_id, keys["caf"], {"caf": keys["caf"], "cpam": keys["cpam"]},
                            root / "wrapped")
    for agency in ("caf", "cpam"):
        unwrap_linkage_key(root / "wrapped" / f"{convention_id}.{agency}.wrapped.json",
                           keys[agency])
    spec = {**demo_spec(), "id": convention_id, "demo": demo, "linkage_key_fingerprint": fp,
            **(spec_changes or {})}
    convention = root / "conventions" / f"{convention_id}.yaml"
    create_convention(spec, keys, convention)
    world = World(root=root, keys=keys, convention=convention, convention_id=convention_id,
                  fingerprint=fp,
                  exports={a: root / a / "export" / f"{a}.pseudo.parquet" for a in ("caf", "cpam")})
    if sign:
        world.sign_all()
    return world


def full_world(root: Path) -> World:
    w = make_world(root)
    for agency in ("caf", "cpam"):
        w.write_export(agency, export_frame(agency))
    return w


def edit_yaml(path: Path, **changes: object) -> None:
    """Change content keys of a signed convention, keeping the old signatures."""
    doc = yaml.safe_load(path.read_text("utf-8"))
    doc.update(changes)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), "utf-8")


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
