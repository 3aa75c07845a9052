"""The report's last guard refuses identifier-looking text, but not hex digests that happen to
hold a digit run (a fresh key's fingerprint, an audit head, a SHA-256 of a file)."""

from __future__ import annotations

import pytest

from pipeline.central.report.render import _check_no_identifiers
from pipeline.common.errors import PipelineError


@pytest.mark.parametrize("text", [
    "empreinte 3fa0612345678be9",           # hex digest with a 10-digit run inside
    "tête du journal c0612345678d4e1f",
    "sha256 0612345678abcdef",              # run at the start, letters right after
    "1 234 567,0612345678 €",               # decimal digits after a comma
])
def test_hex_digests_and_numbers_pass(text: str) -> None:
    _check_no_identifiers(text)


@pytest.mark.parametrize("text", [
    "joindre au 06 12 34 56 78 demain",
    "tel:0612345678",
    "<td>0612345678</td>",
    "+33 6 12 34 56 78",
    "NIR 1850775123456",
])
def test_identifiers_are_refused(text: str) -> None:
    with pytest.raises(PipelineError):
        _check_no_identifiers(text)
