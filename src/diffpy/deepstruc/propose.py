"""Propose candidate structures for a PDF and rank them by their fit.

The pipeline of :func:`propose_structures`:

1. read and check the PDF (:func:`diffpy.deepstruc.pdfdata.load_pdf`);
2. build the scale-free prior input and estimate the nearest-neighbour
   distance d (:func:`diffpy.deepstruc.features.prior_input`);
3. the prior network gives a Gaussian in the 2-D latent plane; latent
   points are drawn around its mean at several multiples of its standard
   deviation (the paper's 3, 5 and 7) and, unless ``search=False``, a
   regular grid covers the whole region of the training structures, so
   the right structure is found even when the prior mean sits in the
   wrong region; after screening (step 6), finer grids around the best
   decodes are searched the same way;
4. the decoder turns every point into a cluster; equivalent decodes (same
   atom count, atom positions within 0.05 d) are merged, and each is
   scaled so that its mean first-shell distance equals the estimated d;
5. a cheap proxy ranks all distinct clusters: the correlation, with a
   linear baseline projected out, of the data's reduced G(u) and the
   cluster's smeared pair-distance histogram divided by u
   (:func:`diffpy.deepstruc.matching.fingerprints`);
6. the best :data:`N_SCREEN` by the proxy get their Debye PDF and Rw with
   the scale fitted (:func:`diffpy.deepstruc.fitting.batch_rw`);
   structures with the same atom count and fingerprint are merged
   (:func:`distinct_structures`), as are near-duplicates
   (:func:`diffpy.deepstruc.plausibility.distinct_geometries`), and the
   best ``top`` plus :data:`~diffpy.deepstruc.fitting.EXTRA_FITS` are
   fitted with scale, zoom and Uiso
   (:func:`diffpy.deepstruc.fitting.fit_cluster`); unless
   ``snap=False``, the shapes of the training library have been mined
   first, exactly as :func:`~diffpy.deepstruc.mining.mine_library` mines
   them with the same ``top`` and ``strain`` (:func:`training_shapes`):
   the mined candidates join the decodes (``source="library"``), so
   that the best candidate never fits worse than mining's best, decodes
   that are near-duplicates of them are left out, at most
   :data:`DECODE_FITS` decodes are fitted, and the mined shapes
   also give the structure-type weights
   (:mod:`diffpy.deepstruc.confidence`);
7. for the stacking model, the best two close-packed candidates are
   re-stacked with every sequence of their layers and the best
   re-stackings fitted too (``source="restacked"``,
   :mod:`diffpy.deepstruc.restacking`);
8. with ``strain=True``, the decodes and re-stackings among the best
   distinct candidates are refitted with a homogeneous strain too, kept
   where the data support it
   (:func:`diffpy.deepstruc.strain.refit_strained`; the mined shapes
   were refitted in step 6);
9. the fitted candidates are ranked by the Bayesian information
   criterion of their fit, which charges a decode its two latent
   coordinates and a strained candidate its strain as fitted parameters
   (:func:`diffpy.deepstruc.plausibility.ranking_order`; for clean data
   the order of Rw), and get their plausibility flags, with a
   :class:`~diffpy.deepstruc.plausibility.FitQualityWarning` when even
   the best fits poorly (:mod:`diffpy.deepstruc.plausibility`).

Each model snaps to the library it was trained on (``"library"`` of its
metadata): the MMNP model to the 197 shapes, the stacking model to the
2612 close-packed particles of :mod:`diffpy.deepstruc.stacking`.  The
types of its decodes are the library's types: for the MMNP model those
of the nearest library geometry, for the stacking model the stacking
class (fcc, hcp or faulted) of the decode's layers.  ``model="auto"``
runs every shipped model and ranks all their candidates together.
"""

import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from diffpy.deepstruc.candidate import Candidate
from diffpy.deepstruc.confidence import (
    best_rw_by_type,
    check_noise,
    weigh_types,
)
from diffpy.deepstruc.features import U_GRID, prior_input
from diffpy.deepstruc.fitting import (
    EXTRA_FITS,
    FIT_RANGE,
    batch_rw,
    fit_cluster,
    worker_pool,
)
from diffpy.deepstruc.libraries import load_library
from diffpy.deepstruc.matching import FINGERPRINT_U, fingerprints, nn_distance
from diffpy.deepstruc.mining import mined_candidates
from diffpy.deepstruc.model import available_models, load_model
from diffpy.deepstruc.pdfdata import (
    element_of,
    instrument_parameters,
    load_pdf,
)
from diffpy.deepstruc.plausibility import (
    FitQualityWarning,
    distinct_geometries,
    rank_candidates,
    ranking_order,
)
from diffpy.deepstruc.restacking import restack_best
from diffpy.deepstruc.strain import refit_strained

#: Multiples of the prior standard deviation that latent points are drawn
#: at (as in the DeepStruc paper).
SIGMA_MULTIPLIERS = (3.0, 5.0, 7.0)
#: Points per axis of the latent-plane search grid.
SEARCH_POINTS = 24
#: Decodes closer than this (RMS per atom slot, units of d) are merged.
MERGE_TOLERANCE = 0.05
#: Screened structures with the same atom count whose fingerprints differ
#: by less than this fraction are the same candidate.
FINGERPRINT_TOLERANCE = 0.05
#: Distinct decodes whose Debye PDF is computed after the proxy ranking.
N_SCREEN = 48
#: Best screened decodes whose latent neighbourhood is searched again.
N_REFINE = 4
#: Screened structures checked for near-duplicates, per fitted candidate.
DUPLICATE_POOL = 3
#: Distinct decodes fitted with scale, zoom and Uiso beside the mined
#: library shapes (without snapping, ``top`` plus
#: :data:`~diffpy.deepstruc.fitting.EXTRA_FITS`).
DECODE_FITS = 8
#: The ``model`` that runs every shipped model.
AUTO = "auto"


def search_grid(latent_map: dict) -> tuple[np.ndarray, np.ndarray]:
    """Regular grid over the training structures' latent region.

    Returns
    -------
    grid : numpy.ndarray
        ``(SEARCH_POINTS**2, 2)`` latent points (5 % margin around the
        bounding box of the training structures).
    step : numpy.ndarray
        Grid spacing along each latent axis.
    """
    known = np.asarray(latent_map["z"])
    lo, hi = known.min(0), known.max(0)
    lo, hi = lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)
    axes = [np.linspace(a, b, SEARCH_POINTS) for a, b in zip(lo, hi)]
    grid = np.stack(np.meshgrid(*axes), -1).reshape(-1, known.shape[1])
    return grid, (hi - lo) / (SEARCH_POINTS - 1)


def prior_points(mean, sigma, n_samples, rng) -> np.ndarray:
    """The prior mean, then ``n_samples`` draws split over the multipliers.

    The draws at multiplier k come from a Gaussian with the prior mean and
    k times the prior standard deviation.
    """
    parts = np.array_split(np.arange(n_samples), len(SIGMA_MULTIPLIERS))
    draws = [
        mean + k * sigma * rng.standard_normal((len(part), mean.size))
        for k, part in zip(SIGMA_MULTIPLIERS, parts)
    ]
    return np.vstack([mean[None, :], *draws])


def local_points(centres: np.ndarray, step: np.ndarray) -> np.ndarray:
    """A 5 x 5 grid of spacing ``step / 3`` around each centre."""
    offsets = (np.arange(5) - 2) / 3.0
    patch = np.stack(np.meshgrid(offsets, offsets), -1).reshape(-1, 2)
    return (centres[:, None, :] + patch[None] * step).reshape(-1, 2)


def merge_equivalent(decoded: list[np.ndarray]) -> list[int]:
    """Indices of the first of each group of equivalent decodes.

    Two decodes are equivalent when they have the same number of atoms
    and their atom slots differ by less than :data:`MERGE_TOLERANCE`
    (root mean square, units of d).  The decoder emits atoms in a fixed
    slot order, so no assignment is needed.
    """
    keep = []
    counts = np.array([len(x) for x in decoded])
    for n in np.unique(counts[counts > 1]):
        members = np.flatnonzero(counts == n)
        flat = np.array([decoded[i].ravel() for i in members])
        norms = (flat**2).sum(1)
        sq = norms[:, None] + norms[None, :] - 2 * flat @ flat.T
        close = sq < (MERGE_TOLERANCE**2) * n
        taken = np.zeros(len(members), bool)
        for j in range(len(members)):
            if not taken[j]:
                keep.append(int(members[j]))
                taken |= close[j]
    return sorted(keep)


def distinct_structures(shapes: list[np.ndarray]) -> list[int]:
    """Indices of the first of each group of equivalent structures.

    Two structures are equivalent when they have the same number of atoms
    and their fingerprints (:func:`diffpy.deepstruc.matching.fingerprints`,
    in the given units) differ by less than :data:`FINGERPRINT_TOLERANCE`
    relative to the norm of the first.  Unlike :func:`merge_equivalent`
    this ignores atom order and orientation.
    """
    prints = fingerprints(shapes, units=1.0)
    norms = np.linalg.norm(prints, axis=1)
    keep: list[int] = []
    for i, xyz in enumerate(shapes):
        if not any(
            len(shapes[k]) == len(xyz)
            and np.linalg.norm(prints[i] - prints[k])
            < FINGERPRINT_TOLERANCE * norms[k]
            for k in keep
        ):
            keep.append(i)
    return keep


def proxy_scores(decoded: list[np.ndarray], features: np.ndarray):
    """Similarity of decoded clusters (units of d) to the reduced data G(u).

    Returns, for each cluster, the correlation coefficient between the
    data's prior input and the cluster's fingerprint divided by u, both
    with their least-squares line in u removed (G of a finite cluster sits
    on a sloping baseline that the fingerprint lacks).
    """
    inside = (FINGERPRINT_U >= U_GRID[0]) & (FINGERPRINT_U <= U_GRID[-1])
    u = FINGERPRINT_U[inside]
    data = np.interp(u, U_GRID, features)
    approx = fingerprints(decoded, units=1.0)[:, inside] / u
    basis, _ = np.linalg.qr(np.column_stack([np.ones_like(u), u]))

    def detrend(y):
        y = y - (y @ basis) @ basis.T
        return y / np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), 1e-12)

    return detrend(approx) @ detrend(data)


class Screened(NamedTuple):
    """A distinct decode with its screening Rw."""

    rw: float
    z: np.ndarray
    source: str
    xyz: np.ndarray  # units of the first-shell distance


def screen(net, z, source, features, d, data, params) -> list[Screened]:
    """Decode latent points and score the most promising distinct decodes.

    Equivalent decodes are merged and rescaled to a unit first-shell
    distance (:func:`diffpy.deepstruc.matching.nn_distance`), which is what
    the first PDF peak measures; the proxy keeps the best
    :data:`N_SCREEN`, and those get Rw with the scale fitted.
    """
    decoded = net.decode(z)
    distinct = merge_equivalent(decoded)
    if not distinct:
        return []
    shapes = [decoded[i] / nn_distance(decoded[i]) for i in distinct]
    proxy = proxy_scores(shapes, features)
    best = np.argsort(-proxy, kind="stable")[:N_SCREEN]
    r, g = data
    rw = batch_rw([shapes[k] * d for k in best], r, g, params)
    return [
        Screened(float(rw[j]), z[distinct[k]], source[distinct[k]], shapes[k])
        for j, k in enumerate(best)
    ]


def propose_structures(
    gr,
    *,
    model: str | Path = "mmnp",
    n_samples: int = 1000,
    top: int = 10,
    seed: int = 0,
    qmax: float | None = None,
    qdamp: float | None = None,
    qmin: float | None = None,
    element: str | None = None,
    search: bool = True,
    snap: bool = True,
    library=None,
    fit_range: tuple[float, float] = FIT_RANGE,
    noise: float | None = None,
    strain: bool = False,
) -> list[Candidate]:
    """Propose nanoparticle structures for a PDF, best fit first.

    Parameters
    ----------
    gr : str, os.PathLike, tuple or PDFData
        The PDF: a ``.gr`` file, ``(r, G)`` arrays, or anything
        :func:`diffpy.deepstruc.pdfdata.load_pdf` reads.
    model : str or pathlib.Path
        Shipped model name (``"mmnp"``, ``"stacking"``), model folder, or
        ``"auto"``: every shipped model, all candidates ranked together.
    n_samples : int
        Latent points drawn around the prior mean.
    top : int
        Number of candidates returned.
    seed : int
        Seed of the latent sampling; the same seed gives the same result.
    qmax, qdamp, qmin : float, optional
        Instrument parameters (Å⁻¹), overriding the file header.
    element : str, optional
        Element of the atoms; by default the data's composition.
    search : bool
        Also decode a grid over the latent region of the training
        structures, then finer grids around the best decodes.
    snap : bool
        Also mine the shapes of the model's training library
        (:func:`training_shapes`) and rank the best with the decodes
        (``source="library"``); this also gives the type weights.  The
        re-stackings of the stacking model come either way.
    library : str, os.PathLike or Library, optional
        The shapes snapped to, as for
        :func:`diffpy.deepstruc.libraries.load_library`; by default the
        model's own library.
    fit_range : tuple of float
        r range (Å) of the fits.
    noise : float, optional
        Standard deviation of the noise of G.  By default the ranking and
        the strained refits take the white noise of the data
        (:func:`diffpy.deepstruc.confidence.white_noise`) and the type
        weights estimate it from the high-r part
        (:func:`diffpy.deepstruc.confidence.noise_level`).
    strain : bool
        Refit the best candidates with a homogeneous strain too, kept
        where the data support it
        (:func:`diffpy.deepstruc.strain.refit_strained`), for particles
        strained unevenly; it costs time.

    Returns
    -------
    list of Candidate
        At most ``top`` distinct candidates ranked by their fit (rank 1
        first; :func:`diffpy.deepstruc.plausibility.ranking_order`),
        with the weights of the structure types
        (:attr:`~diffpy.deepstruc.candidate.Candidate.type_weights`)
        unless ``snap=False``.

    Raises
    ------
    diffpy.deepstruc.pdfdata.PDFInputError
        For unusable PDF input.
    ValueError
        For bad arguments.

    Examples
    --------
    >>> from diffpy.deepstruc import propose_structures
    >>> best = propose_structures("Pt_1.8nm.gr")[0]  # doctest: +SKIP
    >>> best.nearest_reference, best.rw  # doctest: +SKIP
    """
    if n_samples < 0 or top < 1:
        raise ValueError(
            "Please give n_samples >= 0 and top >= 1 "
            f"(got n_samples={n_samples}, top={top})."
        )
    check_noise(noise)
    pdf = load_pdf(gr, qmax=qmax, qdamp=qdamp, qmin=qmin)
    options = dict(
        n_samples=n_samples,
        top=top,
        seed=seed,
        element=element_of(pdf, element),
        search=search,
        snap=snap,
        library=library,
        fit_range=fit_range,
        noise=noise,
        strain=strain,
    )
    if str(model) != AUTO:
        return _propose(pdf, load_model(model), **options)
    candidates = []
    with warnings.catch_warnings():
        # one fit-quality warning, for the ranking of all models below
        warnings.simplefilter("ignore", FitQualityWarning)
        for name in available_models():
            candidates += _propose(pdf, load_model(name), **options)
    if snap:
        type_rw: dict[str, float] = {}
        for c in candidates:
            for name, rw in (c.type_rw or {}).items():
                type_rw[name] = min(rw, type_rw.get(name, rw))
        weigh_types(candidates, type_rw, candidates[0].params, noise)
    return ranked(candidates, top, noise)


def _propose(
    pdf,
    net,
    *,
    n_samples,
    top,
    seed,
    element,
    search,
    snap,
    library,
    fit_range,
    noise,
    strain,
) -> list[Candidate]:
    """:func:`propose_structures` with one model, on loaded data."""
    params = instrument_parameters(pdf, net.metadata["pdf_parameters"])
    inside = (pdf.r >= fit_range[0]) & (pdf.r <= fit_range[1])
    r, g = pdf.r[inside], pdf.g[inside]
    features, d = prior_input(pdf.r, pdf.g)
    mean, sigma = (a[0] for a in net.prior(features))
    shapes, type_rw = [], {}
    if snap:
        shapes, type_rw = training_shapes(
            net,
            library,
            (r, g),
            params,
            d,
            element,
            (mean, sigma),
            top=top,
            strain=strain,
            noise=noise,
        )
    rng = np.random.default_rng(seed)
    grid, step = search_grid(net.latent_map)
    z = prior_points(mean, sigma, n_samples, rng)
    source = ["prior"] * len(z)
    if search:
        z = np.vstack([z, grid])
        source += ["search"] * len(grid)
    pool = screen(net, z, source, features, d, (r, g), params)
    pool.sort(key=lambda entry: entry.rw)
    if search:
        centres = np.array([entry.z for entry in pool[:N_REFINE]])
        z = local_points(centres, step)
        pool += screen(
            net, z, ["refined"] * len(z), features, d, (r, g), params
        )
        pool.sort(key=lambda entry: entry.rw)
    pool = [pool[i] for i in distinct_structures([e.xyz for e in pool])]
    n_fits = top + EXTRA_FITS
    if snap:
        n_fits = min(n_fits, DECODE_FITS)
    pool = pool[: DUPLICATE_POOL * n_fits]
    # decodes that repeat a library shape are left to it (unit d both)
    known = [c.xyz / (d * c.zoom) for c in shapes]
    keep = distinct_geometries(known + [e.xyz for e in pool])
    chosen = [pool[i - len(known)] for i in keep if i >= len(known)]
    chosen = chosen[:n_fits]
    clusters = [entry.xyz * d for entry in chosen]
    # the fits are independent and numpy releases the GIL in their heavy
    # parts, so threads share them out over the cores
    with worker_pool() as threads:
        fits = threads.map(lambda x: fit_cluster(x, r, g, params), clusters)
    candidates = [
        Candidate(
            xyz=(cluster - cluster.mean(0)) * fit.zoom,
            element=element,
            rw=fit.rw,
            scale=fit.scale,
            zoom=fit.zoom,
            uiso=fit.uiso,
            latent=entry.z,
            sigma=float(np.linalg.norm((entry.z - mean) / sigma)),
            source=entry.source,
            r=r,
            gobs=g,
            gcalc=fit.gcalc,
            params=params,
        )
        for entry, cluster, fit in zip(chosen, clusters, fits)
    ]
    if model_library(net) == "stacking":
        candidates += restack_best(candidates + shapes, r, g, params)
    if strain:
        candidates = refit_strained(candidates, noise=noise, rivals=shapes)
    candidates += shapes
    for candidate in candidates:
        candidate.model = net.name
        if candidate.source != "library":
            candidate.type = decode_type(candidate, model_library(net))
    if snap and type_rw:
        decoded = best_rw_by_type(
            [c.type for c in candidates], [c.rw for c in candidates]
        )
        for name, rw in decoded.items():
            type_rw[name] = min(rw, type_rw.get(name, rw))
        weigh_types(candidates, type_rw, params, noise)
    return ranked(candidates, top, noise)


def ranked(
    candidates: list[Candidate], top: int, noise: float | None = None
) -> list[Candidate]:
    """The ``top`` best candidates, ranked and flagged.

    Candidates are ranked by the information criterion of their fit
    (:func:`diffpy.deepstruc.plausibility.ranking_order`, with ``noise``),
    near-duplicates give way to the better-ranked one, and the rest get
    their rank and plausibility flags
    (:func:`diffpy.deepstruc.plausibility.rank_candidates`).
    """
    order = ranking_order(candidates, noise)
    candidates = [candidates[i] for i in order]
    keep = distinct_geometries([c.xyz for c in candidates])
    return rank_candidates([candidates[i] for i in keep], top, noise)


def model_library(net) -> str:
    """Name of the library a model was trained on and snaps to.

    ``"mmnp"`` for models exported before the name was recorded.
    """
    return net.metadata.get("library", "mmnp")


def decode_type(candidate: Candidate, library: str) -> str:
    """Type of a candidate in the terms of ``library``'s types.

    The structure type of its nearest MMNP geometry for ``"mmnp"``, its
    stacking class for ``"stacking"`` (``""`` when it is not
    close-packed).
    """
    if library == "stacking":
        stacking = candidate.stacking
        return stacking.kind if stacking is not None else ""
    return candidate.nearest_reference.type


def training_shapes(
    net, library, data, params, d, element, prior, *, top, strain, noise
):
    """The best-fitting shapes of a library, as candidates.

    The shapes of ``library`` (by default the model's own,
    :func:`model_library`) are mined as
    :func:`~diffpy.deepstruc.mining.mine_library` mines them, with the
    same ``top``, ``strain`` and ``noise``
    (:func:`diffpy.deepstruc.mining.mined_candidates`), and returned with
    ``source="library"``; each gets the
    mean latent point of the model's training structures of the same
    label (NaN when none was in training) and its distance from the
    prior ``(mean, sigma)``.  The least Rw of each structure type in the
    library comes with them.
    """
    own = load_library(model_library(net))
    shapes = own if library is None else load_library(library)
    candidates, type_rw = mined_candidates(
        shapes,
        data,
        params,
        d,
        element,
        top=top,
        strain=strain,
        noise=noise,
    )
    latent_map = net.latent_map
    known = np.asarray(latent_map["z"])
    labels = np.array([own[i].label for i in latent_map["shape_id"]])
    mean, sigma = prior
    for candidate in candidates:
        members = known[labels == candidate.label]
        if len(members):
            candidate.latent = members.mean(0)
        else:
            candidate.latent = np.full(known.shape[1], np.nan)
        distance = (candidate.latent - mean) / sigma
        candidate.sigma = float(np.linalg.norm(distance))
    return candidates, type_rw
