"""Tests of the Debye PDF simulator against srreal references and physics."""

import csv
import math

import numpy as np
import pytest
from conftest import HAS_SRREAL, REFERENCE_DIR, needs_srreal
from hypothesis import given, settings
from hypothesis import strategies as st

from diffpy.deepstruc import debye
from diffpy.deepstruc.debye import (
    DebyeParameters,
    IncrementalPDF,
    PairHistogram,
    PairVectors,
    cluster_xyz,
    pair_distances,
    r_grid,
    simulate_pdf,
    simulate_pdfs,
)

PARAMETER_NAMES = ("qmin", "qmax", "qdamp", "delta2", "rmin", "rmax", "rstep")


def _manifest():
    with open(REFERENCE_DIR / "manifest.csv", newline="") as stream:
        return list(csv.DictReader(stream))


MANIFEST = _manifest()


def _row_params(row):
    values = {name: float(row[name]) for name in PARAMETER_NAMES}
    return DebyeParameters(biso=float(row["Biso"]), **values)


def _load_xyz(path):
    return np.loadtxt(path, skiprows=2, usecols=(1, 2, 3))


def _rw(g, gref):
    return math.sqrt(np.sum((gref - g) ** 2) / np.sum(gref**2))


def _fcc_cluster():
    from ase.cluster import Octahedron

    return Octahedron("Pt", 5, cutoff=1, latticeconstant=3.93)


def _brute_force(xyz, r, params, uiso):
    """G(r) by the README recipe: plain pair sum, odd FFT, interpolation."""
    d = pair_distances(xyz)
    # srreal: 6 ripples plus the Gaussian tail reach at precision 3.33e-6
    fwhm = np.sqrt(8 * np.log(2) * 2 * uiso)
    tail = np.sqrt(-np.log(3.33e-6) / (4 * np.log(2))) * fwhm
    ext = min(10, 12 * np.pi / params.qmax + tail)
    rmax = r.max() + params.rstep
    extendedrmax = np.ceil((rmax + ext) / params.rstep) * params.rstep
    qstep = np.pi / extendedrmax
    q = np.arange(np.ceil(params.qmax / qstep)) * qstep
    s2 = 2 * uiso * np.clip(1 - params.delta2 / d**2, 0, None)
    terms = np.exp(-0.5 * np.outer(s2, q**2)) * np.sin(np.outer(d, q))
    f = 2 / len(xyz) * (terms / d[:, None]).sum(axis=0)
    f[: int(np.ceil(params.qmin / qstep))] = 0
    nfine = max(len(f), int(np.ceil(np.pi / params.rstep / qstep)))
    n2 = 1 << int(np.ceil(np.log2(nfine)))
    c = np.zeros(2 * n2)
    c[: len(f)] = f
    c[2 * n2 - np.arange(1, n2)] = -c[1:n2]
    gpad = np.fft.ifft(c).imag[:n2] * n2 * qstep * 2 / np.pi
    x = r / (np.pi / (n2 * qstep))
    lo = x.astype(int)
    w = x - lo
    g = (1 - w) * gpad[lo] + w * gpad[lo + 1]
    return g * np.exp(-0.5 * (params.qdamp * r) ** 2)


# C0: the reference folder in tests/testdata, expect the 15 clusters of
# its manifest, each with its .xyz and .gr file and nothing else
def test_reference_data_complete(reference_dir):
    assert len(MANIFEST) == 15
    listed = {"README.md", "manifest.csv"}
    for row in MANIFEST:
        listed.update((row["xyz_file"], row["gr_file"]))
    assert {p.name for p in reference_dir.iterdir()} == listed


# C1: every srreal reference cluster with its own settings, expect G equal
# to the 4-decimal srreal values (|dG| <= 5e-5 rounding) and Rw <= 0.01
@pytest.mark.parametrize("row", MANIFEST, ids=[r["name"] for r in MANIFEST])
def test_reference_pdfs(reference_dir, row):
    xyz = _load_xyz(reference_dir / row["xyz_file"])
    rref, gref = np.loadtxt(reference_dir / row["gr_file"], unpack=True)
    r, g = simulate_pdf(xyz, params=_row_params(row), uiso=float(row["Uiso"]))
    assert r.size == int(row["n_points"])
    assert np.allclose(r, rref, atol=1e-9)
    assert _rw(g, gref) <= 0.01
    assert np.abs(g - gref).max() <= 6e-5


# C2: srreal's Q-grid for each reference row, expect the extendedrmax,
# qstep and first non-zero Q index recorded in the reference files
@pytest.mark.parametrize("row", MANIFEST, ids=[r["name"] for r in MANIFEST])
def test_reference_fourier_grid(reference_dir, row):
    params = _row_params(row)
    grid = debye._fourier_grid(
        params, float(row["Uiso"]), params.rmin, params.rmax
    )
    assert grid.dhi == pytest.approx(float(row["extendedrmax"]), abs=1e-9)
    assert grid.qstep == pytest.approx(float(row["qstep_used"]), rel=1e-12)
    assert grid.nqmin == math.ceil(params.qmin / grid.qstep)


# C3: reference clusters in one batch with mixed zooms and Uiso, expect the
# single-cluster G within Rw 1e-4 (B-spline histogram approximation)
def test_batch_equals_single(reference_dir):
    rows = [row for row in MANIFEST if row["name"] != "pt_fcc_232_rmax50"]
    clusters = [_load_xyz(reference_dir / row["xyz_file"]) for row in rows]
    zooms = np.linspace(0.95, 1.05, len(clusters))
    uisos = np.where(np.arange(len(clusters)) % 2, 0.004, 0.006)
    r, gbatch = simulate_pdfs(clusters, zooms=zooms, uisos=uisos)
    assert gbatch.shape == (len(clusters), r.size)
    for xyz, zoom, uiso, g in zip(clusters, zooms, uisos, gbatch):
        _, gsingle = simulate_pdf(xyz, zoom=zoom, uiso=uiso)
        assert _rw(g, gsingle) < 1e-4


# C4: PairHistogram.pdf with zoom and Uiso changes, expect simulate_pdf
# exactly and the README brute-force recipe to rounding error
@pytest.mark.parametrize("zoom, uiso", [(1.0, None), (1.04, 0.008), (0.97, 0)])
def test_pair_histogram_crystalline(zoom, uiso):
    xyz = _fcc_cluster().get_positions()
    params = DebyeParameters(qdamp=0.03, delta2=1.5)
    pairs = PairHistogram.from_cluster(xyz)
    assert pairs.distances.size < 50
    assert pairs.counts.sum() == len(xyz) * (len(xyz) - 1) / 2
    r, g = simulate_pdf(xyz, params=params, zoom=zoom, uiso=uiso)
    assert np.array_equal(pairs.pdf(r, params, zoom=zoom, uiso=uiso), g)
    u = params.uiso if uiso is None else uiso
    assert _rw(g, _brute_force(xyz * zoom, r, params, u)) < 1e-10


# PairVectors: a deformed cluster's histogram from its distinct pair
# vectors, expect that of the deformed coordinates (any order and
# orientation), and the cluster's own without a deformation
@pytest.mark.parametrize("seed", [0, 1])
def test_pair_vectors_give_the_histogram_of_the_deformed_cluster(seed):
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    xyz = _fcc_cluster().get_positions()
    xyz = Rotation.random(random_state=seed).apply(xyz)
    xyz = xyz[rng.permutation(len(xyz))]
    vectors = PairVectors.from_cluster(xyz)
    n_pairs = len(xyz) * (len(xyz) - 1) / 2
    assert vectors.counts.sum() == n_pairs
    assert len(vectors.counts) < n_pairs / 4
    assert vectors.n_atoms == len(xyz)
    params = DebyeParameters(qdamp=0.03)
    r = r_grid(1, 30, 0.01)
    deformation = np.eye(3) + rng.uniform(-0.04, 0.04, (3, 3))
    g = vectors.histogram(deformation).pdf(r, params)
    expected = PairHistogram.from_cluster(xyz @ deformation.T).pdf(r, params)
    assert _rw(g, expected) < 1e-6
    plain = PairHistogram.from_cluster(xyz).pdf(r, params)
    assert _rw(vectors.histogram().pdf(r, params), plain) < 1e-6
    assert _rw(g, plain) > 0.05


# pdf_and_slope: G as pdf gives it and its derivative in Uiso, for a
# crystalline cluster (summed exactly) and a blurred one (through the
# spline histogram), expect central differences of pdf
@pytest.mark.parametrize("blur, uiso", [(0.0, 0.004), (0.1, 0.009)])
def test_pdf_and_slope_give_g_and_its_uiso_derivative(blur, uiso):
    rng = np.random.default_rng(3)
    xyz = _fcc_cluster().get_positions()
    xyz = xyz + rng.normal(0, blur, xyz.shape)
    pairs = PairHistogram.from_cluster(xyz)
    params = DebyeParameters(qdamp=0.03, delta2=2.0)
    r = r_grid(1.5, 30, 0.01)
    g, slope = pairs.pdf_and_slope(r, params, zoom=1.02, uiso=uiso)
    assert np.array_equal(g, pairs.pdf(r, params, zoom=1.02, uiso=uiso))
    step = 1e-7
    up, down = (
        pairs.pdf(r, params, zoom=1.02, uiso=uiso + sign * step)
        for sign in (1, -1)
    )
    expected = (up - down) / (2 * step)
    assert _rw(expected, slope) < 1e-5
    assert np.abs(slope).max() > 10 * np.abs(g).max()


# C5: blurred cluster whose distances are all distinct (histogram path),
# expect the brute-force G within Rw 1e-4 for several zooms and Uiso
@pytest.mark.parametrize("zoom, uiso", [(1.0, 0.0038), (1.05, 0.01)])
def test_pair_histogram_blurred(zoom, uiso):
    rng = np.random.default_rng(1)
    xyz = _fcc_cluster().get_positions()
    xyz = xyz + rng.normal(0, 0.1, xyz.shape)
    pairs = PairHistogram.from_cluster(xyz)
    assert pairs.distances.size > 1000
    r = r_grid(0, 30, 0.01)
    g = pairs.pdf(r, zoom=zoom, uiso=uiso)
    gref = _brute_force(xyz * zoom, r, DebyeParameters(), uiso)
    assert _rw(g, gref) < 1e-4


# C6: random clusters of metal density, small ones summed exactly and
# larger ones through the spline histogram, expect the brute-force G
@settings(max_examples=20, deadline=None)
@given(
    st.integers(2, 80),
    st.integers(0, 2**32 - 1),
    st.floats(0.9, 1.1),
    st.floats(0.001, 0.02),
)
def test_batch_random_clusters(n_atoms, seed, zoom, uiso):
    side = (15 * n_atoms) ** (1 / 3)
    xyz = np.random.default_rng(seed).uniform(0, side, (n_atoms, 3))
    r, g = simulate_pdfs([xyz], zooms=zoom, uisos=uiso)
    gref = _brute_force(xyz * zoom, r, DebyeParameters(), uiso)
    assert _rw(g[0], gref) < 1e-4


# C7: dimers with small qdamp, expect the G maximum at the bond length
@pytest.mark.parametrize("bond", [2.3, 2.88, 3.5])
def test_dimer_peak_at_bond(bond):
    r, g = simulate_pdf(
        [[0, 0, 0], [0, 0, bond]], params=DebyeParameters(qdamp=0.01)
    )
    assert abs(r[np.argmax(g)] - bond) <= 0.02


# C8: fcc cluster expanded by zoom 1.05, expect the first peak 5 % further
def test_zoom_moves_first_peak():
    xyz = _fcc_cluster().get_positions()
    r, g1 = simulate_pdf(xyz)
    _, g2 = simulate_pdf(xyz, zoom=1.05)
    first = r < 3.4
    peak1 = r[first][np.argmax(g1[first])]
    peak2 = r[np.argmax(np.where(r < 3.6, g2, -np.inf))]
    assert peak1 == pytest.approx(2.78, abs=0.02)
    assert peak2 == pytest.approx(1.05 * peak1, abs=0.02)


# C9: any cluster, expect G(0) = 0 exactly and finite G
def test_g_at_zero():
    r, g = simulate_pdf(_fcc_cluster())
    assert r[0] == 0 and g[0] == 0
    assert np.isfinite(g).all()


# C10: Pt and Au clusters with the same coordinates, expect identical G
def test_element_independence():
    from ase import Atoms

    xyz = _fcc_cluster().get_positions()
    _, gpt = simulate_pdf(Atoms(f"Pt{len(xyz)}", positions=xyz))
    _, gau = simulate_pdf(Atoms(f"Au{len(xyz)}", positions=xyz))
    _, garray = simulate_pdf(xyz)
    assert np.array_equal(gpt, gau)
    assert np.array_equal(gpt, garray)


# C11: diffpy.structure Structure in a non-trivial lattice, expect its
# Cartesian coordinates to be used
def test_structure_input():
    from diffpy.structure import Atom, Lattice, Structure

    xyz = _fcc_cluster().get_positions()
    lattice = Lattice(4, 5, 6, 90, 90, 90)
    structure = Structure(
        [Atom("Pt", p) for p in lattice.fractional(xyz)], lattice=lattice
    )
    assert np.allclose(cluster_xyz(structure), xyz)
    _, gstructure = simulate_pdf(structure)
    _, garray = simulate_pdf(xyz)
    assert np.allclose(gstructure, garray, atol=1e-10)


# C12: single atoms, alone and in a batch, expect G = 0 everywhere
def test_single_atom():
    r, g = simulate_pdf([[1.0, 2.0, 3.0]])
    assert r.size == 3000 and not g.any()
    _, gbatch = simulate_pdfs([[[0, 0, 0]], [[0, 0, 0], [0, 0, 2.5]]])
    assert not gbatch[0].any() and gbatch[1].any()


# C13: a custom r-grid ending at the default grid's last point, expect the
# default G there; any other grid, expect the brute-force G
def test_custom_r():
    xyz = _fcc_cluster().get_positions()
    r, g = simulate_pdf(xyz)
    rsub, gsub = simulate_pdf(xyz, r[::-7][::-1])
    assert np.array_equal(gsub, g[::-7][::-1])
    rcustom = np.linspace(1.5, 20.3, 777)
    _, gcustom = simulate_pdf(xyz, rcustom)
    gref = _brute_force(xyz, rcustom, DebyeParameters(), 0.3 / (8 * np.pi**2))
    assert _rw(gcustom, gref) < 1e-10


# C14: r_grid on the default, rmax50 and floating-point edge cases, expect
# rmin included and rmax excluded
def test_r_grid():
    r = r_grid(0, 30, 0.01)
    assert r.size == 3000 and r[0] == 0 and r[-1] == pytest.approx(29.99)
    assert r_grid(0, 50, 0.05).size == 1000
    assert np.allclose(r_grid(1.1, 1.5, 0.1), [1.1, 1.2, 1.3, 1.4])
    assert np.allclose(r_grid(0.3, 0.7, 0.1), [0.3, 0.4, 0.5, 0.6])
    assert r_grid(0, 1.1, 0.1).size == 11


# C15: defaults, expect the training settings and uiso = biso / (8 pi^2)
def test_parameters_defaults():
    params = DebyeParameters()
    assert (params.qmin, params.qmax, params.qdamp) == (0.7, 25.0, 0.04)
    assert (params.delta2, params.biso) == (2.0, 0.3)
    assert (params.rmin, params.rmax, params.rstep) == (0.0, 30.0, 0.01)
    assert params.uiso == pytest.approx(0.0037995443865876666, rel=1e-15)


# C16: nonsense settings, expect ValueError asking to fix them
@pytest.mark.parametrize(
    "kwargs",
    [
        {"qmax": 0.5},
        {"qmin": -1},
        {"rstep": 0},
        {"biso": -0.1},
        {"qdamp": -0.01},
        {"rmax": 0},
        {"delta2": float("nan")},
    ],
)
def test_parameters_invalid(kwargs):
    with pytest.raises(ValueError, match="Please"):
        DebyeParameters(**kwargs)


# C17: malformed clusters and arguments, expect ValueError
@pytest.mark.parametrize(
    "cluster",
    [
        [[0, 0, np.nan], [0, 0, 1]],
        np.zeros((4, 2)),
        np.zeros((0, 3)),
        np.zeros(3),
    ],
)
def test_bad_cluster(cluster):
    with pytest.raises(ValueError, match="Please"):
        simulate_pdf(cluster)


def test_bad_arguments():
    xyz = [[0, 0, 0], [0, 0, 2.5]]
    with pytest.raises(ValueError, match="zoom"):
        simulate_pdf(xyz, zoom=0)
    with pytest.raises(ValueError, match="uiso"):
        simulate_pdfs([xyz], uisos=[-1])
    with pytest.raises(ValueError, match="r >= 0"):
        simulate_pdf(xyz, r=[-1.0, 1.0])
    with pytest.raises(ValueError, match="backend"):
        simulate_pdf(xyz, backend="torch")


# C18: srreal backend on a reference cluster with zoom and Uiso changes,
# expect the numpy backend to agree to rounding error
@needs_srreal
def test_srreal_backend(reference_dir):
    xyz = _load_xyz(reference_dir / "pt_fcc_232.xyz")
    for zoom, uiso in ((1.0, None), (1.03, 0.006)):
        r, gsrreal = simulate_pdf(xyz, zoom=zoom, uiso=uiso, backend="srreal")
        _, gnumpy = simulate_pdf(xyz, zoom=zoom, uiso=uiso)
        assert _rw(gnumpy, gsrreal) < 1e-6


# C19: srreal backend without srreal, expect an ImportError naming conda
@pytest.mark.skipif(HAS_SRREAL, reason="diffpy.srreal is installed")
def test_srreal_backend_missing():
    with pytest.raises(ImportError, match="conda"):
        simulate_pdf([[0, 0, 0], [0, 0, 2.5]], backend="srreal")


# ------------------------------------------------------- incremental PDF
def _blurred_octahedron(seed=0):
    from ase.cluster import Octahedron

    rng = np.random.default_rng(seed)
    xyz = Octahedron("Pt", 5, cutoff=1).get_positions()
    return xyz + rng.normal(0.0, 0.05, xyz.shape), rng


INCREMENTAL_R = np.arange(150, 3000) / 100
INCREMENTAL_PARAMS = DebyeParameters(qmax=24.0, qdamp=0.03)


def test_incremental_pdf_equals_the_pair_histogram():
    from ase.cluster import Octahedron

    crystal = Octahedron("Pt", 5, cutoff=1).get_positions()
    blurred, _ = _blurred_octahedron()
    for xyz, tolerance in ((crystal, 1e-4), (blurred, 1e-7)):
        expected = PairHistogram.from_cluster(xyz).pdf(
            INCREMENTAL_R, INCREMENTAL_PARAMS
        )
        got = IncrementalPDF(xyz, INCREMENTAL_R, INCREMENTAL_PARAMS).pdf()
        assert (
            np.abs(got - expected).max() < tolerance * np.abs(expected).max()
        )


def test_incremental_changes_equal_a_fresh_calculation():
    xyz, rng = _blurred_octahedron()
    calc = IncrementalPDF(xyz, INCREMENTAL_R, INCREMENTAL_PARAMS, uiso=0.004)
    for k in range(60):
        step = rng.integers(3)
        if step == 0:
            calc.add(calc.xyz[k % calc.n_atoms] + rng.normal(0, 1.5, 3))
        elif step == 1:
            calc.remove(int(rng.integers(calc.n_atoms)))
        else:
            index = int(rng.integers(calc.n_atoms))
            calc.move(index, calc.xyz[index] + rng.normal(0, 0.3, 3))
    fresh = IncrementalPDF(
        calc.xyz, INCREMENTAL_R, INCREMENTAL_PARAMS, uiso=0.004
    )
    assert np.allclose(calc.pdf(), fresh.pdf(), rtol=0, atol=1e-10)


def test_incremental_add_then_remove_restores_g():
    xyz, _ = _blurred_octahedron()
    calc = IncrementalPDF(xyz, INCREMENTAL_R, INCREMENTAL_PARAMS)
    before = calc.pdf()
    calc.add([0.3, 0.2, 9.0])
    assert not np.allclose(calc.pdf(), before)
    assert np.allclose(calc.remove(-1), [0.3, 0.2, 9.0])
    assert np.allclose(calc.pdf(), before, rtol=0, atol=1e-12)
    assert calc.n_atoms == len(xyz)


def test_incremental_refuses_bad_changes():
    xyz, _ = _blurred_octahedron()
    calc = IncrementalPDF(xyz[:2], INCREMENTAL_R, INCREMENTAL_PARAMS)
    with pytest.raises(IndexError, match="2 atoms"):
        calc.remove(5)
    with pytest.raises(ValueError, match="three finite"):
        calc.add([0.0, np.nan, 1.0])
    with pytest.raises(ValueError, match="three finite"):
        calc.move(0, [1.0, 2.0])
    calc.remove(0)
    calc.remove(0)
    with pytest.raises(ValueError, match="no atoms"):
        calc.pdf()


def test_trial_pdfs_equal_the_changes_made():
    xyz, rng = _blurred_octahedron()
    calc = IncrementalPDF(xyz, INCREMENTAL_R, INCREMENTAL_PARAMS)
    before = calc.pdf()
    positions = calc.xyz[:3] + rng.normal(0, 2.0, (3, 3))
    trials = calc.trial_pdfs(add=positions, remove=[4, -1])
    assert trials.shape == (5, INCREMENTAL_R.size)
    assert np.array_equal(calc.pdf(), before)  # nothing was applied
    for row, position in zip(trials, positions):
        calc.add(position)
        assert np.allclose(row, calc.pdf(), rtol=0, atol=1e-10)
        calc.remove(-1)
    for row, index in zip(trials[3:], (4, -1)):
        kept = np.delete(calc.xyz, index, axis=0)
        fresh = IncrementalPDF(kept, INCREMENTAL_R, INCREMENTAL_PARAMS)
        assert np.allclose(row, fresh.pdf(), rtol=0, atol=1e-10)


def test_trial_rw_equals_the_scaled_fit_of_each_trial():
    from diffpy.deepstruc.fitting import scale_and_rw

    xyz, rng = _blurred_octahedron()
    calc = IncrementalPDF(xyz[:-1], INCREMENTAL_R, INCREMENTAL_PARAMS)
    data = IncrementalPDF(xyz, INCREMENTAL_R, INCREMENTAL_PARAMS).pdf()
    data = 0.6 * data + rng.normal(0, 0.01, data.shape)
    positions = np.vstack([xyz[-1], xyz[:5] + rng.normal(0, 2.0, (5, 3))])
    rw = calc.trial_rw(data, add=positions, remove=range(6))
    _, expected = scale_and_rw(
        data, calc.trial_pdfs(add=positions, remove=range(6))
    )
    assert np.allclose(rw, expected, rtol=1e-6, atol=1e-9)
    assert np.argmin(rw) == 0  # the missing atom fits best
    with pytest.raises(ValueError, match="points of the r grid"):
        calc.trial_rw(data[:-1], add=positions)
    with pytest.raises(ValueError, match="finite coordinates"):
        calc.trial_pdfs(add=[[0.0, np.inf, 0.0]])


def test_trial_rw_over_qdamps_is_the_least_rw_of_each_qdamp():
    import dataclasses

    xyz, rng = _blurred_octahedron()
    calc = IncrementalPDF(xyz[:-1], INCREMENTAL_R, INCREMENTAL_PARAMS)
    damped = dataclasses.replace(INCREMENTAL_PARAMS, qdamp=0.06)
    data = IncrementalPDF(xyz, INCREMENTAL_R, damped).pdf()
    positions = np.vstack([xyz[-1], xyz[:3] + rng.normal(0, 2.0, (3, 3))])
    qdamps = [0.0, 0.03, 0.06]
    each = [
        IncrementalPDF(
            xyz[:-1],
            INCREMENTAL_R,
            dataclasses.replace(INCREMENTAL_PARAMS, qdamp=q),
        ).trial_rw(data, add=positions, remove=[2])
        for q in qdamps
    ]
    profiled = calc.trial_rw(data, add=positions, remove=[2], qdamps=qdamps)
    assert np.allclose(profiled, np.min(each, axis=0), rtol=1e-6, atol=1e-6)
    assert profiled[0] < 1e-6  # the missing atom, at the data's qdamp
    group = calc.trial_group_rw(data, [(positions[:1], [])], qdamps=qdamps)
    assert group[0] == pytest.approx(profiled[0], abs=1e-6)


def test_trial_group_rw_equals_the_changed_clusters():
    from diffpy.deepstruc.fitting import scale_and_rw

    xyz, rng = _blurred_octahedron()
    calc = IncrementalPDF(xyz, INCREMENTAL_R, INCREMENTAL_PARAMS)
    data = calc.pdf() + rng.normal(0, 0.02, INCREMENTAL_R.shape)
    new = xyz[:4] + rng.normal(0, 2.5, (4, 3))
    changes = [(new, []), ([], [0, 5, 9]), (new[:2], [3, -1]), ([], [])]
    rw = calc.trial_group_rw(data, changes)
    for (add, remove), value in zip(changes, rw):
        kept = np.delete(xyz, np.array(remove, dtype=int), axis=0)
        cluster = np.vstack([kept, np.reshape(add, (-1, 3))])
        fresh = IncrementalPDF(cluster, INCREMENTAL_R, INCREMENTAL_PARAMS)
        assert value == pytest.approx(
            scale_and_rw(data, fresh.pdf())[1], rel=1e-8
        )
    with pytest.raises(ValueError, match="no atoms"):
        calc.trial_group_rw(data, [([], range(len(xyz)))])
