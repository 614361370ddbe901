"""Debye-equation PDF simulator for finite one-element clusters.

The functions here reproduce ``diffpy.srreal``'s ``DebyePDFCalculator``
(x-ray, ``jeong`` peak width with ``delta1 = qbroad = 0``, one isotropic
``Uiso`` for every atom) without needing srreal:

1. every pair at distance ``d`` is damped with
   ``sigma^2 = 2 Uiso (1 - delta2 / d^2)``, clipped at zero;
2. ``F(Q) = (1/N) sum_{i != j} exp(-sigma^2 Q^2 / 2) sin(Q d) / d`` on
   ``Q_k = k qstep`` with ``qstep = pi / extendedrmax``, zero for
   ``Q_k`` below ``qmin``;
3. ``G`` is the sine transform of ``F`` on a fine power-of-two grid,
   linearly interpolated to the output ``r`` and multiplied by
   ``exp(-(qdamp r)^2 / 2)``.

For one element the scattering factors cancel, so the result does not
depend on the element.  Two ways of summing the pairs are used: exact
sums over the distinct distances of a cluster (crystalline clusters have
few) and, for blurred clusters or batches, a spline-prefiltered cubic
B-spline histogram of the distances on nodes ``_NODE_STEP`` apart, which
keeps the relative error of ``G`` near 1e-5.  The prefiltered Debye
kernel of the nodes is computed once per Q-grid, Uiso and delta2 and
cached (a few ms), as is the interpolation of each output r grid, so a
G(r) costs one matrix-vector product and one FFT beyond the pair
distances.  Histograms of more than ``_MANY_PAIRS`` distances are summed
from counts and mean offsets in ``_FINE`` sub-intervals of each node
interval, which adds an Rw of about 1e-6.  The exact path matches
srreal to rounding error.  srreal's ``debyeprecision`` cut of tiny sine
terms is not applied; it only matters for huge Uiso.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "DebyeParameters",
    "IncrementalPDF",
    "PairHistogram",
    "PairVectors",
    "cluster_xyz",
    "pair_distances",
    "r_grid",
    "simulate_pdf",
    "simulate_pdfs",
]

# srreal ignores pairs closer than this (self pairs) and uses it as the
# tolerance when counting grid steps.
_SQRT_EPS = math.sqrt(np.finfo(float).eps)
# srreal extends the r-range by the reach of the widest Gaussian peak at
# relative precision 3.33e-6; this is that reach per sqrt(2 Uiso).
_TAIL_REACH = math.sqrt(-math.log(3.33e-6) / (4 * math.log(2))) * math.sqrt(
    8 * math.log(2)
)
_MAX_EXTENSION = 10.0
# distances closer than this are merged into one (mean distance, count)
_MERGE_TOL = 1e-4
# pair vectors that agree when rounded to this (Å) are merged into one
_VECTOR_TOL = 1e-3
# spacing of the cubic B-spline histogram nodes and the number of extra
# nodes on each side that absorb the prefilter's boundary error
_NODE_STEP = 0.02
_NODE_MARGIN = 12
# above this many distances, B-spline histograms are summed from counts
# and mean offsets in _FINE sub-intervals of each node interval
_MANY_PAIRS = 1 << 17
_FINE = 32
# distances binned at a time
_BLOCK = 1 << 18
# pairs per block of clusters in simulate_pdfs
_CHUNK_PAIRS = 1 << 17


@dataclass(frozen=True)
class DebyeParameters:
    """Settings of the Debye PDF calculation.

    The defaults are the settings of the reference and training data.

    Parameters
    ----------
    qmin, qmax : float
        Q-range of ``F(Q)`` in 1/Å.
    qdamp : float
        Gaussian damping from the Q-resolution in 1/Å.
    delta2 : float
        Coefficient of the ``1/r^2`` peak sharpening in Å^2.
    biso : float
        Isotropic displacement parameter of every atom in Å^2.
    rmin, rmax, rstep : float
        Output r-grid in Å; ``rmax`` is excluded, see `r_grid`.
    """

    qmin: float = 0.7
    qmax: float = 25.0
    qdamp: float = 0.04
    delta2: float = 2.0
    biso: float = 0.3
    rmin: float = 0.0
    rmax: float = 30.0
    rstep: float = 0.01

    def __post_init__(self):
        for name, value in vars(self).items():
            if not math.isfinite(value):
                raise ValueError(f"Please give a finite {name}, not {value}.")
        if self.qmin < 0 or self.qmax <= self.qmin:
            raise ValueError(
                f"Please give 0 <= qmin < qmax, not qmin={self.qmin}, "
                f"qmax={self.qmax}."
            )
        for name in ("qdamp", "delta2", "biso", "rmin"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"Please give a non-negative {name}, "
                    f"not {getattr(self, name)}."
                )
        if self.rstep <= 0 or self.rmax <= self.rmin:
            raise ValueError(
                f"Please give rstep > 0 and rmax > rmin, not rmin="
                f"{self.rmin}, rmax={self.rmax}, rstep={self.rstep}."
            )

    @property
    def uiso(self) -> float:
        """Isotropic mean-square displacement ``biso / (8 pi^2)`` in Å^2."""
        return self.biso / (8 * math.pi**2)


def _steps(x: float, step: float) -> int:
    """Return ``ceil(x / step)``, rounded down when ``x`` is on the grid."""
    n = math.ceil(x / step)
    return n - 1 if abs(x - (n - 1) * step) <= _SQRT_EPS else n


def r_grid(rmin: float, rmax: float, rstep: float) -> np.ndarray:
    """Return srreal's output grid ``r_k = k rstep`` for rmin <= r < rmax.

    Parameters
    ----------
    rmin, rmax, rstep : float
        Grid bounds and spacing in Å.  ``rmin`` is included and ``rmax``
        excluded, both up to a tolerance of about 1.5e-8 Å.

    Returns
    -------
    numpy.ndarray
        The grid, e.g. 3000 points 0, 0.01, ..., 29.99 for the defaults.
    """
    return np.arange(_steps(rmin, rstep), _steps(rmax, rstep)) * rstep


def cluster_xyz(cluster) -> np.ndarray:
    """Return the Cartesian coordinates of a cluster as an (N, 3) array.

    Parameters
    ----------
    cluster : array_like, ase.Atoms or diffpy.structure.Structure
        Coordinates in Å as an (N, 3) array, or a structure object whose
        Cartesian positions are used.

    Returns
    -------
    numpy.ndarray
        Float array of shape (N, 3).

    Raises
    ------
    ValueError
        For a wrong shape, no atoms or non-finite coordinates.
    """
    if hasattr(cluster, "get_positions"):
        cluster = cluster.get_positions()
    elif hasattr(cluster, "xyz_cartn"):
        cluster = cluster.xyz_cartn
    xyz = np.asarray(cluster, dtype=float)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or len(xyz) < 1:
        raise ValueError(
            "Please give cluster coordinates as an (N, 3) array with N >= 1,"
            f" not an array of shape {xyz.shape}."
        )
    if not np.isfinite(xyz).all():
        raise ValueError("Please give finite coordinates (found NaN or inf).")
    return xyz


def pair_distances(xyz) -> np.ndarray:
    """Return the distances of all atom pairs i < j of a cluster in Å.

    Parameters
    ----------
    xyz : array_like, ase.Atoms or diffpy.structure.Structure
        The cluster, as accepted by `cluster_xyz`.

    Returns
    -------
    numpy.ndarray
        The N (N - 1) / 2 pair distances.
    """
    from scipy.spatial.distance import pdist

    return pdist(cluster_xyz(xyz))


@dataclass(frozen=True)
class _FourierGrid:
    """Q-grid, sine-transform size and pair range of one calculation."""

    qstep: float
    nqmin: int
    nq: int
    n2: int
    dlo: float
    dhi: float

    @property
    def q(self) -> np.ndarray:
        """The Q values with non-zero F, ``k qstep`` for nqmin <= k < nq."""
        return np.arange(self.nqmin, self.nq) * self.qstep


def _fourier_grid(
    params: DebyeParameters,
    uiso: float,
    rmin: float,
    rmax: float,
    extendedrmax: float | None = None,
) -> _FourierGrid:
    """Return srreal's Q-grid for an output r-range [rmin, rmax).

    ``extendedrmax`` replaces the upper end of the pair range, which a
    fresh calculator derives from rmax, Qmax and Uiso.
    """
    ext = min(
        _MAX_EXTENSION,
        12 * math.pi / params.qmax + _TAIL_REACH * math.sqrt(2 * uiso),
    )
    dlo = max(0, _steps(rmin - ext, params.rstep)) * params.rstep
    if extendedrmax is None:
        dhi = math.ceil((rmax + ext) / params.rstep) * params.rstep
    else:
        dhi = extendedrmax
    if params.qmax * dhi / math.pi > 4:
        qstep = math.pi / dhi
    else:
        qstep = params.qmax / 4
    nq = math.ceil(params.qmax / qstep)
    nfine = max(nq, math.ceil(math.pi / params.rstep / qstep))
    return _FourierGrid(
        qstep=qstep,
        nqmin=min(_steps(params.qmin, qstep), nq),
        nq=nq,
        n2=1 << (nfine - 1).bit_length(),
        dlo=dlo,
        dhi=dhi,
    )


def _output_grid(r, params: DebyeParameters):
    """Return the r array and the rmin, rmax that srreal would be given.

    For custom r, rmin is ``min(r)`` rounded down to a multiple of
    ``params.rstep`` and rmax is ``max(r) + params.rstep``, so that
    srreal's grid ``k rstep`` brackets every r.
    """
    if r is None:
        r = r_grid(params.rmin, params.rmax, params.rstep)
        return r, params.rmin, params.rmax
    r = np.asarray(r, dtype=float)
    if r.ndim != 1 or r.size == 0 or not np.isfinite(r).all() or r.min() < 0:
        raise ValueError("Please give r as a 1-D array of finite r >= 0.")
    rmin = math.floor((r.min() + _SQRT_EPS) / params.rstep) * params.rstep
    return r, rmin, r.max() + params.rstep


def _sin_outer(d: np.ndarray, grid: _FourierGrid) -> np.ndarray:
    """Return sin(q d) for all d and all q in grid.q.

    Writing ``q = (nqmin + n j + i) qstep`` with ``0 <= i, j < n`` and
    using ``sin(a + b) = sin a cos b + cos a sin b`` needs only 4 n sines
    and cosines per distance instead of n^2 (numpy's sine is slow); the
    sums are n x 2 by 2 x n matrix products, one per distance.
    """
    nk = grid.nq - grid.nqmin
    n = math.isqrt(max(nk - 1, 0)) + 1
    step = d[:, None] * grid.qstep
    coarse = step * (grid.nqmin + n * np.arange(n))
    fine = step * np.arange(n)
    left = np.stack([np.sin(coarse), np.cos(coarse)], axis=-1)
    right = np.stack([np.cos(fine), np.sin(fine)], axis=1)
    return (left @ right).reshape(d.size, n * n)[:, :nk]


def _kernel(d: np.ndarray, grid: _FourierGrid, uiso: float, delta2: float):
    """Return the (len(d), n_q) Debye terms exp(-s2 q^2/2) sin(q d)/d."""
    q = grid.q
    msd = uiso * _msd_factor(d, delta2)
    k = np.exp(np.multiply.outer(-msd, q * q))
    k /= d[:, None]
    k *= _sin_outer(d, grid)
    return k


def _node_range(d: np.ndarray) -> tuple[int, int]:
    """Return the B-spline node indices [lo, hi) that cover distances d."""
    x = d / _NODE_STEP - 0.5
    lo = int(np.floor(x.min())) - 1 - _NODE_MARGIN
    return lo, int(np.floor(x.max())) + 3 + _NODE_MARGIN


def _spread(d, weights, rows, n_rows: int, lo: int, hi: int) -> np.ndarray:
    """Return (n_rows, hi - lo) prefiltered B-spline histograms of d.

    Node ``b`` sits at ``(b + 1/2) _NODE_STEP``, never at zero.  Each
    distance spreads its weight over the four nearest nodes with cubic
    B-spline weights (`_bspline_counts`); the histogram is then spline
    prefiltered, so that its product with `_kernel` at the nodes equals
    the sum of the kernel over the distances up to the cubic-spline
    interpolation error (the prefilter is symmetric away from the
    ``_NODE_MARGIN`` empty nodes).
    """
    from scipy.ndimage import spline_filter1d

    hist = _bspline_counts(d, weights, rows, n_rows, lo, hi)
    return spline_filter1d(hist, axis=-1)


# cubic B-spline weights of the nodes b - 1, ..., b + 2 of a distance at
# x = b + t (in node steps) as polynomials in t, the columns 1, t, t^2, t^3
_BSPLINE = (
    np.array([[1, -3, 3, -1], [4, 0, -6, 3], [1, 3, 3, -3], [0, 0, 0, 1]])
    / 6.0
)


def _bspline_counts(d, weights, rows, n_rows, lo, hi, drop=None):
    """Return the (n_rows, hi - lo) cubic B-spline histograms of d.

    Distance ``d[i]`` adds ``weights[i]`` (1 when weights is None) to
    row ``rows[i]``, spread over its four nearest nodes; distances where
    ``drop`` is True are left out.  The histogram is summed from the
    moments ``sum w t^p`` (p = 0..3) of the offsets t of the distances
    in each node interval, four `numpy.bincount` passes.  More than
    ``_MANY_PAIRS`` distances per row take two: the count and the mean
    offset in each of ``_FINE`` sub-intervals, which give the moments to
    second order in the sub-interval width (an Rw of about 1e-6 in G).
    """
    size = hi - lo
    stride = size + 4  # padding nodes take the dropped distances
    fine = _FINE if d.size > _MANY_PAIRS * n_rows else 1
    sums = 0
    # blocks that stay in the CPU caches; one block for few distances
    for start in range(0, max(d.size, 1), _BLOCK):
        block = slice(start, start + _BLOCK)
        sums = sums + _interval_sums(
            d[block],
            None if weights is None else weights[block],
            None if n_rows == 1 else np.asarray(rows)[block],
            None if drop is None else drop[block],
            (lo, size, stride, fine, n_rows),
        )
    if fine == 1:
        moments = sums
    else:
        # sub-interval centres c and weighted offsets from them
        c = (np.arange(fine) + 0.5) / fine
        count = sums[0].reshape(-1, fine)
        offset = (sums[1].reshape(-1, fine) - 0.5 * count) / fine
        moments = [count.sum(1)] + [
            count @ c**p + offset @ (p * c ** (p - 1)) for p in (1, 2, 3)
        ]
    parts = _BSPLINE @ np.asarray(moments)
    hist = parts[1]
    hist[:-1] += parts[0, 1:]
    hist[1:] += parts[2, :-1]
    hist[2:] += parts[3, :-2]
    return hist.reshape(n_rows, stride)[:, :size]


def _interval_sums(d, weights, rows, drop, layout) -> np.ndarray:
    """Return the sums of ``w t^p`` of the distances in each interval.

    ``layout`` is ``(lo, size, stride, fine, n_rows)`` of
    `_bspline_counts`: intervals of ``_NODE_STEP / fine`` from node
    ``lo``, ``stride`` nodes a row.  Powers p = 0..3, or 0..1 for
    ``fine > 1``; t is the offset in the interval, in its widths.
    """
    lo, size, stride, fine, n_rows = layout
    n_bins = n_rows * stride * fine
    x = d * (fine / _NODE_STEP)
    x -= (0.5 + lo) * fine
    if drop is not None:
        np.copyto(x, (size + 1.5) * fine, where=drop)
    base = np.floor(x)
    x -= base
    index = base.astype(np.intp)
    if rows is not None:
        index += rows * (stride * fine)
    sums = np.empty((4 if fine == 1 else 2, n_bins))
    sums[0] = np.bincount(index, weights, minlength=n_bins)
    power = x if weights is None else x * weights
    sums[1] = np.bincount(index, power, minlength=n_bins)
    if fine == 1:
        power = power * x
        sums[2] = np.bincount(index, power, minlength=n_bins)
        power *= x
        sums[3] = np.bincount(index, power, minlength=n_bins)
    return sums


def _nodes(lo: int, hi: int) -> np.ndarray:
    """Return the positions of B-spline nodes lo <= b < hi in Å."""
    return (np.arange(lo, hi) + 0.5) * _NODE_STEP


@lru_cache(maxsize=8)
def _node_kernel(grid: _FourierGrid, uiso: float, delta2: float):
    """Return the nodes [lo, hi) of grid's pair range and their kernel.

    Computed once per grid, Uiso and delta2; the kernel must not be
    changed.
    """
    bounds = np.array([max(grid.dlo, _NODE_STEP), grid.dhi])
    lo, hi = _node_range(bounds)
    kernel = _kernel(_nodes(lo, hi), grid, uiso, delta2)
    kernel.flags.writeable = False
    return lo, hi, kernel


@lru_cache(maxsize=8)
def _filtered_node_kernel(grid: _FourierGrid, uiso: float, delta2: float):
    """`_node_kernel` with the spline prefilter applied along the nodes.

    The prefilter is symmetric away from the ``_NODE_MARGIN`` empty
    nodes, so the plain B-spline histogram of `_bspline_counts` times
    this kernel equals its prefiltered histogram (`_spread`) times the
    plain one, without a prefilter per histogram.
    """
    from scipy.ndimage import spline_filter1d

    lo, hi, kernel = _node_kernel(grid, uiso, delta2)
    kernel = spline_filter1d(kernel, axis=0)
    kernel.flags.writeable = False
    return lo, hi, kernel


def _msd_factor(d: np.ndarray, delta2: float) -> np.ndarray:
    """The factor ``max(1 - delta2 / d^2, 0)`` of Uiso in the pair
    mean-square displacement of `_kernel`."""
    return np.clip(1 - delta2 / d**2, 0, None)


def _pair_sums(
    d, weights, rows, n_rows, grid, uiso, delta2, slope=False
) -> np.ndarray:
    """Return the (n_rows, n_q) sums of ``weights K(d, q)`` of each row.

    Pairs are summed exactly when they are fewer than the spline nodes
    that they span, and through the B-spline histogram otherwise.  Pairs
    below or within five nodes above ``sqrt(delta2)``, where the clipped
    Debye-Waller factor has a kink that splines cannot follow, are always
    summed exactly.  All d must lie in the pair range of grid.  With
    ``slope``, ``(2, n_rows, n_q)``: the sums and their derivatives in
    Uiso, from the same kernel.
    """
    f = np.zeros((1 + slope, n_rows, grid.nq - grid.nqmin))
    near = d < math.sqrt(delta2) + 5 * _NODE_STEP
    far = d[~near] if near.any() else d
    lo, hi = _node_range(far) if far.size else (0, 0)
    exact = near | (far.size <= hi - lo)
    if exact.any():
        select = np.zeros((n_rows, exact.sum()))
        select[rows[exact], np.arange(exact.sum())] = weights[exact]
        kernel = _kernel(d[exact], grid, uiso, delta2)
        f[0] += select @ kernel
        if slope:
            f[1] += (select * _msd_factor(d[exact], delta2)) @ kernel
    if not exact.all():
        smooth = ~exact
        lo, hi, kernel = _node_kernel(grid, uiso, delta2)
        if exact.any():
            d, weights, rows = d[smooth], weights[smooth], rows[smooth]
        counts = _spread(d, weights, rows, n_rows, lo, hi)
        f[0] += counts @ kernel
        if slope:
            # c(d) K(d, q) is as smooth in d as K itself
            f[1] += (counts * _msd_factor(_nodes(lo, hi), delta2)) @ kernel
    if not slope:
        return f[0]
    q = grid.q
    f[1] *= -q * q
    return f


@lru_cache(maxsize=8)
def _interpolation(grid: _FourierGrid, qdamp: float, r: bytes):
    """Return the fine-grid index and the two weights of each r value.

    G(r) is ``s[i] a + s[i + 1] b`` for ``s`` the imaginary part of the
    FFT in `_pdf_from_f`: linear interpolation, the FFT's scale and the
    qdamp envelope in one.  r is given as the bytes of a float array.
    """
    r = np.frombuffer(r)
    x = r * (grid.n2 * grid.qstep / math.pi)
    index = x.astype(np.intp)
    w = x - index
    scale = -2 / math.pi * grid.qstep * np.exp(-0.5 * (qdamp * r) ** 2)
    result = (index, index + 1, (1 - w) * scale, w * scale)
    for array in result:
        array.flags.writeable = False
    return result


def _pdf_from_f(f: np.ndarray, grid: _FourierGrid, r, qdamp: float):
    """Return G(r) for F (..., n_q) on grid.q, as srreal transforms it."""
    r = np.ascontiguousarray(r, dtype=float)
    return _transform(f, grid, _interpolation(grid, qdamp, r.tobytes()))


@lru_cache(maxsize=4)
def _fourier_matrix(grid: _FourierGrid, qdamp: float, r: bytes) -> np.ndarray:
    """A of G = f A: `_transform` of each Fourier term of grid.

    Cached (read-only), as searches return to earlier states; each is
    ``n_q x len(r)`` floats (5.6 MB for Qmax 25 Å⁻¹ and r to 30 Å in
    steps of 0.01 Å).
    """
    n_f = grid.nq - grid.nqmin
    a = _transform(np.eye(n_f), grid, _interpolation(grid, qdamp, r))
    a.flags.writeable = False
    return a


def _transform(f: np.ndarray, grid: _FourierGrid, interpolation):
    """`_pdf_from_f` with the `_interpolation` of its r and qdamp."""
    index, index1, a, b = interpolation
    coef = np.zeros(f.shape[:-1] + (grid.nq,))
    coef[..., grid.nqmin :] = f
    s = np.fft.rfft(coef, n=2 * grid.n2, axis=-1).imag
    g = s[..., index] * a
    g += s[..., index1] * b
    return g


def _check_scalars(zoom: float, uiso: float) -> None:
    """Raise ValueError unless zoom > 0 and uiso >= 0 are finite."""
    if not (zoom > 0 and math.isfinite(zoom)):
        raise ValueError(f"Please give a finite zoom > 0, not {zoom}.")
    if not (uiso >= 0 and math.isfinite(uiso)):
        raise ValueError(f"Please give a finite uiso >= 0, not {uiso}.")


@dataclass(frozen=True, eq=False)
class PairHistogram:
    """Distinct pair distances of one cluster, for repeated G(r) fits.

    Build it once with `from_cluster`; `pdf` then costs well under a ms
    for any zoom and Uiso (after the first call with a Uiso, which
    computes the cached kernel).  Distances that agree when rounded to
    1e-4 Å are merged into one entry at their mean distance, so a
    crystalline cluster keeps at most a few hundred entries and is
    summed exactly.  Blurred clusters with more entries than spline
    nodes are summed through a cubic B-spline histogram instead.

    Attributes
    ----------
    distances : numpy.ndarray
        Distinct pair distances in Å, increasing.
    counts : numpy.ndarray
        Number of pairs i < j at each distance.
    n_atoms : int
        Number of atoms in the cluster.
    """

    distances: np.ndarray
    counts: np.ndarray
    n_atoms: int

    @classmethod
    def from_cluster(cls, cluster) -> PairHistogram:
        """Return the pair histogram of a cluster.

        Parameters
        ----------
        cluster : array_like, ase.Atoms or diffpy.structure.Structure
            The cluster, as accepted by `cluster_xyz`.
        """
        xyz = cluster_xyz(cluster)
        d = pair_distances(xyz)
        if d.size and d.min() <= _SQRT_EPS:
            d = d[d > _SQRT_EPS]
        key = d / _MERGE_TOL
        np.rint(key, out=key)
        if key.size and key.max() < 16 * key.size + (1 << 18):
            # count by key directly: sorting is much slower
            group = key.astype(np.intp)
            counts = np.bincount(group)
            distinct = np.flatnonzero(counts > 0)
            sums = np.bincount(group, weights=d)[distinct]
            counts = counts[distinct]
        else:
            _, group, counts = np.unique(
                key, return_inverse=True, return_counts=True
            )
            sums = np.bincount(group, weights=d)
        return cls(sums / counts, counts.astype(float), len(xyz))

    def pdf(
        self,
        r=None,
        params: DebyeParameters | None = None,
        zoom: float = 1.0,
        uiso: float | None = None,
        *,
        extendedrmax: float | None = None,
    ) -> np.ndarray:
        """Return G(r) of the cluster, scaled by zoom.

        Parameters
        ----------
        r : array_like, optional
            Output r values in Å; by default the grid of params.  The
            srreal rmin and rmax are taken as ``min(r)`` rounded down to
            a multiple of ``params.rstep`` and ``max(r) + params.rstep``.
        params : DebyeParameters, optional
            Calculation settings, the defaults when None.
        zoom : float
            Factor applied to all interatomic distances.
        uiso : float, optional
            Isotropic Uiso in Å^2, overriding ``params.uiso``.
        extendedrmax : float, optional
            Upper end in Å of the pair distances that are summed, which
            sets ``qstep = pi / extendedrmax``.  By default srreal's
            ``extendedrmax`` of a new calculator: rmax plus the reach of
            the termination ripples and peak tails, rounded up to a
            multiple of ``params.rstep``.

        Returns
        -------
        numpy.ndarray
            G(r) in 1/Å^2.
        """
        return self._pdfs(r, params, zoom, uiso, extendedrmax, False)

    def pdf_and_slope(
        self,
        r=None,
        params: DebyeParameters | None = None,
        zoom: float = 1.0,
        uiso: float | None = None,
    ) -> np.ndarray:
        """Return G(r) and its derivative in Uiso, for fits.

        The derivative is that of the Debye sum at the Q-grid of ``uiso``
        (which srreal widens in steps as Uiso grows), in 1/Å^4.  The
        parameters are those of `pdf`.

        Returns
        -------
        numpy.ndarray
            ``(2, len(r))``: G(r) and dG/dUiso.
        """
        return self._pdfs(r, params, zoom, uiso, None, True)

    def _pdfs(self, r, params, zoom, uiso, extendedrmax, slope):
        """`pdf`, with ``slope`` `pdf_and_slope`."""
        params = params or DebyeParameters()
        uiso = params.uiso if uiso is None else float(uiso)
        _check_scalars(zoom, uiso)
        r, rmin, rmax = _output_grid(r, params)
        grid = _fourier_grid(params, uiso, rmin, rmax, extendedrmax)
        d = self.distances * zoom
        weights = self.counts * (2 / self.n_atoms)
        if d.size and (
            d.min() <= max(grid.dlo, _SQRT_EPS) or d.max() > grid.dhi
        ):
            keep = (d >= grid.dlo) & (d <= grid.dhi) & (d > _SQRT_EPS)
            d, weights = d[keep], weights[keep]
        rows = np.zeros(d.size, dtype=np.intp)
        f = _pair_sums(d, weights, rows, 1, grid, uiso, params.delta2, slope)
        return _pdf_from_f(f[..., 0, :], grid, r, params.qdamp)


@dataclass(frozen=True, eq=False)
class PairVectors:
    """Distinct pair vectors of one cluster, for fits of its strain.

    A homogeneous deformation ``x -> F x`` changes the distance of a pair
    to ``|F v|`` for its vector ``v``, so pairs of the same vector (up
    to sign) keep one distance whatever F is: a crystalline cluster has
    far fewer distinct vectors than pairs.  Vectors that agree when
    rounded to 1e-3 Å are merged into one at their mean.

    Attributes
    ----------
    vectors : numpy.ndarray
        ``(n, 3)`` distinct pair vectors in Å, each up to sign.
    counts : numpy.ndarray
        Number of pairs i < j of each vector.
    n_atoms : int
        Number of atoms in the cluster.
    """

    vectors: np.ndarray
    counts: np.ndarray
    n_atoms: int

    @classmethod
    def from_cluster(cls, cluster) -> PairVectors:
        """Return the distinct pair vectors of a cluster.

        Parameters
        ----------
        cluster : array_like, ase.Atoms or diffpy.structure.Structure
            The cluster, as accepted by `cluster_xyz`.
        """
        xyz = cluster_xyz(cluster)
        i, j = np.triu_indices(len(xyz), 1)
        v = xyz[j] - xyz[i]
        key = np.rint(v / _VECTOR_TOL).astype(np.int64)
        # one sign of each vector: the first non-zero component positive
        first = np.where(key[:, 0] != 0, key[:, 0], key[:, 1])
        first = np.where(first != 0, first, key[:, 2])
        flip = first < 0
        key[flip] *= -1
        v[flip] *= -1
        span = 2 * int(np.abs(key).max(initial=0)) + 1
        if span**3 < 1 << 62:
            key += span // 2
            key = (key[:, 0] * span + key[:, 1]) * span + key[:, 2]
        _, group, counts = np.unique(
            key, return_inverse=True, return_counts=True, axis=key.ndim - 1
        )
        group = group.ravel()
        sums = [np.bincount(group, weights=c) for c in v.T]
        return cls(
            np.column_stack(sums) / counts[:, None],
            counts.astype(float),
            len(xyz),
        )

    def histogram(self, deformation=None) -> PairHistogram:
        """The pair histogram of the cluster deformed by a 3x3 matrix.

        Parameters
        ----------
        deformation : array_like, optional
            The matrix F of ``x -> F x``; the identity when None.

        Returns
        -------
        PairHistogram
        """
        v = self.vectors
        if deformation is not None:
            v = v @ np.asarray(deformation, dtype=float).T
        d = np.sqrt(np.einsum("ij,ij->i", v, v))
        order = np.argsort(d)
        return PairHistogram(d[order], self.counts[order], self.n_atoms)


class IncrementalPDF:
    """G(r) of a cluster that changes one atom at a time.

    For searches over atom sites: the pair distances of the current
    atoms are kept in the cubic B-spline histogram of `PairHistogram`'s
    blurred-cluster path (unfiltered, in pair counts), which adding,
    removing or moving one atom updates with its N - 1 distances, and
    the prefiltered Debye kernel of the histogram's nodes is computed
    once for the r grid, instrument parameters and Uiso (and shared by
    every calculator and `PairHistogram` with the same ones).  `pdf`
    then costs one matrix-vector product and one FFT, whatever the
    number of atoms.  Pairs closer than ``sqrt(delta2)`` plus a few
    nodes, which `PairHistogram` sums exactly, go through the histogram
    too (atoms that close are not physical); pairs outside srreal's
    pair range of the r grid are left out, as there.

    Parameters
    ----------
    cluster : array_like, ase.Atoms or diffpy.structure.Structure
        The starting cluster (`cluster_xyz`), coordinates in Å.
    r : array_like
        Output r values in Å, as for `PairHistogram.pdf`.
    params : DebyeParameters, optional
        Calculation settings, the defaults when None.
    uiso : float, optional
        Isotropic Uiso in Å^2, overriding ``params.uiso``.
    """

    def __init__(
        self,
        cluster,
        r,
        params: DebyeParameters | None = None,
        uiso: float | None = None,
    ):
        self._params = params or DebyeParameters()
        uiso = self._params.uiso if uiso is None else float(uiso)
        _check_scalars(1.0, uiso)
        self._r, rmin, rmax = _output_grid(r, self._params)
        self._grid = _fourier_grid(self._params, uiso, rmin, rmax)
        self._lo, self._hi, self._kernel = _filtered_node_kernel(
            self._grid, uiso, self._params.delta2
        )
        self._interpolation = _interpolation(
            self._grid, self._params.qdamp, self._r.tobytes()
        )
        self._xyz = cluster_xyz(cluster).copy()
        self._counts = self._histograms(pair_distances(self._xyz), 1)[0]
        self._data = None

    @property
    def xyz(self) -> np.ndarray:
        """Copy of the ``(n_atoms, 3)`` coordinates in Å."""
        return self._xyz.copy()

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self._xyz)

    def _histograms(self, d: np.ndarray, n_rows=1, weights=None, rows=None):
        """B-spline histograms of the (n_rows, m) distances d, row by row.

        Pairs outside the pair range of the grid and self pairs (zero
        distance) are left out; ``weights`` (one per distance) default
        to 1; ``rows`` (one per distance) gives the row of each distance
        of a flat d instead.
        """
        d = d.ravel()
        grid, drop = self._grid, None
        if d.size and d.max() > grid.dhi:
            drop = d > grid.dhi
        if d.size and d.min() <= max(grid.dlo, _SQRT_EPS):
            low = (d < grid.dlo) | (d <= _SQRT_EPS)
            drop = low if drop is None else drop | low
        if rows is None and n_rows > 1:
            rows = np.arange(n_rows).repeat(d.size // n_rows)
        return _bspline_counts(
            d, weights, rows, n_rows, self._lo, self._hi, drop
        )

    def _distances(self, sources: np.ndarray) -> np.ndarray:
        """(len(sources), n_atoms) distances of sources to every atom."""
        diff = self._xyz[None] - sources[:, None]
        return np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))

    def _position(self, position) -> np.ndarray:
        position = np.asarray(position, dtype=float)
        if position.shape != (3,) or not np.isfinite(position).all():
            raise ValueError(
                "Please give a position as three finite coordinates in Å."
            )
        return position

    def _index(self, index: int) -> int:
        if not -self.n_atoms <= index < self.n_atoms:
            raise IndexError(
                f"No atom {index}: the cluster has {self.n_atoms} atoms."
            )
        return index % self.n_atoms

    def add(self, position) -> None:
        """Add an atom at ``position`` (Å) as the last one."""
        position = self._position(position)
        self._counts += self._histograms(self._distances(position[None]), 1)[0]
        self._xyz = np.vstack([self._xyz, position])

    def remove(self, index: int) -> np.ndarray:
        """Remove atom ``index``; return its position (Å)."""
        index = self._index(index)
        position = self._xyz[index]
        # the atom's distance to itself is zero, which is left out
        self._counts -= self._histograms(self._distances(position[None]), 1)[0]
        self._xyz = np.delete(self._xyz, index, axis=0)
        return position

    def move(self, index: int, position) -> None:
        """Move atom ``index`` to ``position`` (Å)."""
        index = self._index(index)
        position = self._position(position)
        d = self._distances(np.array([self._xyz[index], position]))
        sign = np.ones(d.shape)
        sign[0] = -1.0  # the old pairs go, the new ones come
        # the moved atom's pairs with itself: weight 0 at a distance in range
        sign[:, index] = 0.0
        d[:, index] = self._grid.dhi
        self._counts += self._histograms(d, weights=sign.ravel())[0]
        self._xyz[index] = position

    def pdf(self) -> np.ndarray:
        """G(r) in 1/Å^2 of the current atoms on the r grid.

        Raises
        ------
        ValueError
            When the cluster has no atoms.
        """
        if self.n_atoms == 0:
            raise ValueError("The cluster has no atoms; please add some.")
        f = self._sums(self._counts) * (2 / self.n_atoms)
        return _transform(f, self._grid, self._interpolation)

    def _pdfs(self, counts: np.ndarray, n_atoms: np.ndarray) -> np.ndarray:
        """G(r) of each row of histogram counts with its atom count."""
        f = self._sums(counts)
        f *= (2 / n_atoms)[:, None]
        return _transform(f, self._grid, self._interpolation)

    def _sums(self, counts: np.ndarray) -> np.ndarray:
        """F(Q) sums ``counts @ kernel`` over the nodes that hold pairs."""
        held = np.flatnonzero(counts if counts.ndim == 1 else counts.any(0))
        if held.size == 0:
            return np.zeros(counts.shape[:-1] + self._kernel.shape[1:])
        nodes = slice(held[0], held[-1] + 1)
        return counts[..., nodes] @ self._kernel[nodes]

    def _trial_counts(self, add, remove):
        """Histogram counts and atom counts after each single change."""
        add = np.asarray(add, dtype=float).reshape(-1, 3)
        if not np.isfinite(add).all():
            raise ValueError("Please give positions as finite coordinates.")
        remove = np.array([self._index(int(i)) for i in remove], np.intp)
        if remove.size and self.n_atoms < 2:
            raise ValueError("Removing the only atom leaves no cluster.")
        n_add, n_rows = len(add), len(add) + len(remove)
        sources = np.vstack([add, self._xyz[remove]])
        delta = self._histograms(self._distances(sources), n_rows)
        delta[n_add:] *= -1
        n_atoms = self.n_atoms + np.where(np.arange(n_rows) < n_add, 1, -1)
        return self._counts + delta, n_atoms

    def trial_pdfs(self, add=(), remove=()) -> np.ndarray:
        """G(r) after each of several single changes, none applied.

        Parameters
        ----------
        add : array_like
            ``(n_add, 3)`` positions in Å, each tried as one added atom.
        remove : array_like of int
            Indices of atoms, each tried as the one atom removed.

        Returns
        -------
        numpy.ndarray
            ``(n_add + n_remove, n_r)``: G(r) in 1/Å^2 with each position
            added, then with each atom removed.

        Raises
        ------
        ValueError
            For positions that are not finite triples, or a removal that
            would leave no atoms.
        """
        return self._pdfs(*self._trial_counts(add, remove))

    def trial_rw(self, g, add=(), remove=(), qdamps=None) -> np.ndarray:
        """Rw against data after each of several single changes.

        The same trials as `trial_pdfs`, each scored by the Rw of its
        G(r) with the scale fitted in closed form
        (:func:`diffpy.deepstruc.fitting.scale_and_rw`), at a fraction
        of the cost: G is linear in the pair histogram, so the Rw needs
        only the projections of the data and of the transform on the
        histogram's Fourier terms, which are computed once per data set.

        Parameters
        ----------
        g : array_like
            The data G on the r grid.
        add, remove
            As for `trial_pdfs`.
        qdamps : sequence of float, optional
            qdamp values (Å⁻¹) to try instead of the calculator's: each
            trial then gets its least Rw over them, for a search that
            refines qdamp (it and the particle size both damp G).

        Returns
        -------
        numpy.ndarray
            ``(n_add + n_remove,)`` Rw values.
        """
        g = self._checked(g)
        return self._rw(g, self._trial_counts(add, remove)[0], qdamps)

    def trial_group_rw(self, g, changes, qdamps=None) -> np.ndarray:
        """Rw against data after each of several group changes, none applied.

        Parameters
        ----------
        g : array_like
            The data G on the r grid.
        changes : iterable of tuple
            Each change as ``(add, remove)``: ``(k, 3)`` positions (Å) of
            atoms added together, and indices of atoms removed together.
        qdamps : sequence of float, optional
            As for `trial_rw`.

        Returns
        -------
        numpy.ndarray
            ``(n_changes,)`` Rw values, as for `trial_rw`.

        Raises
        ------
        ValueError
            For positions that are not finite triples, or a change that
            would leave no atoms.
        """
        from scipy.spatial.distance import cdist, pdist

        # the distances that each change adds (weight 1) or takes away
        # (weight -1), binned in one pass
        changes = list(changes)
        distances, weights, rows = [], [], []
        for row, (add, remove) in enumerate(changes):
            add = np.asarray(add, dtype=float).reshape(-1, 3)
            if not np.isfinite(add).all():
                raise ValueError(
                    "Please give positions as finite coordinates."
                )
            remove = np.unique([self._index(int(i)) for i in remove])
            if self.n_atoms + len(add) - len(remove) < 1:
                raise ValueError("A change may not leave no atoms.")
            gone = self._xyz[remove.astype(np.intp)]
            # new pairs: added with kept atoms and among themselves; lost
            # pairs: removed with all atoms (their own pairs twice), once
            parts = [
                (self._distances(add), 1.0),
                (cdist(add, gone), -1.0),
                (pdist(add), 1.0),
                (self._distances(gone), -1.0),
                (pdist(gone), 1.0),
            ]
            for d, sign in parts:
                distances.append(d.ravel())
                weights.append(np.full(d.size, sign))
                rows.append(np.full(d.size, row))
        g = self._checked(g)
        if not changes:
            return np.zeros(0)
        delta = self._histograms(
            np.concatenate(distances),
            len(changes),
            np.concatenate(weights),
            np.concatenate(rows),
        )
        return self._rw(g, self._counts + delta, qdamps)

    def _checked(self, g) -> np.ndarray:
        g = np.asarray(g, dtype=float)
        if g.shape != self._r.shape:
            raise ValueError(
                f"Please give G on the {self._r.size} points of the r grid."
            )
        return g

    def _rw(self, g: np.ndarray, counts: np.ndarray, qdamps=None):
        """Rw of each row of histogram counts, scale fitted (trial_rw),
        the least over ``qdamps`` when given."""
        h = self._sums(counts)
        if qdamps is None:
            b, m, gg = self._projection(g)
            den = ((h @ m) * h).sum(axis=1)
            ratio = (h @ b) ** 2 / np.where(den > 0, den, np.inf) / gg
        else:
            # G = (f A0) e for the envelope e of each qdamp
            envelopes = np.exp(-0.5 * np.square(np.outer(qdamps, self._r)))
            undamped = h @ self._undamped()
            num = undamped @ (envelopes * g).T
            den = np.square(undamped) @ np.square(envelopes).T
            fit = num**2 / np.where(den > 0, den, np.inf) / float(g @ g)
            ratio = fit.max(axis=1)
        return np.sqrt(np.clip(1 - ratio, 0, None))

    def _projection(self, g: np.ndarray):
        """``(A g, A A^T, g.g)`` of data g, where G = f A on this grid."""
        if self._data is None or not np.array_equal(self._data[0], g):
            a = _fourier_matrix(
                self._grid, self._params.qdamp, self._r.tobytes()
            )
            self._data = (g.copy(), a @ g, a @ a.T, float(g @ g))
        return self._data[1:]

    def _undamped(self) -> np.ndarray:
        """A0 of G = f A0 without the qdamp envelope, on this grid."""
        return _fourier_matrix(self._grid, 0.0, self._r.tobytes())


def simulate_pdf(
    cluster,
    r=None,
    *,
    params: DebyeParameters | None = None,
    zoom: float = 1.0,
    uiso: float | None = None,
    backend: str = "numpy",
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate the PDF G(r) of a one-element cluster.

    Parameters
    ----------
    cluster : array_like, ase.Atoms or diffpy.structure.Structure
        The cluster, as accepted by `cluster_xyz`.  Elements are ignored.
    r : array_like, optional
        Output r values in Å, see `PairHistogram.pdf`.  By default
        ``r_grid(params.rmin, params.rmax, params.rstep)``.
    params : DebyeParameters, optional
        Calculation settings, the defaults when None.
    zoom : float
        Factor applied to all interatomic distances.
    uiso : float, optional
        Isotropic Uiso in Å^2, overriding ``params.uiso``.
    backend : {"numpy", "srreal"}
        "srreal" computes G with diffpy.srreal's DebyePDFCalculator.

    Returns
    -------
    r, G : numpy.ndarray
        The r values in Å and G(r) in 1/Å^2.

    Raises
    ------
    ImportError
        For backend "srreal" when diffpy.srreal is not installed.
    """
    params = params or DebyeParameters()
    rout, rmin, rmax = _output_grid(r, params)
    if backend == "numpy":
        pairs = PairHistogram.from_cluster(cluster)
        return rout, pairs.pdf(r, params, zoom=zoom, uiso=uiso)
    if backend == "srreal":
        uiso = params.uiso if uiso is None else float(uiso)
        _check_scalars(zoom, uiso)
        xyz = cluster_xyz(cluster) * zoom
        return rout, _srreal_pdf(xyz, rout, rmin, rmax, params, uiso)
    raise ValueError(
        f"Please choose backend 'numpy' or 'srreal', not {backend!r}."
    )


def _srreal_pdf(xyz, r, rmin, rmax, params, uiso) -> np.ndarray:
    """Return srreal's G(r) for a cluster of (arbitrary) Pt atoms."""
    try:
        from diffpy.srreal.pdfcalculator import DebyePDFCalculator
    except ImportError as error:
        raise ImportError(
            "diffpy.srreal is optional and has no PyPI wheels; install it "
            "with conda (conda install -c conda-forge diffpy.srreal) or use "
            "backend='numpy', which gives the same G(r)."
        ) from error
    from diffpy.structure import Atom, Structure

    # the default lattice (1, 1, 1, 90, 90, 90) makes srreal treat the
    # structure as a non-periodic molecule with Cartesian coordinates
    structure = Structure([Atom("Pt", xyz=p, Uisoequiv=uiso) for p in xyz])
    calculator = DebyePDFCalculator(
        qmin=params.qmin,
        qmax=params.qmax,
        qdamp=params.qdamp,
        delta2=params.delta2,
        rmin=rmin,
        rmax=rmax,
        rstep=params.rstep,
    )
    rcalc, gcalc = calculator(structure)
    return np.interp(r, rcalc, gcalc)


def _per_cluster(values, default: float, n: int, name: str) -> np.ndarray:
    """Broadcast None, a scalar or a sequence to n per-cluster floats."""
    values = np.broadcast_to(
        np.asarray(default if values is None else values, dtype=float), (n,)
    )
    if not np.isfinite(values).all():
        raise ValueError(f"Please give finite {name}.")
    return values


def simulate_pdfs(
    clusters,
    r=None,
    *,
    params: DebyeParameters | None = None,
    zooms=None,
    uisos=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate the PDFs of many clusters at once.

    The pair distances of every cluster go into a cubic B-spline
    histogram; one matrix product with a shared kernel and one batched FFT
    then give all G(r).  The result agrees with `simulate_pdf` to an Rw of
    about 2e-5.

    Parameters
    ----------
    clusters : sequence
        Clusters as accepted by `cluster_xyz`, of any sizes.
    r : array_like, optional
        Output r values in Å, see `simulate_pdf`.
    params : DebyeParameters, optional
        Calculation settings, the defaults when None.
    zooms : float or array_like, optional
        Distance scale factor, one for all or one per cluster.
    uisos : float or array_like, optional
        Uiso in Å^2, one for all or one per cluster; ``params.uiso`` when
        None.  Clusters with equal Uiso share one kernel, so few distinct
        values are fastest.

    Returns
    -------
    r : numpy.ndarray
        The r values in Å.
    G : numpy.ndarray
        Array of shape (len(clusters), len(r)).
    """
    params = params or DebyeParameters()
    r, rmin, rmax = _output_grid(r, params)
    n = len(clusters)
    zooms = _per_cluster(zooms, 1.0, n, "zooms")
    uisos = _per_cluster(uisos, params.uiso, n, "uisos")
    for zoom, uiso in zip(zooms, uisos):
        _check_scalars(zoom, uiso)
    xyzs = [cluster_xyz(cluster) for cluster in clusters]
    sizes = np.array([len(xyz) for xyz in xyzs])
    result = np.empty((n, r.size))
    for uiso in np.unique(uisos):
        grid = _fourier_grid(params, uiso, rmin, rmax)
        members = np.flatnonzero(uisos == uiso)
        # blocks of about _CHUNK_PAIRS pairs keep the temporaries in cache
        block = np.cumsum(sizes[members] ** 2 // 2) // _CHUNK_PAIRS
        for chunk in np.split(members, np.flatnonzero(np.diff(block)) + 1):
            f = _batch_pair_sums(
                [xyzs[i] for i in chunk], zooms[chunk], grid, uiso, params
            )
            result[chunk] = _pdf_from_f(f, grid, r, params.qdamp)
    return r, result


def _batch_pair_sums(xyzs, zooms, grid, uiso, params) -> np.ndarray:
    """Return the (n_clusters, n_q) F(Q) of zoomed clusters on grid."""
    distances, weights = [], []
    for xyz, zoom in zip(xyzs, zooms):
        d = pair_distances(xyz) * zoom
        d = d[(d >= grid.dlo) & (d <= grid.dhi) & (d > _SQRT_EPS)]
        distances.append(d)
        weights.append(np.full(d.size, 2 / len(xyz)))
    rows = np.repeat(np.arange(len(xyzs)), [x.size for x in distances])
    d, weights = np.concatenate(distances), np.concatenate(weights)
    return _pair_sums(d, weights, rows, len(xyzs), grid, uiso, params.delta2)
