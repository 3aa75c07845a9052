"""The token catalogue (tokens.yaml): which keyed match-keys each data contract sends, read by
both sides. The agency computes them (pipeline/agency/pseudonymise/tokens.py); the link model
(pipeline/shared/linkage_model.py), the convention builder and the consistency tests read their
names and families here, so neither side imports the other to know the export's keys.
"""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources
from pathlib import Path

from pipeline.common import yaml_safe

# Marks a deletion-neighbourhood component: `nom_del_03` is `nom` with its 4th character deleted.
DELETION_MARK = "_del_"


@dataclasses.dataclass(frozen=True)
class TokenSpec:
    """One token of tokens.yaml, as computed by one agency."""

    name: str
    subkey: str
    kind: str
    components: tuple[str, ...]
    roles: tuple[str, ...] | None


@dataclasses.dataclass(frozen=True)
class TokenCatalogue:
    info_prefix: str
    separator: str
    bits: int  # kept bits of each MAC
    tokens: tuple[dict, ...]
    derivation: str = "hmac"  # "composants" (version 3) or "hmac" (the version 1 control)
    encoding: str = "hex"  # "int64" (export contract 5) or "hex" (lower-case text)

    @property
    def hex_chars(self) -> int:
        """Width of a hex-encoded token."""
        return self.bits // 4

    def for_agency(self, agency: str) -> list[TokenSpec]:
        """The tokens `agency` computes, in the declared order."""
        out = []
        for tok in self.tokens:
            side = tok["agencies"].get(agency)
            if side is None:
                continue
            roles = side.get("roles")
            out.append(TokenSpec(tok["name"], tok["subkey"], tok["kind"],
                                 tuple(side["components"]), tuple(roles) if roles else None))
        return out

    def names(self, agency: str | None = None) -> list[str]:
        return [t["name"] for t in self.tokens if agency is None or agency in t["agencies"]]

    def variant_family(self, family: str) -> tuple[list[str], str]:
        """Columns of a `variants` family (position order) and the key they vary."""
        cols = [t["name"] for t in self.tokens if t.get("family") == family]
        if not cols:
            raise KeyError(family)
        return cols, next(t for t in self.tokens if t.get("family") == family)["original"]


# The version 1 catalogue, kept only as the attacks' control (no export uses it any more).
V1_CATALOGUE = Path(__file__).with_name("tokens_v1.yaml")


def load_catalogue(path: Path | None = None) -> TokenCatalogue:
    """Read tokens.yaml (the packaged one by default)."""
    if path is None:
        text = resources.files("pipeline.shared").joinpath("tokens.yaml").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    return _parse(text)


@functools.cache
def packaged_catalogue() -> TokenCatalogue:
    """tokens.yaml as packaged, read once per process."""
    return load_catalogue()


def _parse(text: str) -> TokenCatalogue:
    data = yaml_safe.load(text)
    bits = int(data["truncate_bits"])
    if bits % 4 or not 64 <= bits <= 256:
        raise ValueError("truncate_bits must be a multiple of 4 between 64 and 256")
    encoding = data.get("encoding", "hex")
    if encoding not in ("hex", "int64") or (encoding == "int64" and bits != 64):
        raise ValueError("encoding must be hex, or int64 with truncate_bits 64")
    tokens = [v for t in data["tokens"] for v in _expand(t)]
    names = [t["name"] for t in tokens]
    if len(set(names)) != len(names) or not all(n.startswith("tok_") for n in names):
        raise ValueError("token names must be unique and start with tok_")
    derivation = data.get("derivation", "hmac")
    if derivation not in ("hmac", "composants"):
        raise ValueError(f"unknown token derivation {derivation!r}")
    return TokenCatalogue(data["info_prefix"], data["separator"], bits, tuple(tokens),
                          derivation, encoding)


def _expand(tok: dict) -> list[dict]:
    """A `variants` entry -> one token per position (`<name>_NN`), its `component` replaced by
    that position's deletion variant; every other entry as written. The positions share the
    subkey of the key they vary (`original`), so any of them compares with it and each other."""
    spec = tok.get("variants")
    if spec is None:
        return [tok]
    comp, positions = spec["component"], int(spec["positions"])
    out = []
    for i in range(positions):
        sides = {a: {**side, "components": [f"{c}{DELETION_MARK}{i:02d}" if c == comp else c
                                            for c in side["components"]]}
                 for a, side in tok["agencies"].items()}
        out.append({**{k: v for k, v in tok.items() if k != "variants"},
                    "name": f"{tok['name']}_{i:02d}", "family": tok["name"],
                    "original": spec["original"], "agencies": sides})
    return out
