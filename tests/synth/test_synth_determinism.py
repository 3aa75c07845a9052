"""Same (households, seed, noise, reference date) -> byte-identical files; the sample is current."""

from __future__ import annotations

from pathlib import Path

from pipeline.synth import generate

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_same_arguments_same_bytes(tmp_path):
    generate(300, 7, 1.0, tmp_path / "a")
    generate(300, 7, 1.0, tmp_path / "b")
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) >= 10
    assert a == b


def test_other_seed_other_data(tmp_path):
    generate(300, 7, 1.0, tmp_path / "a")
    generate(300, 8, 1.0, tmp_path / "b")
    assert (tmp_path / "a" / "raw" / "caf_extract.csv").read_bytes() != (
        tmp_path / "b" / "raw" / "caf_extract.csv").read_bytes()


def test_committed_sample_matches_the_generator(tmp_path):
    """sample_data/ must be regenerated whenever the generator changes (see meta.json)."""
    generate(2000, 20261122, 1.0, tmp_path)
    fresh = _files(tmp_path)
    committed = {k: v for k, v in _files(SAMPLE).items() if k in fresh}
    assert committed.keys() == fresh.keys()
    assert committed == fresh
