import polars as pl

from pipeline.evaluate import prf


def keys(*values: int) -> pl.DataFrame:
    return pl.DataFrame({"k": list(values)}, schema={"k": pl.Int64})


def test_prf_counts_true_positives():
    s = prf(keys(1, 2, 3, 4), keys(2, 3, 4, 5, 6))
    assert (s["true_positives"], s["precision"], s["recall"]) == (3, 0.75, 0.6)
    assert abs(s["f1"] - 2 * 0.75 * 0.6 / 1.35) < 1e-4


def test_prf_empty_sets_are_perfect_not_division_errors():
    assert prf(keys(), keys())["f1"] == 1.0
    assert prf(keys(), keys(1))["recall"] == 0.0


def test_prf_on_pairs_ignores_duplicates_and_unmatched_nulls():
    predicted = pl.DataFrame({"a": [1, 1, 2, None], "b": [10, 10, 20, 30]})
    truth = pl.DataFrame({"a": [1, 2, None], "b": [10, 21, 30]})
    s = prf(predicted, truth)
    assert (s["predicted"], s["truth"], s["true_positives"]) == (3, 3, 1)
