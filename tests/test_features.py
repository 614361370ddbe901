"""Tests of the first-peak distance and the scale-free prior input."""

import numpy as np
import pytest

from diffpy.deepstruc.clusters import build_cluster
from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf
from diffpy.deepstruc.features import (
    INPUT_R_GRID,
    U_GRID,
    estimate_nn_distance,
    prior_input,
)


def _shortest_distance(xyz):
    """Shortest interatomic distance, computed without the package."""
    delta = xyz[:, None, :] - xyz[None, :, :]
    distances = np.sqrt((delta**2).sum(-1))
    return distances[np.triu_indices(len(xyz), k=1)].min()


def _first_shell_mean(xyz):
    """Mean length of the pairs shorter than 1.08 x the shortest one."""
    delta = xyz[:, None, :] - xyz[None, :, :]
    distances = np.sqrt((delta**2).sum(-1))[np.triu_indices(len(xyz), k=1)]
    return distances[distances < 1.08 * distances.min()].mean()


def _pdf(cluster_type, size, d, zoom=1.0, rstep=0.01, params=None):
    params = params or DebyeParameters(rstep=rstep)
    xyz = build_cluster(cluster_type, size, d)
    r, g = simulate_pdf(xyz, params=params, zoom=zoom)
    return xyz, r, g


@pytest.mark.parametrize(
    "cluster_type, size, d, zoom, rstep",
    [
        # C1: fcc cuboctahedron-like block, expect first peak at d
        ("fcc", (3, 3, 3), 2.77, 1.0, 0.01),
        # C2: bcc built with a = d, expect first peak at sqrt(3)/2 d
        ("bcc", (3, 3, 3), 2.77, 1.0, 0.01),
        # C3: hcp block, expect first peak at d
        ("hcp", (3, 3, 3), 2.5, 1.0, 0.01),
        # C4: octahedron, expect first peak at d
        ("octahedral", (4,), 2.9, 1.0, 0.01),
        # C5: simple cubic block, expect first peak at d
        ("sc", (3, 3, 3), 2.4, 1.0, 0.01),
        # C6: fcc strained by 3 %, expect first peak at 1.03 d
        ("fcc", (3, 3, 3), 2.77, 1.03, 0.01),
        # C7: bcc strained by 3 %, expect 1.03 sqrt(3)/2 d
        ("bcc", (3, 3, 3), 2.77, 1.03, 0.01),
        # C8: fcc on a coarse 0.05 Å grid, expect first peak at d
        ("fcc", (3, 3, 3), 2.77, 1.0, 0.05),
        # C9: strained hcp on a coarse grid, expect first peak at 1.03 d
        ("hcp", (3, 3, 3), 2.77, 1.03, 0.05),
        # C10: bcc on a coarse grid, expect sqrt(3)/2 d
        ("bcc", (4, 4, 4), 2.6, 1.0, 0.05),
    ],
)
def test_estimate_nn_distance_recovers_shortest_distance(
    cluster_type, size, d, zoom, rstep
):
    xyz, r, g = _pdf(cluster_type, size, d, zoom, rstep)
    expected = zoom * _shortest_distance(xyz)
    if cluster_type == "bcc":
        assert expected == pytest.approx(zoom * np.sqrt(3) / 2 * d)
    assert estimate_nn_distance(r, g) == pytest.approx(expected, rel=5e-3)


@pytest.mark.parametrize(
    "size, zoom, rstep",
    [
        # C1: 13-atom icosahedron, expect the first-shell mean within 1 %
        ((2,), 1.0, 0.01),
        # C2: 55-atom icosahedron, strained, expect first-shell mean
        ((3,), 1.03, 0.01),
        # C3: 147-atom icosahedron on a coarse grid, expect first-shell mean
        ((4,), 1.0, 0.05),
    ],
)
def test_estimate_nn_distance_icosahedron_first_shell(size, zoom, rstep):
    xyz, r, g = _pdf("icosahedral", size, 2.77, zoom, rstep)
    expected = zoom * _first_shell_mean(xyz)
    assert estimate_nn_distance(r, g) == pytest.approx(expected, rel=1e-2)


def test_estimate_nn_distance_ignores_data_beyond_range():
    # A huge spike at 35 Å (outside 1-30 Å) must not change the estimate.
    xyz, r, g = _pdf("fcc", (3, 3, 3), 2.77, params=DebyeParameters(rmax=40))
    spiked = np.where(np.abs(r - 35.0) < 0.05, 100 * g.max(), g)
    assert estimate_nn_distance(r, spiked) == pytest.approx(
        estimate_nn_distance(r, g), abs=1e-12
    )
    assert estimate_nn_distance(r, spiked) == pytest.approx(2.77, rel=5e-3)


@pytest.mark.parametrize(
    "r, g",
    [
        # C1: G identically zero, expect ValueError
        (INPUT_R_GRID, np.zeros_like(INPUT_R_GRID)),
        # C2: G rising monotonically (no local maximum), expect ValueError
        (INPUT_R_GRID, INPUT_R_GRID.copy()),
        # C3: G negative everywhere, expect ValueError
        (INPUT_R_GRID, -1.0 - np.sin(INPUT_R_GRID) ** 2),
        # C4: r entirely below 1 Å (e.g. given in nm), expect ValueError
        (np.arange(1, 100) / 100.0, np.sin(np.arange(1, 100) / 10.0)),
    ],
    ids=["zero", "ramp", "negative", "r-below-1A"],
)
def test_estimate_nn_distance_no_peak_raises(r, g):
    with pytest.raises(ValueError, match="first coordination peak"):
        estimate_nn_distance(r, g)


@pytest.fixture(scope="module")
def fcc_input():
    xyz = build_cluster("fcc", (3, 3, 3), 2.77)
    r, g = simulate_pdf(xyz, INPUT_R_GRID)
    return r, g


def test_prior_input_shape_and_normalisation(fcc_input):
    r, g = fcc_input
    features, d = prior_input(r, g)
    assert features.shape == (len(U_GRID),)
    assert features.dtype == np.float32
    assert d == pytest.approx(estimate_nn_distance(r, g), abs=1e-12)
    # G / max(G) sampled between grid points: max just at or below 1
    assert 0.99 <= features.max() <= 1.0 + 1e-6
    # the maximum of an fcc cluster's G is its first peak, u = 1
    assert U_GRID[np.argmax(features)] == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize(
    "factor",
    [
        # C1: G multiplied by 7, expect the same input
        7.0,
        # C2: G multiplied by 0.01, expect the same input
        0.01,
    ],
)
def test_prior_input_independent_of_g_scale(fcc_input, factor):
    r, g = fcc_input
    features, d = prior_input(r, g)
    scaled, d_scaled = prior_input(r, factor * g)
    np.testing.assert_allclose(scaled, features, atol=1e-6)
    assert d_scaled == pytest.approx(d, rel=1e-12)


@pytest.mark.parametrize(
    "cluster_type, size",
    [
        # C1: fcc, expect the same input at d = 2.5 and d = 2.9 Å
        ("fcc", (3, 3, 3)),
        # C2: icosahedron, expect the same input at both d
        ("icosahedral", (3,)),
        # C3: bcc, expect the same input at both d
        ("bcc", (3, 3, 3)),
        # C4: decahedron, expect the same input at both d
        ("decahedral", (2, 2, 1)),
    ],
)
def test_prior_input_is_scale_free(cluster_type, size):
    # A geometry scaled by s has the same G(r / s) when every length of the
    # experiment scales too: Uiso and delta2 by s^2, Q by 1 / s.
    base = DebyeParameters()
    features = []
    for d in (2.5, 2.9):
        s = d / 2.5
        params = DebyeParameters(
            qmin=base.qmin / s,
            qmax=base.qmax / s,
            qdamp=base.qdamp / s,
            delta2=base.delta2 * s**2,
            biso=base.biso * s**2,
        )
        xyz = build_cluster(cluster_type, size, d)
        r, g = simulate_pdf(xyz, INPUT_R_GRID, params=params)
        features.append(prior_input(r, g)[0])
    assert np.abs(features[0] - features[1]).max() < 1e-2


def test_prior_input_differs_between_geometries(fcc_input):
    # guards the scale-free test: different shapes give different inputs
    r, g = fcc_input
    xyz = build_cluster("icosahedral", (3,), 2.77)
    _, g_ico = simulate_pdf(xyz, INPUT_R_GRID)
    difference = prior_input(r, g)[0] - prior_input(r, g_ico)[0]
    assert np.abs(difference).max() > 0.1


def test_prior_input_zero_outside_data(fcc_input):
    r, g = fcc_input
    inside = (r >= 2.5) & (r <= 12.0)
    features, d = prior_input(r[inside], g[inside])
    reach = U_GRID * d
    below, above = reach < r[inside][0], reach > r[inside][-1]
    assert below.any() and above.any()
    np.testing.assert_array_equal(features[below], 0.0)
    np.testing.assert_array_equal(features[above], 0.0)
    # inside the data the input follows the full-range one
    full, _ = prior_input(r, g)
    within = ~below & ~above
    assert np.abs(features[within]).max() > 0.5
    np.testing.assert_allclose(features[within], full[within], atol=1e-6)


def test_prior_input_ignores_data_beyond_30_angstrom():
    xyz, r, g = _pdf("fcc", (3, 3, 3), 2.77, params=DebyeParameters(rmax=40))
    spiked = np.where(np.abs(r - 35.0) < 0.05, 100 * g.max(), g)
    features, d = prior_input(r, spiked)
    reference, d_reference = prior_input(r, g)
    np.testing.assert_array_equal(features, reference)
    assert features.max() > 0.99
