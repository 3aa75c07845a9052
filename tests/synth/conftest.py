"""Shared synthetic datasets for the synth tests (generated once per session, small)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.synth import generate

SEED = 4242


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A default-noise dataset (1500 CAF households) and its meta.json."""
    out = tmp_path_factory.mktemp("synth_noisy")
    generate(1500, SEED, 1.0, out)
    return out, json.loads((out / "truth" / "meta.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The same population without noise."""
    out = tmp_path_factory.mktemp("synth_clean")
    generate(1500, SEED, 0.0, out)
    return out, json.loads((out / "truth" / "meta.json").read_text(encoding="utf-8"))
