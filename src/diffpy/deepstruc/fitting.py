"""Quick fit of a cluster's PDF to data: scale, zoom and Uiso.

The scale enters G linearly, so for every (zoom, Uiso) it is solved in
closed form (variable projection); the two non-linear parameters are
started from the best point of a coarse zoom scan and refined with
:func:`scipy.optimize.least_squares`, with the derivatives of G in Uiso
(:meth:`~diffpy.deepstruc.debye.PairHistogram.pdf_and_slope`) and qdamp
in closed form, those in the zoom and the strain by forward
differences.  The agreement is

    Rw = sqrt( sum (G_obs - scale * G_calc)^2 / sum G_obs^2 ).

Optionally qdamp and a homogeneous strain are refined too.  The strain
is the traceless symmetric tensor e of the deformation
``x -> zoom (1 + e) x`` (the isotropic part is the zoom).  The PDF of a
symmetric cluster changes only to second order in e, so a refinement
from e = 0 would not move: the strain is started from the best of a
scan of uniaxial strains along the cubic axes, face and body diagonals
of the cluster's frame.
"""

import dataclasses
import math
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from diffpy.deepstruc.debye import (
    DebyeParameters,
    PairHistogram,
    PairVectors,
    simulate_pdfs,
)

#: r range (Å) of the quick fit.
FIT_RANGE = (1.5, 30.0)
#: Fits whose Rw differ by less than this are the same fit (the
#: precision of the fits and of the binned pair distances): the data
#: cannot tell their structures apart.
EQUAL_RW = 1e-5
#: Number of candidates fully fitted beyond the number asked for.
EXTRA_FITS = 2
#: Zoom (isotropic expansion) and Uiso (Å²) bounds of the quick fit.
ZOOM_BOUNDS = (0.9, 1.1)
UISO_BOUNDS = (1e-4, 0.05)
#: Coarse zoom scan that seeds the refinement.
ZOOM_SCAN = np.linspace(0.97, 1.03, 7)
#: Relative step of the forward differences of the zoom and the strain.
FORWARD_STEP = 1e-4
#: qdamp bounds (Å⁻¹) when it is fitted too.
QDAMP_BOUNDS = (0.0, 0.1)
#: qdamp (Å⁻¹) that sets the unit of the variable refined for it.
QDAMP_UNIT = 0.04
#: Parameters of a strain (a traceless symmetric tensor), for the
#: information criterion (`bic_weights`).
STRAIN_PARAMETERS = 5
#: Bound of each refined component of the traceless strain.
STRAIN_BOUND = 0.1
#: Uniaxial strains scanned along each direction of STRAIN_AXES.
STRAIN_SCAN = (-0.04, -0.02, 0.02, 0.04)
#: The directions <100>, <110> and <111> of the scanned uniaxial strains.
STRAIN_AXES = (
    (1, 0, 0),
    (0, 1, 0),
    (0, 0, 1),
    (1, 1, 0),
    (1, -1, 0),
    (1, 0, 1),
    (1, 0, -1),
    (0, 1, 1),
    (0, 1, -1),
    (1, 1, 1),
    (1, 1, -1),
    (1, -1, 1),
    (-1, 1, 1),
)


def _qdamp_variable(qdamp):
    """The variable that stands for qdamp in the refinement.

    G depends on qdamp through exp(-(qdamp r)² / 2), whose slope in
    qdamp vanishes at qdamp = 0, where a refinement in qdamp itself would
    stop for good; its slope in qdamp² does not.  The offset of 1 keeps
    the relative finite-difference steps of
    :func:`scipy.optimize.least_squares` finite there.
    """
    return 1.0 + np.square(np.divide(qdamp, QDAMP_UNIT))


def _qdamp_value(variable: float) -> float:
    """qdamp (Å⁻¹) of a value of `_qdamp_variable`."""
    return QDAMP_UNIT * float(np.sqrt(max(variable - 1.0, 0.0)))


def _strain(components) -> np.ndarray:
    """The traceless symmetric tensor of five components."""
    xx, yy, xy, xz, yz = components
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, -xx - yy]])


def _components(strain: np.ndarray) -> list[float]:
    """The five components of a traceless symmetric tensor (`_strain`)."""
    strain = np.asarray(strain, dtype=float)
    strain = (strain + strain.T) / 2
    strain = strain - np.trace(strain) / 3 * np.eye(3)
    return [
        strain[0, 0],
        strain[1, 1],
        strain[0, 1],
        strain[0, 2],
        strain[1, 2],
    ]


def _uniaxial_scan() -> list[np.ndarray]:
    """Traceless parts of the uniaxial strains that seed a strain fit."""
    tensors = []
    for axis in STRAIN_AXES:
        n = np.array(axis, dtype=float) / np.linalg.norm(axis)
        for size in STRAIN_SCAN:
            tensors.append(size * (np.outer(n, n) - np.eye(3) / 3))
    return tensors


def worker_threads() -> int:
    """The number of threads that this process should compute with.

    ``OMP_NUM_THREADS`` when it is set, as Dask sets it to 1 in its worker
    processes so that N workers share N cores without oversubscription;
    else the CPUs this process may use.  The fits run in a thread pool of
    this size, and the ONNX sessions use as many threads.

    Returns
    -------
    int
        At least 1.
    """
    value = os.environ.get("OMP_NUM_THREADS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _OneBlasThread:
    """Keeps BLAS to one thread while any worker pool runs.

    Each worker of a pool calls BLAS (the matrix products of the fits
    and of the site searches); with BLAS's own threads on top, the
    pool's threads fight for the cores (on 2 cores a search took 1.4
    times as long).  Pools may nest and run in several threads: the
    first to open sets the limit, the last to close restores BLAS,
    whichever threads they are.  threadpoolctl (3.8 on) lets only one
    thread at a time set OpenBLAS's threads and ignores the others, so
    each change is made with no thread in control, and leaves none.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._open = 0
        self._limits = None

    @staticmethod
    def _release_control() -> None:
        import threadpoolctl

        controller = getattr(threadpoolctl, "OpenBLASController", None)
        if hasattr(controller, "clear_controlling_thread"):
            controller.clear_controlling_thread(force=True)

    def __enter__(self):
        # SciPy's BLAS is a library of its own: load it to limit it too
        import scipy.linalg  # noqa: F401
        from threadpoolctl import threadpool_limits

        with self._lock:
            if self._open == 0:
                self._release_control()
                self._limits = threadpool_limits(limits=1, user_api="blas")
                self._release_control()
            self._open += 1

    def __exit__(self, *exc):
        with self._lock:
            self._open -= 1
            if self._open == 0:
                self._release_control()
                self._limits.restore_original_limits()
                self._release_control()
                self._limits = None


_ONE_BLAS_THREAD = _OneBlasThread()


@contextmanager
def worker_pool() -> Iterator[ThreadPoolExecutor]:
    """A pool of `worker_threads` threads, BLAS in one thread meanwhile.

    Yields
    ------
    concurrent.futures.ThreadPoolExecutor
        The pool; numpy releases the GIL in the heavy parts of the fits
        and searches that run in it.
    """
    with _ONE_BLAS_THREAD, ThreadPoolExecutor(worker_threads()) as pool:
        yield pool


@dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`fit_cluster`.

    Attributes
    ----------
    rw : float
        Weighted residual of the best fit.
    scale, zoom, uiso : float
        Refined scale factor, isotropic expansion and Uiso (Å²).
    gcalc : numpy.ndarray
        ``scale * G_calc`` on the fitted r grid.
    qdamp : float
        The qdamp of the fit (Å⁻¹): refined with ``fit_qdamp``, else
        that of the parameters.
    strain : numpy.ndarray
        The refined traceless symmetric strain e (3x3) with
        ``fit_strain``, else zeros.
    """

    rw: float
    scale: float
    zoom: float
    uiso: float
    gcalc: np.ndarray
    qdamp: float
    strain: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros((3, 3))
    )

    @property
    def deformation(self) -> np.ndarray:
        """The fitted map ``x -> zoom (1 + strain) x`` as a 3x3 matrix."""
        return self.zoom * (np.eye(3) + self.strain)


def scale_and_rw(g_obs: np.ndarray, g_calc: np.ndarray):
    """Least-squares scale of ``g_calc`` to ``g_obs`` and the resulting Rw.

    Works on the last axis, so ``g_calc`` may hold a batch of curves.
    """
    norm = np.sum(g_calc * g_calc, axis=-1)
    scale = np.sum(g_obs * g_calc, axis=-1) / np.where(norm > 0, norm, 1.0)
    residual = g_obs - scale[..., None] * g_calc
    rw = np.sqrt(np.sum(residual**2, axis=-1) / np.sum(g_obs**2))
    return scale, rw


def batch_rw(clusters, r, g, params, uiso=None) -> np.ndarray:
    """Rw of each of many clusters with its scale fitted, at one zoom.

    Parameters
    ----------
    clusters : sequence of numpy.ndarray
        ``(n_atoms, 3)`` coordinates in Å.
    r, g : numpy.ndarray
        The data.
    params : DebyeParameters
        Instrument parameters.
    uiso : float, optional
        Uiso in Å² of all the clusters; ``params.uiso`` when None.

    Returns
    -------
    numpy.ndarray
        ``(len(clusters),)`` Rw values
        (:func:`~diffpy.deepstruc.debye.simulate_pdfs`, `scale_and_rw`).
    """
    _, g_calc = simulate_pdfs(clusters, r, params=params, uisos=uiso)
    return scale_and_rw(g, g_calc)[1]


def effective_points(r: np.ndarray, qmax: float) -> float:
    """Independent values of a PDF over r: ``(r_max - r_min) Qmax / pi``.

    The Nyquist-Shannon count of a G(r) band-limited by Qmax (at least
    2).  ``weight Rw^2`` of `bic_weights` with ``per_point=False`` is
    about this large when the misfit is white noise only.
    """
    return max((r[-1] - r[0]) * qmax / math.pi, 2.0)


def bic_weights(
    r: np.ndarray,
    g: np.ndarray,
    qmax: float,
    noise: float,
    *,
    per_point: bool = True,
) -> tuple[float, float]:
    """The two weights of the Bayesian information criterion of a fit.

    ``BIC = weight Rw^2 + penalty k`` for ``k`` free parameters (or
    changed sites), with ``ln(n_eff)`` the cost of each parameter
    (``n_eff = (r_max - r_min) Qmax / pi`` independent values,
    `effective_points`).  ``Rw^2 sum(G^2) / sigma^2`` is the chi-square
    of the ``n`` data points for white noise of standard deviation
    ``sigma`` per point, the noise that
    :func:`~diffpy.deepstruc.confidence.white_noise` measures: the
    weight of the ranking of fitted candidates.

    Parameters
    ----------
    r, g : numpy.ndarray
        The fitted data.
    qmax : float
        Qmax of the data in Å⁻¹.
    noise : float
        Standard deviation of the noise of G per point; a floor of 1e-6
        of the largest ``|G|`` stands in for noise-free data.
    per_point : bool
        Count the chi-square over all ``n`` points (the default).  False
        counts it over the ``n_eff`` independent values only, ``n_eff /
        n`` of it: right for noise correlated over ``pi / Qmax`` (noise
        that came with F(Q)), and the site search's stricter criterion
        (:func:`~diffpy.deepstruc.sitesearch.site_search`), under which
        it was tuned and evaluated.

    Returns
    -------
    weight, penalty : float
    """
    n_eff = effective_points(r, qmax)
    sigma2 = max(noise, 1e-6 * float(np.abs(g).max())) ** 2
    weight = float(g @ g) / sigma2
    if not per_point:
        weight *= n_eff / len(g)
    return weight, math.log(n_eff)


def fit_cluster(
    cluster,
    r: np.ndarray,
    g: np.ndarray,
    params: DebyeParameters | None = None,
    *,
    zoom: float | None = None,
    uiso: float | None = None,
    fit_qdamp: bool = False,
    fit_strain: bool = False,
    strain=None,
) -> FitResult:
    """Fit scale, zoom and Uiso of a cluster's Debye PDF to data.

    Parameters
    ----------
    cluster : array_like, PairHistogram or PairVectors
        ``(n_atoms, 3)`` coordinates in Å (or a prepared
        :class:`~diffpy.deepstruc.debye.PairHistogram`, or with
        ``fit_strain`` :class:`~diffpy.deepstruc.debye.PairVectors`).
    r, g : numpy.ndarray
        The data to fit (r in Å).
    params : DebyeParameters, optional
        Instrument parameters (qmax, qdamp, ...); the defaults of
        :class:`~diffpy.deepstruc.debye.DebyeParameters` when omitted.
    zoom, uiso : float, optional
        Starting values; without ``zoom`` a coarse scan picks the start,
        without ``uiso`` the start is ``params.uiso``.
    fit_qdamp : bool
        Refine qdamp too (within :data:`QDAMP_BOUNDS`, from
        ``params.qdamp``), for data whose resolution damping is unknown.
    fit_strain : bool
        Refine a homogeneous traceless strain too (each component within
        :data:`STRAIN_BOUND`), for particles strained unevenly.
    strain : array_like, optional
        Starting strain (3x3, its traceless symmetric part is used) with
        ``fit_strain``; without it, the best of a scan of uniaxial strains
        (:data:`STRAIN_SCAN` along :data:`STRAIN_AXES`) and none.

    Returns
    -------
    FitResult
    """
    from scipy.optimize import least_squares

    params = params or DebyeParameters()
    vectors = histogram = None
    if fit_strain:
        if isinstance(cluster, PairHistogram):
            raise TypeError(
                "Please give coordinates or PairVectors to fit a strain, "
                "not a PairHistogram."
            )
        vectors = cluster
        if not isinstance(cluster, PairVectors):
            vectors = PairVectors.from_cluster(cluster)
    elif isinstance(cluster, PairVectors):
        histogram = cluster.histogram()
    elif isinstance(cluster, PairHistogram):
        histogram = cluster
    else:
        histogram = PairHistogram.from_cluster(cluster)
    r = np.asarray(r, float)
    g = np.asarray(g, float)
    uiso0 = params.uiso if uiso is None else uiso
    n_base = 3 if fit_qdamp else 2

    def calc(x, slope=False):
        used = params
        if fit_qdamp:
            used = dataclasses.replace(params, qdamp=_qdamp_value(x[2]))
        pairs = histogram
        if fit_strain:
            pairs = vectors.histogram(np.eye(3) + _strain(x[n_base:]))
        if slope:
            return pairs.pdf_and_slope(r, used, zoom=x[0], uiso=x[1])
        return pairs.pdf(r, used, zoom=x[0], uiso=x[1])

    qdamp0 = [_qdamp_variable(params.qdamp)] if fit_qdamp else []
    if zoom is None:
        start = [0.0] * 5 if fit_strain else []
        scan = np.array([calc((z, uiso0, *qdamp0, *start)) for z in ZOOM_SCAN])
        zoom = float(ZOOM_SCAN[np.argmin(scale_and_rw(g, scan)[1])])
    x0 = [zoom, uiso0, *qdamp0]
    if fit_strain and strain is None:
        tensors = [np.zeros((3, 3))] + _uniaxial_scan()
        scan = np.array([calc(x0 + _components(e)) for e in tensors])
        strain = tensors[int(np.argmin(scale_and_rw(g, scan)[1]))]
    if fit_strain:
        x0 += _components(strain)

    bounds = [ZOOM_BOUNDS, UISO_BOUNDS]
    x_scale = [0.01, 0.002]
    if fit_qdamp:
        bounds.append(_qdamp_variable(QDAMP_BOUNDS))
        x_scale.append(0.5)
    if fit_strain:
        bounds += [(-STRAIN_BOUND, STRAIN_BOUND)] * 5
        x_scale += [0.01] * 5
    bounds = np.transpose(bounds)
    # G and its slope in Uiso at the last point, which least_squares
    # asks for as the residual and then as the Jacobian
    last = {}

    def curves(x):
        key = x.tobytes()
        if last.get("key") != key:
            last.update(key=key, curves=calc(x, slope=True))
        return last["curves"]

    def residual(x):
        g_calc = curves(x)[0]
        scale, _ = scale_and_rw(g, g_calc)
        return g - scale * g_calc

    def jacobian(x):
        g_calc, slope = curves(x)
        # dG/dx: Uiso and qdamp in closed form (qdamp's variable scales
        # G by exp(-QDAMP_UNIT^2 (x - 1) r^2 / 2)), the zoom and the
        # strain by forward differences
        columns = np.empty((len(x), len(g)))
        columns[1] = slope
        if fit_qdamp:
            columns[2] = -0.5 * QDAMP_UNIT**2 * r**2 * g_calc
        for k in [0] + list(range(n_base, len(x))):
            step = FORWARD_STEP * max(1.0, abs(x[k]))
            if x[k] + step > bounds[1][k]:
                step = -step
            shifted = x.copy()
            shifted[k] += step
            columns[k] = (calc(shifted) - g_calc) / step
        # the residual g - scale G with the scale fitted at each x
        norm = g_calc @ g_calc or 1.0  # G = 0 for a lone atom
        scale = (g @ g_calc) / norm
        d_scale = (columns @ g - 2 * scale * (columns @ g_calc)) / norm
        return -(scale * columns + np.outer(d_scale, g_calc)).T

    result = least_squares(
        residual,
        np.clip(x0, *bounds),
        jac=jacobian,
        bounds=bounds,
        x_scale=x_scale,
        xtol=1e-6,
        max_nfev=40,
    )
    g_calc = curves(result.x)[0]  # usually the last point, cached
    scale, rw = scale_and_rw(g, g_calc)
    return FitResult(
        rw=float(rw),
        scale=float(scale),
        zoom=float(result.x[0]),
        uiso=float(result.x[1]),
        gcalc=scale * g_calc,
        qdamp=_qdamp_value(result.x[2]) if fit_qdamp else params.qdamp,
        strain=_strain(result.x[n_base:]) if fit_strain else np.zeros((3, 3)),
    )
