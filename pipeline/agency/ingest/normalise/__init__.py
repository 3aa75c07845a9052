"""French normalisers as polars expression builders, each with a scalar reference twin.

The expression builders run on whole columns (the hot path); the scalar functions implement the
same rules one value at a time so property tests can check one against the other and against
python-stdnum.
"""
