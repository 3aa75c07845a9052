"""The one YAML loader of the project: yaml's safe constructor on libyaml's parser where it is
installed (comparisons.yaml parses in ~10 ms instead of ~100 ms in pure Python; the same
values), else the pure-Python safe loader."""

from __future__ import annotations

from typing import Any

import yaml

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> Any:
    """`yaml.safe_load(text)`, through `SafeLoader`."""
    return yaml.load(text, Loader=SafeLoader)
