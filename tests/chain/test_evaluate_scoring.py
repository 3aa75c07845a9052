from pipeline.evaluate import prf


def test_prf_counts_true_positives():
    s = prf({1, 2, 3, 4}, {2, 3, 4, 5, 6})
    assert (s["true_positives"], s["precision"], s["recall"]) == (3, 0.75, 0.6)
    assert abs(s["f1"] - 2 * 0.75 * 0.6 / 1.35) < 1e-4


def test_prf_empty_sets_are_perfect_not_division_errors():
    assert prf(set(), set())["f1"] == 1.0
    assert prf(set(), {1})["recall"] == 0.0
