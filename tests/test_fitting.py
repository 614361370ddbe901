"""Tests of the quick scale/zoom/Uiso fit of a cluster PDF."""

import numpy as np
import pytest

from diffpy.deepstruc.clusters import build_cluster
from diffpy.deepstruc.debye import DebyeParameters, PairHistogram, PairVectors
from diffpy.deepstruc.fitting import (
    UISO_BOUNDS,
    ZOOM_BOUNDS,
    FitResult,
    fit_cluster,
    scale_and_rw,
)

R = np.arange(150, 3000) / 100.0


def _rw(g_obs, g_fit):
    return np.sqrt(np.sum((g_obs - g_fit) ** 2) / np.sum(g_obs**2))


# --- scale_and_rw -------------------------------------------------------


@pytest.mark.parametrize(
    "scale",
    [
        # C1: data 0.8 x the calculation, expect scale 0.8 and Rw 0
        0.8,
        # C2: data 25 x the calculation, expect scale 25 and Rw 0
        25.0,
        # C3: data inverted, expect scale -1.5 and Rw 0
        -1.5,
    ],
)
def test_scale_and_rw_scaled_copy(scale):
    g_calc = np.sin(R) * np.exp(-R / 10)
    fitted, rw = scale_and_rw(scale * g_calc, g_calc)
    assert fitted == pytest.approx(scale, rel=1e-12)
    assert rw == pytest.approx(0.0, abs=1e-12)


def test_scale_and_rw_known_value_with_orthogonal_residual():
    # g_obs = g_calc + e with e orthogonal to g_calc: scale 1 and
    # Rw = |e| / |g_obs|
    x = np.linspace(0.0, 2 * np.pi, 400, endpoint=False)
    g_calc, extra = np.sin(3 * x), 0.3 * np.cos(5 * x)
    g_obs = g_calc + extra
    scale, rw = scale_and_rw(g_obs, g_calc)
    assert scale == pytest.approx(1.0, abs=1e-12)
    assert rw == pytest.approx(
        np.linalg.norm(extra) / np.linalg.norm(g_obs), rel=1e-12
    )


@pytest.mark.parametrize(
    "g_calc",
    [
        # C1: calculation orthogonal to the data, expect scale 0 and Rw 1
        np.cos(np.linspace(0.0, 2 * np.pi, 400, endpoint=False)),
        # C2: calculation identically zero, expect scale 0 and Rw 1
        np.zeros(400),
    ],
)
def test_scale_and_rw_no_overlap(g_calc):
    g_obs = np.sin(np.linspace(0.0, 2 * np.pi, 400, endpoint=False))
    scale, rw = scale_and_rw(g_obs, g_calc)
    assert scale == pytest.approx(0.0, abs=1e-12)
    assert rw == pytest.approx(1.0, rel=1e-12)


def test_scale_and_rw_batch():
    rng = np.random.default_rng(0)
    g_obs = np.sin(R) * np.exp(-R / 10)
    batch = g_obs + rng.normal(0.0, 0.3, (5, R.size))
    batch[2] = 3.0 * g_obs
    scales, rws = scale_and_rw(g_obs, batch)
    assert scales.shape == (5,) and rws.shape == (5,)
    for k, g_calc in enumerate(batch):
        scale, rw = scale_and_rw(g_obs, g_calc)
        assert scales[k] == pytest.approx(scale, rel=1e-12)
        assert rws[k] == pytest.approx(rw, rel=1e-12)
    assert scales[2] == pytest.approx(1 / 3, rel=1e-12)
    assert rws[2] == pytest.approx(0.0, abs=1e-12)
    assert np.argmin(rws) == 2


# --- fit_cluster --------------------------------------------------------


def _data(xyz, zoom=1.02, uiso=0.006, scale=0.8, noise=0.0, seed=0):
    g = scale * PairHistogram.from_cluster(xyz).pdf(R, zoom=zoom, uiso=uiso)
    if noise:
        rng = np.random.default_rng(seed)
        g = g + noise * np.abs(g).max() * rng.normal(size=g.size)
    return g


@pytest.mark.parametrize(
    "cluster_type, size",
    [
        # C1: fcc block, expect zoom 1.02, Uiso 0.006, scale 0.8
        ("fcc", (2, 3, 3)),
        # C2: icosahedron, expect the same parameters
        ("icosahedral", (3,)),
        # C3: bcc block, expect the same parameters
        ("bcc", (4, 4, 4)),
        # C4: decahedron, expect the same parameters
        ("decahedral", (2, 2, 1)),
    ],
)
def test_fit_cluster_recovers_parameters(cluster_type, size):
    xyz = build_cluster(cluster_type, size, 2.77)
    g = _data(xyz)
    fit = fit_cluster(xyz, R, g)
    assert isinstance(fit, FitResult)
    assert fit.zoom == pytest.approx(1.02, abs=0.002)
    assert fit.uiso == pytest.approx(0.006, rel=0.2)
    assert fit.scale == pytest.approx(0.8, rel=0.02)
    assert fit.rw < 0.01
    # Rw at the start (zoom 1, default Uiso, best scale) is worse
    _, rw_start = scale_and_rw(g, PairHistogram.from_cluster(xyz).pdf(R))
    assert fit.rw <= rw_start
    # gcalc is the scaled best-fit curve that gives the reported Rw
    assert fit.gcalc.shape == R.shape
    assert _rw(g, fit.gcalc) == pytest.approx(fit.rw, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize(
    "noise, seed",
    [
        # C1: 1 % Gaussian noise, expect zoom within 0.002, Uiso within 20 %
        (0.01, 0),
        # C2: 3 % Gaussian noise, expect the same
        (0.03, 1),
    ],
)
def test_fit_cluster_with_noise(noise, seed):
    xyz = build_cluster("fcc", (2, 3, 3), 2.77)
    g = _data(xyz, noise=noise, seed=seed)
    fit = fit_cluster(xyz, R, g)
    assert fit.zoom == pytest.approx(1.02, abs=0.002)
    assert fit.uiso == pytest.approx(0.006, rel=0.2)
    assert fit.scale == pytest.approx(0.8, rel=0.05)
    # the residual is the noise, not a misfit
    noiseless = _data(xyz)
    assert fit.rw == pytest.approx(_rw(g, noiseless), rel=0.05)


@pytest.mark.parametrize(
    "kwargs",
    [
        # C1: start at zoom 1 without the coarse scan, expect recovery
        {"zoom": 1.0},
        # C2: start at Uiso 0.003 and zoom 1.01, expect recovery
        {"zoom": 1.01, "uiso": 0.003},
        # C3: start Uiso only (zoom from the scan), expect recovery
        {"uiso": 0.01},
    ],
)
def test_fit_cluster_start_values(kwargs):
    xyz = build_cluster("icosahedral", (3,), 2.77)
    g = _data(xyz)
    fit = fit_cluster(xyz, R, g, **kwargs)
    assert fit.zoom == pytest.approx(1.02, abs=0.002)
    assert fit.uiso == pytest.approx(0.006, rel=0.2)


def test_fit_cluster_accepts_pair_histogram():
    xyz = build_cluster("decahedral", (2, 2, 1), 2.77)
    g = _data(xyz)
    from_xyz = fit_cluster(xyz, R, g)
    from_histogram = fit_cluster(PairHistogram.from_cluster(xyz), R, g)
    assert from_histogram.zoom == pytest.approx(from_xyz.zoom, abs=1e-9)
    assert from_histogram.uiso == pytest.approx(from_xyz.uiso, rel=1e-6)
    assert from_histogram.rw == pytest.approx(from_xyz.rw, abs=1e-9)


def test_fit_cluster_uses_given_instrument_parameters():
    # data simulated with Qmax 18 are fitted well only with that Qmax
    xyz = build_cluster("fcc", (2, 3, 3), 2.77)
    params = DebyeParameters(qmax=18.0, qdamp=0.03)
    g = 0.8 * PairHistogram.from_cluster(xyz).pdf(
        R, params, zoom=1.02, uiso=0.006
    )
    matched = fit_cluster(xyz, R, g, params)
    assert matched.rw < 0.01
    assert matched.zoom == pytest.approx(1.02, abs=0.002)
    assert fit_cluster(xyz, R, g).rw > 5 * matched.rw


@pytest.mark.parametrize(
    "zoom, uiso",
    [
        # C1: data far below the zoom bounds, expect results within bounds
        (0.8, 0.006),
        # C2: data above the zoom bounds and huge Uiso, expect within bounds
        (1.2, 0.08),
    ],
)
def test_fit_cluster_stays_within_bounds(zoom, uiso):
    xyz = build_cluster("fcc", (2, 3, 3), 2.77)
    fit = fit_cluster(xyz, R, _data(xyz, zoom=zoom, uiso=uiso))
    assert ZOOM_BOUNDS[0] <= fit.zoom <= ZOOM_BOUNDS[1]
    assert UISO_BOUNDS[0] <= fit.uiso <= UISO_BOUNDS[1]
    assert np.isfinite(fit.rw) and 0.0 <= fit.rw <= 1.0


@pytest.mark.parametrize("start", [0.0, 1e-10, 0.04, 0.09])
def test_fit_cluster_refines_qdamp_from_any_start(start):
    # the slope of G in qdamp vanishes at 0: a refinement from there must
    # still find the qdamp of the data (it once stayed at 0 for good)
    xyz = build_cluster("fcc", (2, 3, 3), 2.77)
    truth = DebyeParameters(qmax=24.0, qdamp=0.045)
    g = PairHistogram.from_cluster(xyz).pdf(R, truth, uiso=0.004)
    params = DebyeParameters(qmax=24.0, qdamp=start)
    fit = fit_cluster(xyz, R, g, params, uiso=0.004, fit_qdamp=True)
    assert fit.qdamp == pytest.approx(0.045, abs=1e-3)
    assert fit.rw < 1e-3
    fixed = fit_cluster(xyz, R, g, params, uiso=0.004)
    assert fixed.qdamp == start


@pytest.mark.parametrize(
    "axis, size",
    [
        # C1: stretched 3 % along a direction of no symmetry
        ((1.0, 2.0, 0.5), 0.03),
        # C2: compressed 4 % along the cube axis
        ((0.0, 0.0, 1.0), -0.04),
        # C3: not strained, expect no strain
        ((1.0, 0.0, 0.0), 0.0),
    ],
)
def test_fit_cluster_refines_a_uniaxial_strain(axis, size):
    xyz = build_cluster("icosahedral", (3,), 2.77)
    n = np.array(axis) / np.linalg.norm(axis)
    g = _data(xyz + size * np.outer(xyz @ n, n))
    plain = fit_cluster(xyz, R, g)
    assert np.array_equal(plain.strain, np.zeros((3, 3)))
    fit = fit_cluster(xyz, R, g, fit_strain=True)
    assert fit.rw < 1e-3
    # x -> 1.02 (1 + size n n) x is zoom (1 + e) with e traceless, up to
    # a symmetry of the icosahedron, which leaves the PDF as it is
    expected = size * (np.outer(n, n) - np.eye(3) / 3) / (1 + size / 3)
    eigenvalues = np.linalg.eigvalsh(expected)
    assert np.allclose(np.linalg.eigvalsh(fit.strain), eigenvalues, atol=1e-3)
    assert np.allclose(fit.strain, fit.strain.T)
    assert np.trace(fit.strain) == pytest.approx(0.0, abs=1e-12)
    assert fit.zoom == pytest.approx(1.02 * (1 + size / 3), abs=2e-3)
    if size:
        assert plain.rw > 10 * fit.rw
    # from a given start, without the scan; from PairVectors alike
    again = fit_cluster(
        PairVectors.from_cluster(xyz), R, g, fit_strain=True, strain=expected
    )
    assert np.allclose(again.strain, expected, atol=1e-3)
    assert again.rw < 1e-3


def test_fit_cluster_needs_coordinates_to_fit_a_strain():
    xyz = build_cluster("fcc", (2, 3, 3), 2.77)
    with pytest.raises(TypeError, match="to fit a strain"):
        fit_cluster(
            PairHistogram.from_cluster(xyz), R, _data(xyz), fit_strain=True
        )


def _blas_threads() -> set[int]:
    from threadpoolctl import threadpool_info

    return {
        i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"
    }


def test_worker_pools_keep_blas_to_one_thread_while_any_is_open():
    import threading

    from diffpy.deepstruc.fitting import worker_pool

    np.ones(2) @ np.ones(2)  # numpy's BLAS is loaded
    before = _blas_threads()
    # a pool of the main thread first, as `propose` opens one
    with worker_pool():
        assert _blas_threads() == {1}
    assert _blas_threads() == before
    # pools from two threads, the first closed while the second runs
    opened, first_closed, inside = threading.Event(), threading.Event(), []

    def first():
        with worker_pool():
            opened.set()
            inside.append(_blas_threads())
        first_closed.set()

    def second():
        opened.wait(60)
        with worker_pool() as pool:
            first_closed.wait(60)
            inside.append(_blas_threads())
            # pools opened in a pool's threads
            nested = lambda _: _with_pool(worker_pool)  # noqa: E731
            inside.extend(pool.map(nested, range(3)))

    threads = [threading.Thread(target=f) for f in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(inside) == 5
    assert all(seen == {1} for seen in inside), inside
    # on one core BLAS has one thread anyway
    assert _blas_threads() == before


def _with_pool(worker_pool) -> set[int]:
    with worker_pool():
        return _blas_threads()
