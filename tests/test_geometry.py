"""Geometry functions against loops / numpy written independently."""

import itertools
import math

import numpy as np
import pytest
import torch

from simcse_lab.errors import SimCSELabError
from simcse_lab.geometry import (Whitening, alignment, average_cosine, cosine_by_gold_bin, cosine_matrix,
                                 singular_spectrum, uniformity)


@pytest.fixture
def cloud():
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 6)) + np.array([3.0, 0, 0, 0, 0, 0])  # offset: anisotropic


def unit(v):
    return v / np.linalg.norm(v)


def test_average_cosine_exact_equals_pair_loop(cloud):
    pairs = list(itertools.combinations(range(len(cloud)), 2))
    expected = np.mean([unit(cloud[i]) @ unit(cloud[j]) for i, j in pairs])
    assert average_cosine(cloud) == pytest.approx(expected, rel=1e-10)
    assert average_cosine(cloud, num_pairs=20000) == pytest.approx(expected, abs=0.02)


def test_uniformity_and_alignment_equal_loops(cloud):
    pairs = list(itertools.combinations(range(len(cloud)), 2))
    expected = math.log(np.mean([math.exp(-2 * np.sum((unit(cloud[i]) - unit(cloud[j])) ** 2)) for i, j in pairs]))
    assert uniformity(cloud) == pytest.approx(expected, rel=1e-9)
    other = cloud + 0.1
    expected_alignment = np.mean([np.sum((unit(a) - unit(b)) ** 2) for a, b in zip(cloud, other)])
    assert alignment(cloud, other) == pytest.approx(expected_alignment, rel=1e-9)


def test_spectrum_is_normalised_svd(cloud):
    s = np.linalg.svd(cloud, compute_uv=False)
    np.testing.assert_allclose(singular_spectrum(cloud).numpy(), s / s[0], rtol=1e-10)


def test_whitening_gives_zero_mean_identity_covariance(cloud):
    w = Whitening.fit(cloud)
    y = w.transform(cloud).double().numpy()
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(np.cov(y.T), np.eye(6), atol=1e-4)
    assert average_cosine(y) < 0.1 < average_cosine(cloud)
    assert Whitening.fit(cloud, k=3).transform(cloud).shape == (40, 3)


def test_cosine_matrix_and_gold_bins(cloud):
    m = cosine_matrix(cloud).numpy()
    assert m[2, 5] == pytest.approx(unit(cloud[2]) @ unit(cloud[5]))
    bins = cosine_by_gold_bin([0.1, 0.2, 0.9, 0.8], [0.5, 0.7, 4.5, 5.0])
    assert [b.count for b in bins] == [2, 0, 0, 0, 2]
    assert bins[-1].mean == pytest.approx(0.85)


def test_non_finite_embeddings_are_refused():
    x = torch.ones(3, 4)
    x[1, 2] = float("nan")
    with pytest.raises(SimCSELabError, match="NaN or inf in 1 of 3 rows"):
        average_cosine(x)
    with pytest.raises(SimCSELabError, match="2-D"):
        uniformity(torch.ones(4))
