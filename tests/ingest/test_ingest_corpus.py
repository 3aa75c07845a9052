"""The adversarial corpus (tests/ingest/corpus/): each file against its row of expected.csv.

Outcomes: `refuse` (InputError naming the file and `line`, message fragment, nothing written),
`reject_lines` (exactly these lines rejected, the rest accepted, nothing quarantined),
`quarantine` (exactly these lines held back under the named rule, `rejected` lines rejected),
`accept` (every row accepted). `message` must also appear in the rejection, warning or rule ids.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl
import pytest

from pipeline.agency.ingest import ingest
from pipeline.common.errors import InputError

CORPUS = Path(__file__).with_name("corpus")
CASES = list(csv.DictReader(io.StringIO((CORPUS / "expected.csv").read_text(encoding="utf-8")),
                            delimiter=";"))


def _lines(text: str) -> set[int]:
    return {int(x) for x in text.split()}


def _read(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")), delimiter=";"))


def test_corpus_is_complete():
    files = {p.name for p in CORPUS.glob("*.csv")} - {"expected.csv"}
    assert files == {c["file"] for c in CASES}
    assert len(CASES) >= 60
    assert {c["agency"] for c in CASES} == {"caf", "cpam"}


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_corpus_file(tmp_path, case):
    src, out = CORPUS / case["file"], tmp_path / "out"
    if case["outcome"] == "refuse":
        with pytest.raises(InputError) as exc:
            ingest(case["agency"], src, out)
        assert exc.value.path == str(src) and exc.value.line == int(case["line"])
        assert case["message"] in exc.value.reason
        assert not out.exists()
        return
    result = ingest(case["agency"], src, out)
    report = _read(result.rejections)
    rejected = {int(r["line"]) for r in report if r["action"] == "ligne rejetée"}
    held = _read(result.quarantine)
    assert result.rows_read == int(case["rows"])
    assert rejected == _lines(case["rejected"])
    assert {int(h["line"]) for h in held} == _lines(case["quarantined"])
    if case["outcome"] == "quarantine":
        assert {h["regle"] for h in held} == {case["message"]}
    elif case["message"]:
        texts = [r["reason"] for r in report + _read(result.warnings)]
        assert any(case["message"] in t for t in texts), texts
    if case["outcome"] == "accept":
        assert not rejected and not held
    kept = pl.read_parquet(result.ingested)["line"].to_list()
    assert len(kept) == result.rows_read - len(rejected) - len(held)
