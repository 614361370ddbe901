"""Mine a cluster library: fit every cluster to a PDF and rank them.

:func:`mine_library` is the exhaustive counterpart of
:func:`diffpy.deepstruc.propose.propose_structures`: instead of decoding
latent points it fits every cluster of a library
(:mod:`diffpy.deepstruc.libraries`) and returns the same
:class:`~diffpy.deepstruc.candidate.Candidate` objects, with
``source="library"``.  The clusters are at a unit first-shell distance
and are scaled by the nearest-neighbour distance d that the data's first
peak gives (:func:`diffpy.deepstruc.features.prior_input`).

:func:`fit_shapes`, which does the work, screens all clusters cheaply
and fits only the best:

1. the pair distances of each cluster, at d, go into one cubic B-spline
   histogram like those of :mod:`diffpy.deepstruc.debye`, with nodes
   :data:`NODE_FACTOR` times farther apart (0.04 Å);
2. for every zoom in :data:`SCREEN_ZOOMS` (±2 % in 0.5 % steps) and Uiso
   in :data:`SCREEN_UISOS` one Debye kernel on those nodes gives F(Q) of
   a block of :data:`BLOCK` clusters in one matrix product, on the Q grid
   of the largest screening Uiso.  G is linear in F, so the data's
   projection on the G of each Q term and the Gram matrix of those G are
   computed once, and each cluster's Rw, with the scale solved in closed
   form, costs one small matrix product; no G(r) is ever formed.  The
   screening Rw agrees with the exact one to about 1e-3.  Between the
   grid points parabolas in zoom and log Uiso give each cluster's least
   Rw (``_least_rw``).  Libraries of more than
   :data:`REFINE_MIN_CLUSTERS` clusters, where near-twins abound, have
   their best :data:`N_REFINE` screened again on a fine grid around the
   best one;
3. the best ``top + EXTRA_FITS`` clusters by screening Rw are fitted
   with scale, zoom and Uiso (:func:`diffpy.deepstruc.fitting.fit_cluster`,
   started at their screening zoom and Uiso) and ranked by Rw (with
   ``strain=True``, a strained refit is charged its strain:
   :func:`diffpy.deepstruc.plausibility.ranking_order`).

Every library entry is its own candidate: entries are not merged, even
when two are alike.
"""

import itertools
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.spatial.distance import pdist

from diffpy.deepstruc.candidate import Candidate
from diffpy.deepstruc.confidence import (
    best_rw_by_type,
    check_noise,
    weigh_types,
)
from diffpy.deepstruc.debye import (
    DebyeParameters,
    PairHistogram,
    _fourier_grid,
    _kernel,
    _node_range,
    _nodes,
    _output_grid,
    _pdf_from_f,
    _spread,
)
from diffpy.deepstruc.features import prior_input
from diffpy.deepstruc.fitting import (
    EXTRA_FITS,
    FIT_RANGE,
    fit_cluster,
    worker_pool,
)
from diffpy.deepstruc.libraries import Library, load_library
from diffpy.deepstruc.pdfdata import (
    element_of,
    instrument_parameters,
    load_pdf,
)
from diffpy.deepstruc.plausibility import rank_candidates
from diffpy.deepstruc.strain import refit_strained

#: Zooms (relative to the estimated d) of the screening.
SCREEN_ZOOMS = tuple(float(z) for z in np.linspace(0.98, 1.02, 9))
#: Uiso values (Å²) of the screening, in equal ratios (Biso 0.12 to
#: 1.07 Å²).
SCREEN_UISOS = tuple(float(u) for u in np.geomspace(0.0015, 0.0135, 6))
#: Points within half a grid step of each screening minimum at which
#: the parabolas of ``_least_rw`` are evaluated.
PATCH_POINTS = 21
#: The screening histogram's nodes lie this many times farther apart than
#: those of :mod:`diffpy.deepstruc.debye` (0.04 Å instead of 0.02 Å).
NODE_FACTOR = 2
#: Pairs closer than this many first-shell distances are left out of the
#: screening (not of the fits).
SHORTEST_PAIR = 0.5
#: Libraries larger than this get a second, finer screening of their
#: best clusters, since many of their clusters are near-twins that the
#: first grid cannot tell apart.
REFINE_MIN_CLUSTERS = 1000
#: Clusters of the second screening.
N_REFINE = 64
#: Relative zoom offsets and Uiso factors of the second screening's grid,
#: around the best cluster's zoom and Uiso.
REFINE_ZOOMS = tuple(float(z) for z in np.linspace(-0.005, 0.005, 11))
REFINE_UISOS = tuple(float(u) for u in np.geomspace(0.8, 1.25, 9))
#: Clusters screened together.
BLOCK = 256
#: Libraries larger than this show a progress line on standard error
#: unless ``progress`` says otherwise.
PROGRESS_MIN_CLUSTERS = 2000

# Type of the progress callbacks, called as ``progress(done, total)``.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ShapeFit:
    """One library cluster fitted to the data by :func:`fit_shapes`.

    Attributes
    ----------
    index : int
        Position of the cluster in the library.
    rw, scale, zoom, uiso : float
        Outcome of the fit; the zoom is relative to the cluster at the
        estimated d, Uiso in Å².
    xyz : numpy.ndarray
        ``(n_atoms, 3)`` coordinates in Å with the fitted zoom, centred.
    gcalc : numpy.ndarray
        ``scale * G_calc`` on the fitted r grid.
    screen_rw : float
        Rw of the screening, the best over its zooms and Uiso values.
    """

    index: int
    rw: float
    scale: float
    zoom: float
    uiso: float
    xyz: np.ndarray = field(repr=False)
    gcalc: np.ndarray = field(repr=False)
    screen_rw: float


@dataclass(frozen=True)
class MinedShapes:
    """What :func:`fit_shapes` found.

    Attributes
    ----------
    fits : list of ShapeFit
        The best fits, best Rw first.
    type_rw : dict
        Least Rw of each structure type of the library: the fitted Rw
        where a cluster was fitted, else its screening Rw; empty for a
        library without types.
    """

    fits: list[ShapeFit]
    type_rw: dict[str, float]


class _Screen:
    """Screening Rw of clusters against one data set (see module)."""

    def __init__(self, r, g, params: DebyeParameters, d: float):
        r, rmin, rmax = _output_grid(r, params)
        self.grid = _fourier_grid(params, max(SCREEN_UISOS), rmin, rmax)
        self.d = d
        self.delta2 = params.delta2
        n_q = self.grid.nq - self.grid.nqmin
        # G is linear in F: row k of basis is G of the k-th Q term alone
        basis = _pdf_from_f(np.eye(n_q), self.grid, r, params.qdamp)
        self.projection = basis @ g
        self.gram = basis @ basis.T
        self.power = float(g @ g)
        self.lo, self.hi = _node_range(
            np.array([SHORTEST_PAIR * d, self.grid.dhi]) / NODE_FACTOR
        )
        self.nodes = _nodes(self.lo, self.hi) * NODE_FACTOR

    def kernel(self, zooms, uisos) -> np.ndarray:
        """Debye kernels on the nodes, side by side, zoom by zoom."""
        # F of a cluster at zoom z is its histogram times the kernel at z x
        n_q = len(self.gram)
        settings = list(itertools.product(zooms, uisos))
        kernel = np.empty((self.nodes.size, len(settings) * n_q))
        for k, (zoom, uiso) in enumerate(settings):
            kernel[:, k * n_q : (k + 1) * n_q] = _kernel(
                zoom * self.nodes, self.grid, uiso, self.delta2
            )
        return kernel

    def rw(self, library: Library, indices, kernel) -> np.ndarray:
        """``(len(indices), n_settings)`` screening Rw with ``kernel``."""
        distances, weights, rows = [], [], []
        for row, index in enumerate(indices):
            d, w = _unit_pairs(library[index])
            d = d * self.d
            keep = (d >= SHORTEST_PAIR * self.d) & (d <= self.grid.dhi)
            distances.append(d[keep])
            weights.append(w[keep])
            rows.append(np.full(keep.sum(), row))
        histogram = _spread(
            np.concatenate(distances) / NODE_FACTOR,
            np.concatenate(weights),
            np.concatenate(rows),
            len(indices),
            self.lo,
            self.hi,
        )
        f = (histogram @ kernel).reshape(len(indices), -1, len(self.gram))
        cross = f @ self.projection
        power = np.einsum("ikq,ikq->ik", f @ self.gram, f)
        explained = cross**2 / np.where(power > 0, power * self.power, np.inf)
        return np.sqrt(np.clip(1.0 - explained, 0.0, None))


def screened(screen: _Screen, library: Library, start, stop, progress=None):
    """Screen clusters ``start:stop`` of a library, block by block.

    Returns
    -------
    rw : numpy.ndarray
        ``(stop - start, n_settings)`` screening Rw on the grid of
        :data:`SCREEN_ZOOMS` and :data:`SCREEN_UISOS`.
    least : tuple
        ``_least_rw`` of ``rw``.
    """
    kernel = screen.kernel(SCREEN_ZOOMS, SCREEN_UISOS)
    rw = np.empty((stop - start, len(SCREEN_ZOOMS) * len(SCREEN_UISOS)))
    for low in range(start, stop, BLOCK):
        high = min(low + BLOCK, stop)
        rows = slice(low - start, high - start)
        rw[rows] = screen.rw(library, range(low, high), kernel)
        if progress is not None:
            progress(high, stop)
    return rw, _least_rw(rw, SCREEN_ZOOMS, SCREEN_UISOS)


def fit_data(pdf, fit_range: tuple[float, float]):
    """What mining fits a PDF with: ``r``, ``g``, parameters and d.

    Parameters
    ----------
    pdf : PDFData
        The loaded PDF.
    fit_range : tuple of float
        r range (Å) of the fits.

    Returns
    -------
    r, g : numpy.ndarray
        The data inside ``fit_range``.
    params : DebyeParameters
        The instrument parameters of the data, else the defaults.
    d : float
        Nearest-neighbour distance (Å) from the first peak.
    """
    params = instrument_parameters(pdf, asdict(DebyeParameters()))
    inside = (pdf.r >= fit_range[0]) & (pdf.r <= fit_range[1])
    _, d = prior_input(pdf.r, pdf.g)
    return pdf.r[inside], pdf.g[inside], params, d


def _least_rw(rw: np.ndarray, zooms, uisos):
    """Each cluster's screening Rw, zoom and Uiso between the grid points.

    Near its minimum Rw grows about linearly with the error of the zoom
    and of log Uiso, so Rw² is taken as a sum of two parabolas, one per
    axis, through the best grid point and its neighbours along that axis
    (the centre moved in by one at the edges of the grid).  For such a
    V-shaped Rw the best grid point is the one nearest the minimum, so
    the parabolas' least value is sought within half a step of it;
    never below zero nor above the best grid value, it is the estimate.
    This ranks near-identical clusters by their fit, not by how close
    their best zoom and Uiso happen to lie to a grid point.

    Parameters
    ----------
    rw : numpy.ndarray
        ``(n_clusters, len(zooms) * len(uisos))`` screening Rw values.
    zooms, uisos : sequence of float
        The grid: zooms in equal steps, Uiso values in equal ratios.

    Returns
    -------
    rw, zoom, uiso : numpy.ndarray
        Each cluster's estimated least Rw and where it lies.
    best : tuple of numpy.ndarray
        Zoom and Uiso index of each cluster's best grid point.
    """
    shape = (len(zooms), len(uisos))
    squares = (rw**2).reshape(len(rw), *shape)
    rows = np.arange(len(rw))
    best = np.unravel_index(rw.argmin(1), shape)
    i, j = (np.clip(b, 1, n - 2) for b, n in zip(best, shape))
    centre = squares[rows, i, j]
    half_step = np.linspace(-0.5, 0.5, PATCH_POINTS)
    drops, offsets = [], []
    for b, c, before, after in (
        (best[0], i, squares[rows, i - 1, j], squares[rows, i + 1, j]),
        (best[1], j, squares[rows, i, j - 1], squares[rows, i, j + 1]),
    ):
        x = np.clip((b - c)[:, None] + half_step, -1, 1)
        slope = (after - before) / 2
        curvature = (after + before) / 2 - centre
        change = slope[:, None] * x + curvature[:, None] * x**2
        k = change.argmin(1)
        drops.append(change[rows, k])
        offsets.append(c + x[rows, k])
    least = np.clip(centre + drops[0] + drops[1], 0, squares.min((1, 2)))
    zoom = np.interp(offsets[0], np.arange(shape[0]), zooms)
    log_uiso = np.interp(offsets[1], np.arange(shape[1]), np.log(uisos))
    return np.sqrt(least), zoom, np.exp(log_uiso), best


def _refine(screen, library, order, screen_rw, zooms, uisos):
    """Screen the best clusters again, on a fine grid around the best one.

    Returns ``order``, ``screen_rw``, ``zooms`` and ``uisos`` updated for
    the :data:`N_REFINE` best clusters whose least Rw lies inside the
    fine grid.
    """
    short = order[:N_REFINE]
    fine_zooms = zooms[order[0]] * (1 + np.array(REFINE_ZOOMS))
    fine_uisos = uisos[order[0]] * np.array(REFINE_UISOS)
    kernel = screen.kernel(fine_zooms, fine_uisos)
    rw = screen.rw(library, short, kernel)
    least, zoom, uiso, best = _least_rw(rw, fine_zooms, fine_uisos)
    inside = np.ones(len(short), bool)
    for b, n in zip(best, (len(fine_zooms), len(fine_uisos))):
        inside &= (b > 0) & (b < n - 1)
    screen_rw, zooms, uisos = screen_rw.copy(), zooms.copy(), uisos.copy()
    screen_rw[short[inside]] = least[inside]
    zooms[short[inside]] = zoom[inside]
    uisos[short[inside]] = uiso[inside]
    again = np.lexsort((rw.min(1), screen_rw[short]))
    return (
        np.concatenate([short[again], order[N_REFINE:]]),
        screen_rw,
        zooms,
        uisos,
    )


def _unit_pairs(entry) -> tuple[np.ndarray, np.ndarray]:
    """Pair distances (units of d) of an entry and their Debye weights."""
    if entry.pairs is not None:
        return entry.pairs.distances, entry.pairs.counts * (2 / entry.n_atoms)
    distances = pdist(entry.xyz)
    return distances, np.full(distances.size, 2 / entry.n_atoms)


def _text_progress(name: str) -> Progress:
    """A progress callback that writes one updating line to stderr."""

    def report(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        sys.stderr.write(
            f"\rmining {name}: {done}/{total} clusters screened{end}"
        )
        sys.stderr.flush()

    return report


def _progress_callback(progress, library: Library) -> Progress | None:
    """The callback that ``progress`` asks for (see :func:`mine_library`)."""
    if callable(progress):
        return progress
    if progress or (progress is None and len(library) > PROGRESS_MIN_CLUSTERS):
        return _text_progress(library.name)
    return None


def fit_shapes(
    shapes: Library | Sequence,
    r: np.ndarray,
    g: np.ndarray,
    params: DebyeParameters,
    d: float,
    *,
    top: int = 10,
    progress: Progress | None = None,
) -> MinedShapes:
    """Screen clusters against a PDF and fit the best, best Rw first.

    Parameters
    ----------
    shapes : Library or sequence
        A :class:`~diffpy.deepstruc.libraries.Library`, or clusters as
        ``(n_atoms, 3)`` arrays or structures at any scale (each is
        rescaled to a unit first-shell distance).
    r, g : numpy.ndarray
        The data to fit (r in Å).
    params : DebyeParameters
        Instrument parameters; Uiso is fitted.
    d : float
        Nearest-neighbour distance (Å) that the clusters are scaled to.
    top : int
        Number of fits returned; ``top + EXTRA_FITS`` are fitted.
    progress : callable, optional
        Called as ``progress(done, total)`` after each block of screened
        clusters.

    Returns
    -------
    MinedShapes
        At most ``top`` fits, ranked by Rw, and the least Rw of each
        structure type.
    """
    library = (
        shapes
        if isinstance(shapes, Library)
        else Library.from_structures(shapes)
    )
    r = np.asarray(r, float)
    g = np.asarray(g, float)
    screen = _Screen(r, g, params, d)
    n = len(library)
    rw, (screen_rw, zooms, uisos, _) = screened(
        screen, library, 0, n, progress
    )
    # equal estimates (zero for several) go by their best grid Rw
    order = np.lexsort((rw.min(1), screen_rw))
    if n > REFINE_MIN_CLUSTERS:
        order, screen_rw, zooms, uisos = _refine(
            screen, library, order, screen_rw, zooms, uisos
        )
    chosen = order[: top + EXTRA_FITS]

    def fit(index: int) -> ShapeFit:
        entry = library[index]
        length = d * zooms[index]
        unit = entry.pairs
        if unit is None:
            unit = PairHistogram.from_cluster(entry.xyz)
        pairs = PairHistogram(
            unit.distances * length, unit.counts, unit.n_atoms
        )
        result = fit_cluster(pairs, r, g, params, zoom=1.0, uiso=uisos[index])
        return ShapeFit(
            index=int(index),
            rw=result.rw,
            scale=result.scale,
            zoom=zooms[index] * result.zoom,
            uiso=result.uiso,
            xyz=entry.xyz * (length * result.zoom),
            gcalc=result.gcalc,
            screen_rw=float(screen_rw[index]),
        )

    # numpy releases the GIL in the heavy parts of the fits
    with worker_pool() as threads:
        fits = list(threads.map(fit, chosen))
    fits.sort(key=lambda f: f.rw)
    for f in fits:
        screen_rw[f.index] = f.rw
    types = [entry.type for entry in library]
    return MinedShapes(fits[:top], best_rw_by_type(types, screen_rw))


def mine_library(
    gr,
    *,
    library: "str | os.PathLike | Library" = "mmnp",
    top: int = 10,
    qmax: float | None = None,
    qdamp: float | None = None,
    qmin: float | None = None,
    element: str | None = None,
    fit_range: tuple[float, float] = FIT_RANGE,
    progress: Progress | bool | None = None,
    noise: float | None = None,
    strain: bool = False,
) -> list[Candidate]:
    """Fit every cluster of a library to a PDF, best fit first.

    Parameters
    ----------
    gr : str, os.PathLike, tuple or PDFData
        The PDF: a ``.gr`` file, ``(r, G)`` arrays, or anything
        :func:`diffpy.deepstruc.pdfdata.load_pdf` reads.
    library : str, os.PathLike or Library
        ``"mmnp"`` (the 197 shapes of the training library), ``"large"``
        (ASE clusters up to 2500 atoms), a folder of structure files, an
        ASE database, or a loaded library
        (:func:`diffpy.deepstruc.libraries.load_library`; pass one to mine
        many PDFs without reading the files again).
    top : int
        Number of candidates returned.
    qmax, qdamp, qmin : float, optional
        Instrument parameters (Å⁻¹), overriding the file header; without
        either, the defaults of
        :class:`~diffpy.deepstruc.debye.DebyeParameters` (those of the
        model's training data).
    element : str, optional
        Element of the atoms; by default the data's composition.
    fit_range : tuple of float
        r range (Å) of the fits.
    progress : bool or callable, optional
        A progress line on standard error (True), none (False), or a
        callable ``progress(done, total)`` called as blocks of clusters
        are screened.  By default the line is shown for libraries of more
        than :data:`PROGRESS_MIN_CLUSTERS` clusters.
    noise : float, optional
        Standard deviation of the noise of G, as for
        :func:`~diffpy.deepstruc.propose.propose_structures`.
    strain : bool
        Refit the best of the ``top`` clusters with a homogeneous strain
        too, kept where the data support it
        (:func:`diffpy.deepstruc.strain.refit_strained`), for particles
        strained unevenly.

    Returns
    -------
    list of Candidate
        At most ``top`` candidates ranked by their fit
        (:func:`~diffpy.deepstruc.plausibility.ranking_order`), with
        ``source ==
        "library"``, NaN ``latent`` and ``sigma``, the ``label`` of
        the library entry
        (:attr:`diffpy.deepstruc.libraries.LibraryEntry.label`), and the
        type weights (:mod:`diffpy.deepstruc.confidence`) when the
        library's clusters have types.

    Raises
    ------
    diffpy.deepstruc.pdfdata.PDFInputError
        For unusable PDF input.
    diffpy.deepstruc.libraries.LibraryError
        For a library that cannot be loaded.
    ValueError
        For bad arguments.

    Examples
    --------
    >>> from diffpy.deepstruc import example_pdf, mine_library
    >>> mined = mine_library(example_pdf(), library="large")  # doctest: +SKIP
    >>> best = mined[0]  # doctest: +SKIP
    >>> best.label, best.n_atoms, round(best.rw, 3)  # doctest: +SKIP
    ('octahedral 12-2', 1126, 0.138)
    """
    if top < 1:
        raise ValueError(f"Please give top >= 1 (got top={top}).")
    check_noise(noise)
    pdf = load_pdf(gr, qmax=qmax, qdamp=qdamp, qmin=qmin)
    symbol = element_of(pdf, element)
    library = load_library(library)
    r, g, params, d = fit_data(pdf, fit_range)
    candidates, type_rw = mined_candidates(
        library,
        (r, g),
        params,
        d,
        symbol,
        top=top,
        strain=strain,
        noise=noise,
        progress=_progress_callback(progress, library),
    )
    if type_rw:
        weigh_types(candidates, type_rw, params, noise)
    return rank_candidates(candidates, top, noise)


def mined_candidates(
    library: Library,
    data: tuple[np.ndarray, np.ndarray],
    params: DebyeParameters,
    d: float,
    element: str,
    *,
    top: int,
    strain: bool = False,
    noise: float | None = None,
    progress: Progress | None = None,
) -> tuple[list[Candidate], dict[str, float]]:
    """The candidates that mining a library gives, not yet ranked.

    What :func:`mine_library` ranks, and what ``propose`` ranks with its
    decodes, so that ``propose`` never ranks a worse fit first than
    mining the same library does.

    Parameters
    ----------
    library : Library
        The clusters mined.
    data : tuple of numpy.ndarray
        The fitted ``(r, g)``.
    params : DebyeParameters
        Instrument parameters; Uiso is fitted.
    d : float
        Nearest-neighbour distance (Å) that the clusters are scaled to.
    element : str
        Element of the atoms.
    top : int
        Number of fits kept (:func:`fit_shapes`).
    strain : bool
        Refit the best with a homogeneous strain too
        (:func:`diffpy.deepstruc.strain.refit_strained`).
    noise : float, optional
        Standard deviation of the noise of G, for the strained refits.
    progress : callable, optional
        As for :func:`fit_shapes`.

    Returns
    -------
    candidates : list of Candidate
        ``source="library"``, in no particular order.
    type_rw : dict
        Least Rw of each structure type (:attr:`MinedShapes.type_rw`),
        lowered by the strained refits.
    """
    mined = fit_shapes(library, *data, params, d, top=top, progress=progress)
    candidates = library_candidates(mined.fits, library, element, data, params)
    type_rw = dict(mined.type_rw)
    if strain:
        candidates = refit_strained(candidates, noise=noise)
        for c in candidates:
            if c.type in type_rw:
                type_rw[c.type] = min(c.rw, type_rw[c.type])
    return candidates, type_rw


def library_candidates(
    fits: list[ShapeFit], library, element: str, data, params
) -> list[Candidate]:
    """Candidates (``source="library"``) from fits of library entries.

    Parameters
    ----------
    fits : list of ShapeFit
        Fits from :func:`fit_shapes`, whose ``index`` points into
        ``library``.
    library : Library or sequence of LibraryEntry
        The fitted entries; their labels name the candidates.
    element : str
        Element of the atoms.
    data : tuple of numpy.ndarray
        The fitted ``(r, g)``.
    params : DebyeParameters
        Instrument parameters of the fits.

    Returns
    -------
    list of Candidate
        In the order of ``fits``, with NaN ``latent`` and ``sigma``.
    """
    r, g = data
    return [
        Candidate(
            xyz=fit.xyz,
            element=element,
            rw=fit.rw,
            scale=fit.scale,
            zoom=fit.zoom,
            uiso=fit.uiso,
            latent=np.full(2, math.nan),
            sigma=math.nan,
            source="library",
            r=r,
            gobs=g,
            gcalc=fit.gcalc,
            params=params,
            label=library[fit.index].label,
            type=library[fit.index].type,
        )
        for fit in fits
    ]
