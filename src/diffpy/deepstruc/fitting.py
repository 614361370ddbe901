"""Quick fit of a cluster's PDF to data: scale, zoom and Uiso.

The scale enters G linearly, so for every (zoom, Uiso) it is solved in
closed form (variable projection); the two non-linear parameters are
started from the best point of a coarse zoom scan and refined with
:func:`scipy.optimize.least_squares`.  The agreement is

    Rw = sqrt( sum (G_obs - scale * G_calc)^2 / sum G_obs^2 ).
"""

import dataclasses
import os
from dataclasses import dataclass

import numpy as np

from diffpy.deepstruc.debye import DebyeParameters, PairHistogram

#: r range (Å) of the quick fit.
FIT_RANGE = (1.5, 30.0)
#: Number of candidates fully fitted beyond the number asked for.
EXTRA_FITS = 2
#: Zoom (isotropic expansion) and Uiso (Å²) bounds of the quick fit.
ZOOM_BOUNDS = (0.9, 1.1)
UISO_BOUNDS = (1e-4, 0.05)
#: Coarse zoom scan that seeds the refinement.
ZOOM_SCAN = np.linspace(0.97, 1.03, 7)
#: qdamp bounds (Å⁻¹) when it is fitted too.
QDAMP_BOUNDS = (0.0, 0.1)
#: qdamp (Å⁻¹) that sets the unit of the variable refined for it.
QDAMP_UNIT = 0.04


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
    """

    rw: float
    scale: float
    zoom: float
    uiso: float
    gcalc: np.ndarray
    qdamp: float


def scale_and_rw(g_obs: np.ndarray, g_calc: np.ndarray):
    """Least-squares scale of ``g_calc`` to ``g_obs`` and the resulting Rw.

    Works on the last axis, so ``g_calc`` may hold a batch of curves.
    """
    norm = np.sum(g_calc * g_calc, axis=-1)
    scale = np.sum(g_obs * g_calc, axis=-1) / np.where(norm > 0, norm, 1.0)
    residual = g_obs - scale[..., None] * g_calc
    rw = np.sqrt(np.sum(residual**2, axis=-1) / np.sum(g_obs**2))
    return scale, rw


def fit_cluster(
    cluster,
    r: np.ndarray,
    g: np.ndarray,
    params: DebyeParameters | None = None,
    *,
    zoom: float | None = None,
    uiso: float | None = None,
    fit_qdamp: bool = False,
) -> FitResult:
    """Fit scale, zoom and Uiso of a cluster's Debye PDF to data.

    Parameters
    ----------
    cluster : array_like or PairHistogram
        ``(n_atoms, 3)`` coordinates in Å (or a prepared
        :class:`~diffpy.deepstruc.debye.PairHistogram`).
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

    Returns
    -------
    FitResult
    """
    from scipy.optimize import least_squares

    params = params or DebyeParameters()
    histogram = (
        cluster
        if isinstance(cluster, PairHistogram)
        else PairHistogram.from_cluster(cluster)
    )
    r = np.asarray(r, float)
    g = np.asarray(g, float)
    uiso0 = params.uiso if uiso is None else uiso

    def calc(x):
        used = params
        if fit_qdamp:
            used = dataclasses.replace(params, qdamp=_qdamp_value(x[2]))
        return histogram.pdf(r, used, zoom=x[0], uiso=x[1])

    if zoom is None:
        start = (_qdamp_variable(params.qdamp),) if fit_qdamp else ()
        scan = np.array([calc((z, uiso0, *start)) for z in ZOOM_SCAN])
        zoom = float(ZOOM_SCAN[np.argmin(scale_and_rw(g, scan)[1])])

    def residual(x):
        g_calc = calc(x)
        scale, _ = scale_and_rw(g, g_calc)
        return g - scale * g_calc

    bounds = [ZOOM_BOUNDS, UISO_BOUNDS]
    x0 = [zoom, uiso0]
    x_scale, diff_step = [0.01, 0.002], [1e-4, 1e-3]
    if fit_qdamp:
        bounds.append(_qdamp_variable(QDAMP_BOUNDS))
        x0.append(_qdamp_variable(params.qdamp))
        x_scale.append(0.5)
        diff_step.append(1e-3)
    bounds = np.transpose(bounds)
    result = least_squares(
        residual,
        np.clip(x0, *bounds),
        bounds=bounds,
        x_scale=x_scale,
        diff_step=diff_step,
        xtol=1e-6,
        max_nfev=40,
    )
    g_calc = calc(result.x)
    scale, rw = scale_and_rw(g, g_calc)
    return FitResult(
        rw=float(rw),
        scale=float(scale),
        zoom=float(result.x[0]),
        uiso=float(result.x[1]),
        gcalc=scale * g_calc,
        qdamp=_qdamp_value(result.x[2]) if fit_qdamp else params.qdamp,
    )
