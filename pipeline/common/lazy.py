"""Lazy package exports: `python -m pipeline <command>` must not import every stage's engine.

Each process of the chain runs one stage; importing DuckDB, polars, openpyxl and Great
Expectations for the others would cost seconds per process. A package's `__init__` declares
where its public names live, and they are imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """Return a module `__getattr__` that imports `homes[name]` when `name` is first used."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(home), name)

    return __getattr__
