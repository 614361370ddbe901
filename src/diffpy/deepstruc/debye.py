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
keeps the relative error of ``G`` near 1e-5.  The exact path matches
srreal to rounding error.  srreal's ``debyeprecision`` cut of tiny sine
terms is not applied; it only matters for huge Uiso.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = [
    "DebyeParameters",
    "IncrementalPDF",
    "PairHistogram",
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
# spacing of the cubic B-spline histogram nodes and the number of extra
# nodes on each side that absorb the prefilter's boundary error
_NODE_STEP = 0.02
_NODE_MARGIN = 12
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
    and cosines per distance instead of n^2; numpy's sine is slow.
    """
    nk = grid.nq - grid.nqmin
    n = math.isqrt(max(nk - 1, 0)) + 1
    step = d[:, None] * grid.qstep
    coarse = step * (grid.nqmin + n * np.arange(n))
    fine = step * np.arange(n)
    s = np.sin(coarse)[:, :, None] * np.cos(fine)[:, None, :]
    s += np.cos(coarse)[:, :, None] * np.sin(fine)[:, None, :]
    return s.reshape(d.size, n * n)[:, :nk]


def _kernel(d: np.ndarray, grid: _FourierGrid, uiso: float, delta2: float):
    """Return the (len(d), n_q) Debye terms exp(-s2 q^2/2) sin(q d)/d."""
    q = grid.q
    msd = uiso * np.clip(1 - delta2 / d**2, 0, None)
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
    return spline_filter1d(hist.reshape(n_rows, hi - lo), axis=-1)


def _bspline_counts(d, weights, rows, n_rows: int, lo: int, hi: int):
    """Return the flat (n_rows (hi - lo),) B-spline histogram of d."""
    size = hi - lo
    x = d / _NODE_STEP - 0.5
    base = np.floor(x)
    t = x - base
    index = base.astype(np.intp)
    index += rows * size - lo
    t2 = t * t
    t3 = t2 * t
    w0 = weights / 6 * (1 - 3 * t + 3 * t2 - t3)
    w1 = weights / 6 * (4 - 6 * t2 + 3 * t3)
    w3 = weights / 6 * t3
    w2 = weights - w0 - w1 - w3
    hist = np.zeros(n_rows * size)
    for shift, w in enumerate((w0, w1, w2, w3), start=-1):
        hist += np.bincount(index + shift, weights=w, minlength=hist.size)
    return hist


def _nodes(lo: int, hi: int) -> np.ndarray:
    """Return the positions of B-spline nodes lo <= b < hi in Å."""
    return (np.arange(lo, hi) + 0.5) * _NODE_STEP


def _pair_sums(d, weights, rows, n_rows, grid, uiso, delta2) -> np.ndarray:
    """Return the (n_rows, n_q) sums of ``weights K(d, q)`` of each row.

    Pairs are summed exactly when they are fewer than the spline nodes
    that they span, and through the B-spline histogram otherwise.  Pairs
    below or within five nodes above ``sqrt(delta2)``, where the clipped
    Debye-Waller factor has a kink that splines cannot follow, are always
    summed exactly.
    """
    f = np.zeros((n_rows, grid.nq - grid.nqmin))
    near = d < math.sqrt(delta2) + 5 * _NODE_STEP
    far = d[~near]
    lo, hi = _node_range(far) if far.size else (0, 0)
    exact = near | (far.size <= hi - lo)
    if exact.any():
        select = np.zeros((n_rows, exact.sum()))
        select[rows[exact], np.arange(exact.sum())] = weights[exact]
        f += select @ _kernel(d[exact], grid, uiso, delta2)
    if not exact.all():
        smooth = ~exact
        hist = _spread(
            d[smooth], weights[smooth], rows[smooth], n_rows, lo, hi
        )
        f += hist @ _kernel(_nodes(lo, hi), grid, uiso, delta2)
    return f


def _pdf_from_f(f: np.ndarray, grid: _FourierGrid, r, qdamp: float):
    """Return G(r) for F (..., n_q) on grid.q, as srreal transforms it."""
    coef = np.zeros(f.shape[:-1] + (grid.nq,))
    coef[..., grid.nqmin :] = f
    spectrum = np.fft.rfft(coef, n=2 * grid.n2, axis=-1)
    gfine = spectrum.imag * (-2 / math.pi * grid.qstep)
    x = r * (grid.n2 * grid.qstep / math.pi)
    lo = x.astype(np.intp)
    w = x - lo
    g = (1 - w) * gfine[..., lo] + w * gfine[..., lo + 1]
    return g * np.exp(-0.5 * (qdamp * r) ** 2)


def _check_scalars(zoom: float, uiso: float) -> None:
    """Raise ValueError unless zoom > 0 and uiso >= 0 are finite."""
    if not (zoom > 0 and math.isfinite(zoom)):
        raise ValueError(f"Please give a finite zoom > 0, not {zoom}.")
    if not (uiso >= 0 and math.isfinite(uiso)):
        raise ValueError(f"Please give a finite uiso >= 0, not {uiso}.")


@dataclass(frozen=True, eq=False)
class PairHistogram:
    """Distinct pair distances of one cluster, for repeated G(r) fits.

    Build it once with `from_cluster`; `pdf` then costs a few ms for any
    zoom and Uiso.  Distances that agree when rounded to 1e-4 Å are
    merged into one entry at their mean distance, so a crystalline cluster
    keeps at most a few hundred entries and is summed exactly.  Blurred
    clusters with more entries than spline nodes are summed through a
    cubic B-spline histogram instead.

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
        d = d[d > _SQRT_EPS]
        _, group, counts = np.unique(
            np.round(d / _MERGE_TOL), return_inverse=True, return_counts=True
        )
        mean = np.bincount(group, weights=d) / counts
        return cls(mean, counts.astype(float), len(xyz))

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
        params = params or DebyeParameters()
        uiso = params.uiso if uiso is None else float(uiso)
        _check_scalars(zoom, uiso)
        r, rmin, rmax = _output_grid(r, params)
        grid = _fourier_grid(params, uiso, rmin, rmax, extendedrmax)
        d = self.distances * zoom
        keep = (d >= grid.dlo) & (d <= grid.dhi) & (d > _SQRT_EPS)
        d = d[keep]
        rows = np.zeros(d.size, dtype=np.intp)
        weights = self.counts[keep] * (2 / self.n_atoms)
        f = _pair_sums(d, weights, rows, 1, grid, uiso, params.delta2)
        return _pdf_from_f(f[0], grid, r, params.qdamp)


class IncrementalPDF:
    """G(r) of a cluster that changes one atom at a time.

    For searches over atom sites: the pair distances of the current
    atoms are kept in the cubic B-spline histogram of `PairHistogram`'s
    blurred-cluster path (unfiltered, in pair counts), which adding,
    removing or moving one atom updates with its N - 1 distances, and
    the Debye kernel of the histogram's nodes is computed once for the
    fixed r grid, instrument parameters and Uiso.  `pdf` then costs a
    spline prefilter, one matrix-vector product and one FFT, whatever
    the number of atoms.  Pairs closer than ``sqrt(delta2)`` plus a few
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
        bounds = np.array([max(self._grid.dlo, _NODE_STEP), self._grid.dhi])
        self._lo, self._hi = _node_range(bounds)
        self._kernel = _kernel(
            _nodes(self._lo, self._hi), self._grid, uiso, self._params.delta2
        )
        self._xyz = cluster_xyz(cluster).copy()
        self._counts = self._pair_counts(pair_distances(self._xyz), +1)
        self._data = None

    @property
    def xyz(self) -> np.ndarray:
        """Copy of the ``(n_atoms, 3)`` coordinates in Å."""
        return self._xyz.copy()

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self._xyz)

    def _pair_counts(self, d: np.ndarray, sign: int) -> np.ndarray:
        """The histogram of the distances d in the pair range, times sign."""
        d = d[(d >= self._grid.dlo) & (d <= self._grid.dhi) & (d > _SQRT_EPS)]
        rows = np.zeros(d.size, dtype=np.intp)
        weights = np.full(d.size, float(sign))
        return _bspline_counts(d, weights, rows, 1, self._lo, self._hi)

    def _update(self, position: np.ndarray, others: np.ndarray, sign: int):
        """Add (+1) or remove (-1) the pairs of ``position`` with others."""
        d = np.sqrt(((others - position) ** 2).sum(axis=1))
        self._counts += self._pair_counts(d, sign)

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
        self._update(position, self._xyz, +1)
        self._xyz = np.vstack([self._xyz, position])

    def remove(self, index: int) -> np.ndarray:
        """Remove atom ``index``; return its position (Å)."""
        index = self._index(index)
        position = self._xyz[index]
        self._xyz = np.delete(self._xyz, index, axis=0)
        self._update(position, self._xyz, -1)
        return position

    def move(self, index: int, position) -> None:
        """Move atom ``index`` to ``position`` (Å)."""
        index = self._index(index)
        position = self._position(position)
        others = np.delete(self._xyz, index, axis=0)
        self._update(self._xyz[index], others, -1)
        self._update(position, others, +1)
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
        return self._pdfs(self._counts[None], np.array([self.n_atoms]))[0]

    def _pdfs(self, counts: np.ndarray, n_atoms: np.ndarray) -> np.ndarray:
        """G(r) of each row of histogram counts with its atom count."""
        from scipy.ndimage import spline_filter1d

        f = spline_filter1d(counts, axis=-1) @ self._kernel
        f *= (2 / n_atoms)[:, None]
        return _pdf_from_f(f, self._grid, self._r, self._params.qdamp)

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
        d = np.sqrt(((sources[:, None] - self._xyz[None]) ** 2).sum(-1))
        keep = (d >= self._grid.dlo) & (d <= self._grid.dhi) & (d > _SQRT_EPS)
        rows, _ = np.nonzero(keep)
        sign = np.where(rows < n_add, 1.0, -1.0)
        delta = _bspline_counts(
            d[keep], sign, rows, n_rows, self._lo, self._hi
        ).reshape(n_rows, -1)
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

    def trial_rw(self, g, add=(), remove=()) -> np.ndarray:
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

        Returns
        -------
        numpy.ndarray
            ``(n_add + n_remove,)`` Rw values.
        """
        g = np.asarray(g, dtype=float)
        if g.shape != self._r.shape:
            raise ValueError(
                f"Please give G on the {self._r.size} points of the r grid."
            )
        counts, _ = self._trial_counts(add, remove)
        h = counts @ self._filtered_kernel
        b, m, gg = self._projection(g)
        num = h @ b
        den = np.einsum("ij,jk,ik->i", h, m, h)
        ratio = num**2 / np.where(den > 0, den, np.inf) / gg
        return np.sqrt(np.clip(1 - ratio, 0, None))

    @cached_property
    def _filtered_kernel(self) -> np.ndarray:
        """The kernel with the spline prefilter applied on the node axis.

        The prefilter is symmetric away from the empty margin nodes, so
        ``prefilter(counts) @ kernel == counts @ _filtered_kernel``.
        """
        from scipy.ndimage import spline_filter1d

        return spline_filter1d(self._kernel, axis=0)

    def _projection(self, g: np.ndarray):
        """``(A g, A A^T, g.g)`` of data g, where G = f A on this grid."""
        if self._data is None or not np.array_equal(self._data[0], g):
            n_f = self._kernel.shape[1]
            qdamp = self._params.qdamp
            a = _pdf_from_f(np.eye(n_f), self._grid, self._r, qdamp)
            self._data = (g.copy(), a @ g, a @ a.T, float(g @ g))
        return self._data[1:]


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
