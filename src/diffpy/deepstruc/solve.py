"""Solve a structure: site searches from the best proposals.

:func:`solve_structure` runs
:func:`~diffpy.deepstruc.propose.propose_structures` (decodes and the
training library's best shapes) and, when particles beyond the decoder's
200 atoms are allowed, mines the ``"large"`` library too.  The best
:data:`N_STARTS` candidates of a known structure family are each
searched on the sites of their family
(:func:`diffpy.deepstruc.sitesearch.site_search`; the stacking model's
close-packed proposals on their own layers, the ``"stacked"`` family,
after each is rebuilt as the prism of layers cut from one outline that
fits best, :func:`diffpy.deepstruc.prisms.prism_search`, when that fits
better; the fcc, bcc, sc and hcp starts of up to 200 atoms as they are,
and the best of their cuts by their facet planes about a centre of the
lattice, :func:`diffpy.deepstruc.cuts.cut_scan`, too): atoms added and
removed one at a time or a facet layer at a time, while the data
support them.
The solutions from the stacking model's proposals are re-stacked with
every sequence of their layers
(:func:`diffpy.deepstruc.restacking.restack`): a layer that a search
added continues the stacking one way, and faults show in the data only
subtly.  A search whose misfit comes below the noise
(:attr:`~diffpy.deepstruc.sitesearch.SearchResult.settled`) ends those
of the starts ranked after it, whose results are dropped.  The searched
structures (``source="solved"``, with the path of their search) are
ranked with every proposal as ``propose`` ranks its candidates
(:func:`diffpy.deepstruc.plausibility.ranking_order`), so the answer is
never worse than what ``propose`` found.  When the search of the best
solved candidate reached ``max_atoms``, a :class:`MaxAtomsWarning` says
that the particle may be larger.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import threading
import warnings
from pathlib import Path

import numpy as np

from diffpy.deepstruc.candidate import Candidate
from diffpy.deepstruc.confidence import check_noise, weigh_types, white_noise
from diffpy.deepstruc.cuts import CUT_FAMILIES, cut_scan
from diffpy.deepstruc.debye import DebyeParameters
from diffpy.deepstruc.fitting import FIT_RANGE, fit_cluster, worker_pool
from diffpy.deepstruc.mining import mine_library
from diffpy.deepstruc.pdfdata import load_pdf
from diffpy.deepstruc.plausibility import (
    FitQualityWarning,
    distinct_geometries,
)
from diffpy.deepstruc.prisms import prism_search
from diffpy.deepstruc.propose import propose_structures, ranked
from diffpy.deepstruc.restacking import restack
from diffpy.deepstruc.sitesearch import (
    MAX_MOVES,
    RULES,
    STACKED,
    OffSitesError,
    SearchStep,
    family_of,
    site_search,
)
from diffpy.deepstruc.strain import unstrained, unstrained_xyz

__all__ = [
    "CUT_STARTS",
    "N_STARTS",
    "STRAIN_MARGIN",
    "MaxAtomsWarning",
    "solve_structure",
]

#: Best proposals of a known family that are searched.
N_STARTS = 3
#: The values of solve_structure's strain.
STRAIN_MODES = (False, True, "auto")
#: Proposals asked of propose_structures, to pick the starts from.
N_PROPOSALS = 10
#: With ``strain="auto"``, the least relative decrease of a start's Rw
#: for which its strain is kept and searched.
STRAIN_MARGIN = 0.05
#: Most atoms the decoder and the training library give.
DECODER_MAX_ATOMS = 200
#: Cuts (the best distinct ones of the starts') searched besides the
#: starts.
CUT_STARTS = 1
#: Best clusters of the "large" library added as starts when max_atoms
#: allows particles beyond DECODER_MAX_ATOMS.
LARGE_STARTS = 3
#: Accepted moves of the search from a start of more than
#: DECODER_MAX_ATOMS atoms (each costs more there).
LARGE_MOVES = 40
#: Starts of more than this many atoms are searched by the rule
#: ONE_RULE alone: their facet layers matter more than single atoms, and
#: the other rule's single-atom moves cost most there (the time of a
#: search grows with the square of the atoms).
ONE_RULE_ATOMS = 500
ONE_RULE = ("in all",)


def _text_progress(n_starts: int):
    """A progress callback that writes one updating line to stderr."""

    def report(start: int, moves: int) -> None:
        sys.stderr.write(
            f"\rsolving: start {start + 1}/{n_starts}, {moves} moves"
        )
        sys.stderr.flush()

    return report


def solve_structure(
    gr,
    *,
    model: str | Path = "mmnp",
    library=None,
    top: int = 5,
    seed: int = 0,
    qmax: float | None = None,
    qdamp: float | None = None,
    qmin: float | None = None,
    element: str | None = None,
    max_atoms: int = DECODER_MAX_ATOMS,
    n_starts: int = N_STARTS,
    strain: bool | str = "auto",
    fit_range: tuple[float, float] = FIT_RANGE,
    noise: float | None = None,
    progress=None,
) -> list[Candidate]:
    """Solve a nanoparticle structure from its PDF, best fit first.

    Parameters
    ----------
    gr : str, os.PathLike, tuple or PDFData
        The PDF, as for
        :func:`~diffpy.deepstruc.propose.propose_structures`.
    model : str or pathlib.Path
        Model of the proposals (``"mmnp"``, ``"stacking"``, ``"auto"`` or
        a model folder).
    library : str, os.PathLike or Library, optional
        The shapes that propose snaps to, by default the model's own
        (the ``"large"`` library's starts join them whatever it is).
    top : int
        Number of candidates returned.
    seed : int
        Seed of the proposals and of the searches' random kicks; the same
        seed gives the same result.
    qmax, qdamp, qmin : float, optional
        Instrument parameters (Å⁻¹), overriding the file header.
    element : str, optional
        Element of the atoms; by default the data's composition.
    max_atoms : int
        Most atoms of a solution.  Above 200 the best clusters of the
        ``"large"`` library (up to 2500 atoms) are starts too.
    n_starts : int
        Best distinct proposals of a known structure family that are
        searched (and :data:`CUT_STARTS` of their cuts).
    strain : bool or "auto"
        For particles strained unevenly.  The proposals are those of
        ``propose_structures(..., strain=True)`` unless False: the best
        refitted with a homogeneous strain, kept where the data support
        it (:func:`diffpy.deepstruc.strain.refit_strained`).
        ``"auto"`` (default): pick the starts by their fits without a
        strain, plus the proposal that fits best strained, and search a
        start with a strain refined (``strains`` of
        :func:`diffpy.deepstruc.sitesearch.site_search`) when its
        strain lowers Rw by :data:`STRAIN_MARGIN` at least, without one
        otherwise.  True: pick the starts by their strained fits and
        search every start both ways (twice the time of the searches).
        False: no strain.
    fit_range : tuple of float
        r range (Å) of the fits.
    noise : float, optional
        Standard deviation of the noise of G, which sets when the data
        no longer support a change
        (:func:`diffpy.deepstruc.sitesearch.site_search`), ranks the
        candidates and weighs the types; by default the white noise of
        the data (:func:`diffpy.deepstruc.confidence.white_noise`), for
        the search and the ranking, and as for ``propose`` for the type
        weights.
    progress : bool or callable, optional
        A progress line on standard error (True), or a callable
        ``progress(start, moves)`` called after each accepted move.

    Returns
    -------
    list of Candidate
        At most ``top`` distinct candidates ranked by their fit
        (:func:`~diffpy.deepstruc.plausibility.ranking_order`): the searched
        structures (``source="solved"``, with
        :attr:`~diffpy.deepstruc.candidate.Candidate.path`) and the
        proposals they were searched from.

    Raises
    ------
    diffpy.deepstruc.pdfdata.PDFInputError
        For unusable PDF input.
    ValueError
        For bad arguments.

    Warns
    -----
    MaxAtomsWarning
        When the search of the best solved candidate reached
        ``max_atoms``: the particle may be larger.

    Examples
    --------
    >>> from diffpy.deepstruc import solve_structure
    >>> solved = solve_structure("Pt.gr", max_atoms=2000)  # doctest: +SKIP
    >>> best = solved[0]  # doctest: +SKIP
    >>> best.source, best.n_atoms, best.rw  # doctest: +SKIP
    """
    if top < 1 or n_starts < 1 or max_atoms < 1:
        raise ValueError(
            "Please give top, n_starts and max_atoms >= 1 (got "
            f"top={top}, n_starts={n_starts}, max_atoms={max_atoms})."
        )
    if strain not in STRAIN_MODES:
        raise ValueError(
            f"Please give strain as one of {STRAIN_MODES} (got {strain!r})."
        )
    check_noise(noise)
    pdf = load_pdf(gr, qmax=qmax, qdamp=qdamp, qmin=qmin)
    common = dict(element=element, fit_range=fit_range, noise=noise)
    with warnings.catch_warnings():
        # one fit-quality warning, for the final ranking
        warnings.simplefilter("ignore", FitQualityWarning)
        proposals = propose_structures(
            pdf,
            model=model,
            library=library,
            top=max(top, N_PROPOSALS),
            seed=seed,
            strain=strain is not False,
            **common,
        )
        if max_atoms > DECODER_MAX_ATOMS:
            mined = mine_library(
                pdf,
                library="large",
                top=LARGE_STARTS,
                progress=False,
                strain=strain is not False,
                **common,
            )
            proposals += [c for c in mined if c.n_atoms <= max_atoms]
    proposals.sort(key=lambda c: c.rw)
    best = proposals[0]
    sigma = noise
    if sigma is None:
        sigma = white_noise(best.r, best.gobs, best.params.qmax)
    # the best distinct proposals of a family (the "large" library and
    # the model's may hold one particle)
    eligible = [
        c for c in proposals if family_of(c.type) and c.n_atoms <= max_atoms
    ]
    if strain == "auto":
        starts = _auto_starts(eligible, n_starts)
    else:
        distinct = distinct_geometries([c.xyz for c in eligible])
        starts = [eligible[k] for k in distinct][:n_starts]
    # qdamp and the particle size both damp G: refine qdamp unless known
    fit_qdamp = qdamp is None and pdf.qdamp is None
    # numpy releases the GIL in the heavy parts of the scans and searches
    with worker_pool() as threads:
        rebuilt = threads.map(
            lambda start: _rebuilt(start, fit_qdamp, max_atoms), starts
        )
        origins = _origins([o for found in rebuilt for o in found])
    if callable(progress):
        report = progress
    else:
        report = _text_progress(len(origins)) if progress else None

    # the first origin (in rank order) whose search settled, its misfit
    # below the noise: the searches of the later ones are no longer
    # needed and end, and their results are dropped whenever they
    # finished, so that the result does not depend on the threads' timing
    first_settled = [len(origins)]
    lock = threading.Lock()

    def solve(k: int, origin: _Origin) -> Candidate | None:
        moves = None if report is None else (lambda m, _: report(k, m))
        start = origin.start
        large = start.n_atoms > DECODER_MAX_ATOMS
        try:
            result = site_search(
                origin.xyz,
                _family(start),
                start.r,
                start.gobs,
                origin.params,
                uiso=origin.uiso,
                noise=sigma,
                max_atoms=max_atoms,
                fit_qdamp=fit_qdamp,
                strains=_strains(start, strain),
                seed=seed,
                max_moves=LARGE_MOVES if large else MAX_MOVES,
                rules=(ONE_RULE if start.n_atoms > ONE_RULE_ATOMS else RULES),
                progress=moves,
                stop=lambda: first_settled[0] < k,
            )
        except OffSitesError:
            return None  # a decode that does not sit on its family's sites
        if result.settled:
            with lock:
                first_settled[0] = min(first_settled[0], k)
        if origin.path:
            result.path[:1] = origin.path
        return _solved(start, result, fit_qdamp)

    with worker_pool() as threads:
        results = list(threads.map(solve, range(len(origins)), origins))
    solved = [c for c in results[: first_settled[0] + 1] if c]
    if report is not None:
        sys.stderr.write("\n")
    # the stacking model's solutions with every sequence of their layers:
    # a layer that the search added continued the stacking one way
    solved += [
        new
        for c in solved
        if c.model == "stacking"
        for new in restack(c, c.r, c.gobs, c.params)
    ]
    candidates = proposals + solved
    if best.type_rw:
        type_rw = dict(best.type_rw)
        for c in candidates:
            if c.type:
                type_rw[c.type] = min(c.rw, type_rw.get(c.type, math.inf))
        weigh_types(candidates, type_rw, best.params, noise)
    answer = ranked(candidates, top, sigma)
    best_solved = next((c for c in answer if c.source == "solved"), None)
    if best_solved and max(s.n_atoms for s in best_solved.path) >= max_atoms:
        warnings.warn(
            f"The search of the best solution ({best_solved.n_atoms} "
            f"atoms) reached max_atoms={max_atoms}: the particle may be "
            "larger; please try a larger max_atoms (up to 2000).",
            MaxAtomsWarning,
        )
    return answer


class MaxAtomsWarning(UserWarning):
    """The search of the best solved candidate reached ``max_atoms``."""


def _auto_starts(eligible: list[Candidate], n_starts: int) -> list[Candidate]:
    """The starts of ``strain="auto"``.

    The proposals come refitted with a strain where the data support
    it.  The starts are the ``n_starts`` best distinct ones by their fits
    without a strain (a strain lowers the misfit of every shape, the
    wrong ones' too), each strained where its strain lowers Rw by
    :data:`STRAIN_MARGIN` at least, plus the proposal that fits best
    strained so, when it is not one of them.
    """
    with worker_pool() as threads:
        plain = list(threads.map(unstrained, eligible))
    order = sorted(range(len(plain)), key=lambda k: plain[k].rw)
    distinct = distinct_geometries([plain[k].xyz for k in order])
    distinct = [order[i] for i in distinct]
    gains = [
        k
        for k in distinct
        if eligible[k].strain is not None
        and eligible[k].rw <= (1 - STRAIN_MARGIN) * plain[k].rw
    ]
    picked = distinct[:n_starts]
    best = min(gains, key=lambda k: eligible[k].rw, default=None)
    if best is not None and best not in picked:
        picked.append(best)
    return [eligible[k] if k in gains else plain[k] for k in picked]


def _strains(start: Candidate, strain: bool | str) -> tuple[bool, ...]:
    """How a start is searched: unstrained and/or strained (``strains``
    of :func:`~diffpy.deepstruc.sitesearch.site_search`)."""
    if strain == "auto":
        return (start.strain is not None,)
    return (False, True) if strain else (False,)


def _family(start: Candidate) -> str:
    """The site-search family of a start: the stacking model's
    proposals are searched on their own close-packed layers."""
    if start.model == "stacking" and start.stacking is not None:
        return STACKED
    return family_of(start.type)


@dataclasses.dataclass(frozen=True)
class _Origin:
    """Where a search begins: a start, or the prism or cut it was
    rebuilt as (its coordinates in Å, fitted parameters and Uiso, its
    Rw, the first steps of its path, empty for the start itself, and
    whether it is a cut)."""

    start: Candidate
    xyz: np.ndarray
    params: DebyeParameters
    uiso: float
    rw: float
    path: tuple = ()
    cut: bool = False


def _rebuilt(start: Candidate, fit_qdamp: bool, max_atoms: int) -> list:
    """The origins of the searches from one start.

    A close-packed start of the stacking model is searched as the prism
    that fits best (:func:`~diffpy.deepstruc.prisms.prism_search`) when
    that fits better; a lattice start of at most ``DECODER_MAX_ATOMS``
    as it is, and its cut that fits best
    (:func:`~diffpy.deepstruc.cuts.cut_scan`) is offered too when that
    fits better (:func:`_origins`); any other start as it is.
    """
    xyz, family = unstrained_xyz(start), _family(start)
    own = _Origin(start, xyz, start.params, start.uiso, start.rw)
    data = (start.r, start.gobs, start.params)
    common = dict(uiso=start.uiso, fit_qdamp=fit_qdamp, max_atoms=max_atoms)
    if family == STACKED:
        move, jump = "prism", prism_search(xyz, *data, **common)
    elif family in CUT_FAMILIES and start.n_atoms <= DECODER_MAX_ATOMS:
        move, jump = "cut", cut_scan(xyz, family, *data, **common)
    else:
        return [own]
    if jump is None or jump.rw >= start.rw:
        return [own]
    change = jump.n_atoms - start.n_atoms
    path = (
        SearchStep("start", 0, 0, start.n_atoms, start.rw),
        SearchStep(
            move, max(change, 0), max(-change, 0), jump.n_atoms, jump.rw
        ),
    )
    cut = move == "cut"
    rebuilt = _Origin(
        start, jump.xyz, jump.params, jump.uiso, jump.rw, path, cut
    )
    return [own, rebuilt] if cut else [rebuilt]


def _origins(found: list) -> list:
    """The origins searched, best fit first.

    Every start (or its prism), and the :data:`CUT_STARTS` best cuts
    that differ from them and from each other in geometry
    (:func:`~diffpy.deepstruc.plausibility.distinct_geometries`): a cut
    is often another start, or another start's cut, whose search would
    repeat that one's, and a cut must not crowd out a start of another
    family.
    """
    kept = [o for o in found if not o.cut]
    cuts = sorted((o for o in found if o.cut), key=lambda o: o.rw)
    distinct = distinct_geometries([o.xyz for o in kept + cuts])
    cuts = [cuts[k - len(kept)] for k in distinct if k >= len(kept)]
    return sorted(kept + cuts[:CUT_STARTS], key=lambda o: o.rw)


def _solved(start: Candidate, result, fit_qdamp: bool) -> Candidate:
    """The searched structure as a fitted candidate.

    A strain that the search kept is refined once more, from the
    search's (its coordinates hold it).
    """
    fit = fit_cluster(
        result.xyz,
        start.r,
        start.gobs,
        result.params,
        uiso=start.uiso,
        fit_qdamp=fit_qdamp,
        fit_strain=result.strain is not None,
        strain=np.zeros((3, 3)),
    )
    return dataclasses.replace(
        start,
        xyz=result.xyz @ fit.deformation.T,
        rw=fit.rw,
        scale=fit.scale,
        zoom=fit.zoom,
        uiso=fit.uiso,
        gcalc=fit.gcalc,
        params=dataclasses.replace(result.params, qdamp=fit.qdamp),
        latent=np.full(2, math.nan),
        sigma=math.nan,
        source="solved",
        label="",
        rank=0,
        flags=(),
        path=tuple(result.path),
        strain=None if result.strain is None else result.strain + fit.strain,
    )
