"""Tests of cluster comparison: distances, fingerprints and matching."""

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from diffpy.deepstruc.clusters import build_cluster, library_shapes
from diffpy.deepstruc.matching import (
    NearestReference,
    fingerprint,
    fingerprints,
    matched_errors,
    nearest_reference,
    nn_distance,
)

#: Expected ratios for isotropic Gaussian noise of width sigma per
#: component: mean |delta| = 2 sqrt(2 / pi) sigma (Maxwell), RMS |delta| =
#: sqrt(3) sigma, mean |component| = sqrt(2 / pi) sigma.
MAXWELL_MEAN = 2 * math.sqrt(2 / math.pi)
HALF_NORMAL_MEAN = math.sqrt(2 / math.pi)


def _rotation(angle_deg, axis=(1.0, 2.0, 3.0)):
    axis = np.asarray(axis) / np.linalg.norm(axis)
    return Rotation.from_rotvec(np.deg2rad(angle_deg) * axis).as_matrix()


def _random_points(n=12, seed=3):
    """A generic (chiral, asymmetric) set of points about 3 Å apart."""
    return np.random.default_rng(seed).normal(scale=3.0, size=(n, 3))


def _shape(cluster_type, size):
    """The library shape record of a type and size."""
    for shape in library_shapes():
        if shape.type == cluster_type and shape.size == size:
            return shape
    raise LookupError(f"{cluster_type} {size} is not a library shape")


# --- matched_errors ----------------------------------------------------


@pytest.mark.parametrize(
    "xyz, rotation",
    [
        # C1: icosahedron rotated by 10 degrees, expect all errors 0
        (build_cluster("icosahedral", (3,), 2.77), _rotation(10)),
        # C2: fcc block rotated by 15 degrees, expect all errors 0
        (build_cluster("fcc", (3, 3, 3), 2.77), _rotation(15)),
        # C3: decahedron rotated by 12 degrees, expect all errors 0
        (build_cluster("decahedral", (2, 2, 1), 2.77), _rotation(12)),
        # C4: generic points rotated by 15 degrees, expect all errors 0
        (_random_points(), _rotation(15)),
    ],
    ids=["ico-10deg", "fcc-15deg", "deca-12deg", "points-15deg"],
)
def test_matched_errors_zero_for_rotated_permuted_copy(xyz, rotation):
    order = np.random.default_rng(0).permutation(len(xyz))
    moved = (xyz @ rotation.T)[order] + [0.3, -1.2, 2.0]
    np.testing.assert_allclose(matched_errors(moved, xyz), 0.0, atol=1e-8)


def test_matched_errors_rejects_mirror_image():
    # only proper rotations are allowed: a generic point set and its
    # mirror image cannot be superimposed
    xyz = _random_points()
    mae, rmsd, _ = matched_errors(xyz * [1.0, 1.0, -1.0], xyz)
    assert mae > 0.1 and rmsd > 0.1


@pytest.mark.parametrize(
    "shift",
    [
        # C1: shift along x, expect 0 after centring
        [5.0, 0.0, 0.0],
        # C2: large oblique shift, expect 0 after centring
        [-30.0, 12.5, 7.25],
    ],
)
def test_matched_errors_ignore_uniform_shift(shift):
    xyz = build_cluster("octahedral", (4,), 2.77)
    np.testing.assert_allclose(
        matched_errors(xyz + shift, xyz), 0.0, atol=1e-10
    )


@pytest.mark.parametrize(
    "factor",
    [
        # C1: 2 % expansion, expect errors of 0.02 x distance from centre
        1.02,
        # C2: 3 % contraction, expect errors of 0.03 x distance from centre
        0.97,
    ],
)
def test_matched_errors_known_value_for_scaled_copy(factor):
    # no rotation undoes a uniform scaling: atom i is off by
    # |factor - 1| * |x_i - centroid|
    xyz = build_cluster("icosahedral", (3,), 2.77) + [1.0, 2.0, 3.0]
    centred = xyz - xyz.mean(0)
    radii = np.linalg.norm(centred, axis=1)
    eps = abs(factor - 1.0)
    mae, rmsd, mae_component = matched_errors(xyz * factor, xyz)
    assert mae == pytest.approx(eps * radii.mean(), rel=1e-9)
    assert rmsd == pytest.approx(eps * np.sqrt(np.mean(radii**2)), rel=1e-9)
    assert mae_component == pytest.approx(
        eps * np.abs(centred).mean(), rel=1e-9
    )


@pytest.mark.parametrize(
    "sigma, seed",
    [
        # C1: 0.02 Å noise, expect MAE ~ 1.6 sigma, RMSD ~ 1.73 sigma
        (0.02, 0),
        # C2: 0.05 Å noise, expect the same ratios
        (0.05, 1),
        # C3: 0.1 Å noise, expect the same ratios
        (0.1, 2),
    ],
)
def test_matched_errors_noise_of_known_size(sigma, seed):
    xyz = build_cluster("icosahedral", (4,), 2.77)
    rng = np.random.default_rng(seed)
    noisy = (xyz + rng.normal(0.0, sigma, xyz.shape))[rng.permutation(147)]
    mae, rmsd, mae_component = matched_errors(noisy, xyz)
    assert 0.88 * MAXWELL_MEAN < mae / sigma < 1.12 * MAXWELL_MEAN
    assert 0.88 * math.sqrt(3) < rmsd / sigma < 1.12 * math.sqrt(3)
    assert (
        0.88 * HALF_NORMAL_MEAN
        < mae_component / sigma
        < 1.12 * HALF_NORMAL_MEAN
    )
    assert mae <= rmsd


@pytest.mark.parametrize(
    "n_xyz, n_reference",
    [
        # C1: one atom fewer, expect ValueError
        (12, 13),
        # C2: one atom more, expect ValueError
        (14, 13),
    ],
)
def test_matched_errors_count_mismatch_raises(n_xyz, n_reference):
    xyz = _random_points(n_xyz, seed=1)
    reference = _random_points(n_reference, seed=2)
    with pytest.raises(ValueError, match="Cannot match"):
        matched_errors(xyz, reference)


# --- nn_distance --------------------------------------------------------


@pytest.mark.parametrize(
    "cluster_type, size, d, expected",
    [
        # C1: fcc, expect d
        ("fcc", (3, 3, 3), 2.77, 2.77),
        # C2: hcp (c/a = 1.633, so the shell spans d to 1.00001 d), expect d
        ("hcp", (3, 3, 3), 2.5, 2.5),
        # C3: octahedron, expect d
        ("octahedral", (5,), 2.9, 2.9),
        # C4: bcc built with a = d, expect sqrt(3)/2 d
        ("bcc", (3, 3, 3), 2.77, math.sqrt(3) / 2 * 2.77),
        # C5: larger bcc block, expect sqrt(3)/2 d
        ("bcc", (4, 4, 4), 2.4, math.sqrt(3) / 2 * 2.4),
    ],
)
def test_nn_distance_of_lattice_clusters(cluster_type, size, d, expected):
    xyz = build_cluster(cluster_type, size, d)
    assert nn_distance(xyz) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "cluster_type, size, seed",
    [
        # C1: fcc with 0.03 Å noise, expect within 2 % of the clean value
        ("fcc", (3, 3, 3), 0),
        # C2: icosahedron with noise, expect within 2 %
        ("icosahedral", (4,), 1),
        # C3: bcc with noise, expect within 2 %
        ("bcc", (4, 4, 4), 2),
        # C4: decahedron with noise, expect within 2 %
        ("decahedral", (2, 2, 1), 3),
    ],
)
def test_nn_distance_robust_to_noise(cluster_type, size, seed):
    xyz = build_cluster(cluster_type, size, 2.77)
    noisy = xyz + np.random.default_rng(seed).normal(0.0, 0.03, xyz.shape)
    assert nn_distance(noisy) == pytest.approx(nn_distance(xyz), rel=0.02)


@pytest.mark.parametrize(
    "xyz, expected",
    [
        # C1: a single atom, expect 0
        (np.zeros((1, 3)), 0.0),
        # C2: a dimer 2.5 Å long, expect 2.5
        (np.array([[0.0, 0.0, 0.0], [0.0, 1.5, 2.0]]), 2.5),
        # C3: an equilateral triangle of side 2, expect 2
        (np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [1.0, 3**0.5, 0]]), 2),
    ],
)
def test_nn_distance_small_clusters(xyz, expected):
    assert nn_distance(xyz) == pytest.approx(expected, abs=1e-12)


# --- fingerprints --------------------------------------------------------


def test_fingerprints_batch_equals_single():
    clusters = [
        build_cluster("fcc", (3, 3, 3), 2.77),
        build_cluster("icosahedral", (2,), 2.5),
        np.zeros((1, 3)),
        _random_points(20, seed=4),
        build_cluster("bcc", (3, 3, 3), 2.9),
    ]
    batch = fingerprints(clusters)
    assert batch.shape[0] == len(clusters)
    for row, xyz in zip(batch, clusters):
        np.testing.assert_allclose(row, fingerprint(xyz), rtol=1e-12)
    # a lone atom has no pairs; every other cluster has some
    np.testing.assert_array_equal(batch[2], 0.0)
    assert (batch[[0, 1, 3, 4]].max(axis=1) > 0).all()


def test_fingerprints_explicit_units_equal_default():
    clusters = [build_cluster("fcc", (3, 3, 3), 2.77), _random_points()]
    units = [nn_distance(x) for x in clusters]
    np.testing.assert_allclose(
        fingerprints(clusters, units=units), fingerprints(clusters)
    )


@pytest.mark.parametrize(
    "cluster_type, size, transform",
    [
        # C1: fcc rotated and reversed, expect the same fingerprint
        ("fcc", (2, 3, 3), lambda x: (x @ _rotation(37).T)[::-1]),
        # C2: fcc scaled by 1.37, expect the same fingerprint
        ("fcc", (2, 3, 3), lambda x: 1.37 * x),
        # C3: octahedron scaled by 2.6, expect the same fingerprint
        ("octahedral", (5,), lambda x: 2.6 * x),
        # C4: generic points rotated by 90 degrees, expect the same one
        ("random", None, lambda x: x @ _rotation(90).T),
    ],
    ids=["fcc-rotated", "fcc-x1.37", "octa-x2.6", "points-rotated"],
)
def test_fingerprint_invariant_to_orientation_and_scale(
    cluster_type, size, transform
):
    # The module docstring: the fingerprint ignores orientation and atom
    # order, and scale does not count.
    if cluster_type == "random":
        xyz = _random_points(30, seed=6)
    else:
        xyz = build_cluster(cluster_type, size, 1.0)
    reference = fingerprint(xyz)
    difference = np.linalg.norm(fingerprint(transform(xyz)) - reference)
    assert difference < 1e-6 * np.linalg.norm(reference)


# --- nearest_reference ---------------------------------------------------


@pytest.mark.parametrize(
    "cluster_type, size, d",
    [
        # C1: fcc 2-3-3 at d = 2.3 Å, expect fcc (2, 3, 3)
        ("fcc", (2, 3, 3), 2.3),
        # C2: icosahedron of 55 atoms at d = 2.9 Å, expect icosahedral (3,)
        ("icosahedral", (3,), 2.9),
        # C3: bcc block at d = 2.77 Å, expect bcc (4, 4, 5)
        ("bcc", (4, 4, 5), 2.77),
        # C4: decahedron at d = 2.5 Å, expect decahedral (2, 2, 1)
        ("decahedral", (2, 2, 1), 2.5),
        # C5: hcp block at d = 3.2 Å, expect hcp (2, 3, 4)
        ("hcp", (2, 3, 4), 3.2),
        # C6: octahedron at d = 2.6 Å, expect octahedral (5,)
        ("octahedral", (5,), 2.6),
    ],
)
def test_nearest_reference_of_library_cluster(cluster_type, size, d):
    shape = _shape(cluster_type, size)
    found = nearest_reference(build_cluster(cluster_type, size, d))
    assert isinstance(found, NearestReference)
    assert (found.type, found.size, found.n_atoms) == (
        cluster_type,
        size,
        shape.n_atoms,
    )
    assert found.shape_id == shape.shape_id
    assert found.rmsd == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    "cluster_type, size, seed",
    [
        # C1: noisy fcc, expect fcc (3, 4, 4) with RMSD ~ sqrt(3) 0.03 Å
        ("fcc", (3, 4, 4), 0),
        # C2: noisy icosahedron, expect icosahedral (4,)
        ("icosahedral", (4,), 1),
        # C3: noisy decahedron, expect decahedral (2, 2, 1)
        ("decahedral", (2, 2, 1), 2),
        # C4: noisy bcc, expect bcc (4, 4, 4)
        ("bcc", (4, 4, 4), 3),
    ],
)
def test_nearest_reference_with_noise(cluster_type, size, seed):
    xyz = build_cluster(cluster_type, size, 2.77)
    noisy = xyz + np.random.default_rng(seed).normal(0.0, 0.03, xyz.shape)
    found = nearest_reference(noisy)
    assert (found.type, found.size, found.n_atoms) == (
        cluster_type,
        size,
        len(xyz),
    )
    assert 0.02 < found.rmsd < 0.08


def test_nearest_reference_rotated_cluster():
    xyz = build_cluster("fcc", (2, 3, 3), 2.77)
    rotation = Rotation.random(random_state=7).as_matrix()
    found = nearest_reference(xyz @ rotation.T)
    # the fingerprint ignores orientation; the RMSD is only an upper bound
    # for a cluster far from the library orientation (see matched_errors)
    assert (found.type, found.size) == ("fcc", (2, 3, 3))
    assert np.isfinite(found.rmsd)


@pytest.mark.parametrize(
    "cluster_type, size, drop",
    [
        # C1: fcc block less its centre atom, expect NaN iff counts differ
        ("fcc", (2, 3, 3), 0),
        # C2: icosahedron less a surface atom, expect NaN iff counts differ
        ("icosahedral", (3,), 54),
        # C3: decahedron less an atom, expect NaN iff counts differ
        ("decahedral", (2, 2, 1), 30),
    ],
)
def test_nearest_reference_rmsd_nan_iff_counts_differ(
    cluster_type, size, drop
):
    xyz = np.delete(build_cluster(cluster_type, size, 2.77), drop, axis=0)
    found = nearest_reference(xyz)
    assert math.isnan(found.rmsd) == (found.n_atoms != len(xyz))
    if found.n_atoms == len(xyz):
        assert found.rmsd < 0.5


def test_nearest_reference_str():
    found = nearest_reference(build_cluster("fcc", (2, 3, 3), 2.77))
    assert str(found) == "fcc 2-3-3 (43 atoms)"
