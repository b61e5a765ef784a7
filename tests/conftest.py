"""Shared helpers. Statistical tests use fixed seeds and a 5-standard-error band."""

import numpy as np
import pytest

N_SIGMA = 5.0


def assert_within_se(estimate, truth, se, n_sigma=N_SIGMA, what=""):
    """|estimate - truth| <= n_sigma * se, elementwise, with a readable message."""
    estimate, truth, se = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (estimate, truth, se)))
    if np.any(se == 0):  # a degenerate sample (e.g. Rademacher w^2 == 1) must then be exact
        assert np.array_equal(estimate[se == 0], truth[se == 0]), f"{what}: {estimate} != {truth}"
        estimate, truth, se = estimate[se > 0], truth[se > 0], se[se > 0]
    z = (estimate - truth) / se
    assert np.all(np.abs(z) <= n_sigma), (
        f"{what}: z-scores {np.round(z, 2)} exceed {n_sigma} (est {estimate}, truth {truth})"
    )


def mean_and_se(values):
    """Sample mean and its standard error from the sample standard deviation."""
    values = np.asarray(values, dtype=float)
    return values.mean(), values.std(ddof=1) / np.sqrt(values.size)


@pytest.fixture
def within_se():
    return assert_within_se
