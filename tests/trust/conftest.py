"""Fixtures of tests/trust (helpers live in trust_world.py, a unique module name)."""

from __future__ import annotations

from pathlib import Path

import pytest
from trust_world import World, full_world


@pytest.fixture
def world(tmp_path: Path) -> World:
    return full_world(tmp_path)
