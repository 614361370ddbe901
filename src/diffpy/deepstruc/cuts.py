"""Cut scan: lattice particles cut by their facet planes about a centre.

An ideal block or polyhedron of a lattice (fcc, bcc, sc or hcp) holds
the sites within its facet planes: each facet of one orbit of the
family's facets (:func:`~diffpy.deepstruc.sitesearch.facet_orbits`) at
one distance from a centre, and the centre a point of the lattice with
some symmetry of its own: a site, or the centre of two, three or four
neighbouring sites (a bond, a triangle, a square or a tetrahedron).
ASE's cluster factories build blocks so.  Two such particles cut about
different centres differ on every side, and a site search from one,
which grows one facet or one orbit at a time about the start's own
centre, passes through worse fits to reach the other.  An hcp particle
is also cut as a block of n1 x n2 x n3 whole cells, as ASE's
``HexagonalClosedPacked`` builds it (and the MMNP library's hcp
shapes): its facets lie at three distances, not one per orbit, and a
block of other cell counts differs from it on most sides.

:func:`cut_scan` scores every such particle near a start at once:

1. the start is placed on its family's sites
   (:func:`~diffpy.deepstruc.sitesearch.align`) and fitted (zoom, Uiso,
   and qdamp when it is unknown);
2. the centres are the ``CENTRE_SITES`` sites nearest the start's
   centroid and the centres of every two to four of them within
   ``CENTRE_REACH`` of each other, within ``CENTRE_RADIUS`` of the
   centroid, one of each kind (the nearest of those alike, whose
   nearest sites lie at the same distances);
3. about each centre, each orbit's distance takes the ``HEIGHT_STEPS``
   distinct site heights along its normals nearest the start's own
   on either side (the start's own is the median of its facets'),
   and every combination of the orbits' distances cuts one particle;
4. the distinct particles with ``COUNT_RANGE`` times the start's atoms
   (and at most ``max_atoms``), and for hcp every block of whole
   cells with as many atoms, are scored by Rw with the scale fitted,
   at the start's zoom and Uiso, many at once
   (:func:`~diffpy.deepstruc.debye.simulate_pdfs`), and the ``REFITS``
   best are fitted in full (:func:`~diffpy.deepstruc.fitting.fit_cluster`).

``solve`` searches its starts
(:func:`~diffpy.deepstruc.sitesearch.site_search`) and, besides them,
the best of their cuts that fits better than its own start.  The scan
is deterministic.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np

from diffpy.deepstruc.debye import DebyeParameters
from diffpy.deepstruc.fitting import batch_rw, fit_cluster
from diffpy.deepstruc.sitesearch import (
    HCP_CELL,
    MIN_MATCHED,
    align,
    facet_normals,
    facet_orbits,
)

__all__ = ["CUT_FAMILIES", "CutResult", "cut_scan"]

#: Lattice families whose particles are cut.
CUT_FAMILIES = ("fcc", "bcc", "sc", "hcp")
#: Sites nearest the start's centroid from which the centres are made.
CENTRE_SITES = 12
#: Sites whose centre is a centre lie within this (units of d) of each
#: other: first neighbours, and the second of sc, bcc and fcc (a square's
#: diagonal, a cube's centre).
CENTRE_REACH = 1.5
#: Centres lie within this (units of d) of the start's centroid.
CENTRE_RADIUS = 1.0
#: Centres with the same distances to their nearest ENVIRONMENT sites
#: are alike (a symmetry of the lattice maps one onto the other); the
#: one nearest the start's centroid is kept.
ENVIRONMENT = 16
#: Distances tried on either side of the start's own, per orbit.
HEIGHT_STEPS = 2
#: Least and greatest atom count of a cut, relative to the start's.
COUNT_RANGE = (0.5, 2.0)
#: Best cuts fitted in full.
REFITS = 3
#: Sites within this (units of d) of a facet plane are on it.
PLANE_TOLERANCE = 0.05
#: Cuts scored by one batch (`~diffpy.deepstruc.fitting.batch_rw`).
BATCH = 256


@dataclass(frozen=True)
class CutResult:
    """The best cut particle.

    Attributes
    ----------
    xyz : numpy.ndarray
        ``(n_atoms, 3)`` coordinates in Å, centred.
    rw : float
        Rw of its full fit.
    params : DebyeParameters
        The start's parameters with the fitted qdamp.
    uiso : float
        Fitted Uiso (Å²).
    centre : numpy.ndarray
        The centre of the cut, in units of d, relative to the start's
        centroid.
    scanned : int
        Distinct cuts scored.
    """

    xyz: np.ndarray
    rw: float
    params: DebyeParameters
    uiso: float
    centre: np.ndarray
    scanned: int

    @property
    def n_atoms(self) -> int:
        return len(self.xyz)


def _centres(sites: np.ndarray, middle: np.ndarray) -> np.ndarray:
    """Sites near ``middle`` and the centres of two to four of them
    within ``CENTRE_REACH`` of each other, each once, near ``middle``."""
    near = np.argsort(np.linalg.norm(sites - middle, axis=1))[:CENTRE_SITES]
    points = sites[near]
    close = (
        np.linalg.norm(points[:, None] - points[None], axis=2)
        < CENTRE_REACH + 1e-6
    )
    centres = []
    for size in range(1, 5):
        for group in itertools.combinations(range(len(points)), size):
            if close[np.ix_(group, group)].all():
                centres.append(points[list(group)].mean(0))
    centres = np.array(centres)
    distance = np.linalg.norm(centres - middle, axis=1)
    kept, seen = [], set()
    for k in np.argsort(distance, kind="stable"):
        if distance[k] > CENTRE_RADIUS:
            break
        around = np.linalg.norm(sites - centres[k], axis=1)
        environment = tuple(np.round(np.sort(around)[:ENVIRONMENT], 3))
        if environment not in seen:
            seen.add(environment)
            kept.append(centres[k])
    return np.array(kept)


def _distances(heights: np.ndarray, own: float) -> np.ndarray:
    """The distinct heights nearest ``own`` on either side (and it)."""
    steps = np.unique(np.round(heights, 4))
    below = steps[steps < own - PLANE_TOLERANCE][-HEIGHT_STEPS:]
    above = steps[steps > own + PLANE_TOLERANCE][:HEIGHT_STEPS]
    return np.concatenate([below, [own], above])


def _cuts(sites, occupied, normals, orbits, centre, counts) -> list:
    """The distinct cuts about one centre, as boolean site masks."""
    heights = (sites - centre) @ normals.T
    own = heights[occupied].max(axis=0)
    choices = [
        _distances(heights[:, orbit], float(np.median(own[orbit])))
        for orbit in orbits
    ]
    cuts = []
    for distances in itertools.product(*choices):
        limit = np.zeros(len(normals))
        for orbit, distance in zip(orbits, distances):
            limit[orbit] = distance
        inside = (heights <= limit + PLANE_TOLERANCE).all(axis=1)
        if counts[0] <= inside.sum() <= counts[1]:
            cuts.append(inside)
    return cuts


def _hcp_blocks(middle, counts) -> list:
    """The blocks of whole hcp cells with ``counts`` atoms.

    A block of ``n`` cells holds the sites ``lo <= f < lo + n`` in cell
    coordinates ``f``, where ``lo`` along each of the two in-plane axes
    is one of the two site coordinates, 0 or 1/3: which of the cell's
    sites the block starts with makes up to four shapes for each ``n``
    (fewer when a side is one cell thick).  A mirror swaps the in-plane
    axes (so ``n[0] <= n[1]``, and one of ``lo`` = (0, 1/3) and
    (1/3, 0) when ``n[0] == n[1]``) and the 6_3 screw axis makes ``lo``
    along c indifferent (0).  Each block is shifted by a lattice vector
    to lie nearest ``middle``.
    """
    cell, motif = HCP_CELL
    to_cell = np.linalg.inv(cell)
    fractions = motif @ to_cell
    most = int(counts[1] // len(motif))
    blocks = []
    for a in range(1, most + 1):
        for b in range(a, most // a + 1):
            for c in range(1, most // (a * b) + 1):
                if len(motif) * a * b * c < counts[0]:
                    continue
                n = np.array([a, b, c])
                cells = np.stack(
                    np.meshgrid(
                        *[np.arange(-1, k + 1) for k in n], indexing="ij"
                    ),
                    -1,
                ).reshape(-1, 3)
                points = (cells[:, None, :] + fractions[None]).reshape(-1, 3)
                for lo in ((0, 0), (0, 1 / 3), (1 / 3, 0), (1 / 3, 1 / 3)):
                    if a == b and lo == (1 / 3, 0):
                        continue
                    low = np.array([*lo, 0]) - 1e-6
                    inside = ((points >= low) & (points < low + n)).all(1)
                    xyz = points[inside] @ cell
                    shift = np.round((middle - xyz.mean(0)) @ to_cell)
                    blocks.append(xyz + shift @ cell)
    return blocks


def cut_scan(
    xyz: np.ndarray,
    family: str,
    r: np.ndarray,
    g: np.ndarray,
    params: DebyeParameters | None = None,
    *,
    uiso: float | None = None,
    fit_qdamp: bool = False,
    max_atoms: int | None = None,
) -> CutResult | None:
    """The particle cut about a centre of the lattice that fits best.

    Parameters
    ----------
    xyz : numpy.ndarray
        ``(n_atoms, 3)`` coordinates in Å of the start, about at the
        data's scale.
    family : str
        One of :data:`CUT_FAMILIES`.
    r, g : numpy.ndarray
        The data in the fit range.
    params : DebyeParameters, optional
        Instrument parameters; the defaults when None.
    uiso : float, optional
        Starting Uiso in Å², by default ``params.uiso``.
    fit_qdamp : bool
        Refine qdamp with zoom and Uiso.
    max_atoms : int, optional
        Most atoms of a cut.

    Returns
    -------
    CutResult or None
        The best cut after its full fit; None when no cut other than the
        start's own atoms is in range, or when fewer than
        ``MIN_MATCHED`` (70 %) of the start's atoms lie on the family's
        sites (:func:`~diffpy.deepstruc.sitesearch.site_search` refuses
        such a start too).

    Raises
    ------
    ValueError
        For a family not in :data:`CUT_FAMILIES`.
    """
    if family not in CUT_FAMILIES:
        raise ValueError(
            f"Please give a family among {CUT_FAMILIES} (got {family!r})."
        )
    params = params or DebyeParameters()
    uiso = params.uiso if uiso is None else uiso
    sites, occupied, unit, matched = align(xyz, family)
    if matched < MIN_MATCHED:
        return None
    start = fit_cluster(
        sites[occupied] * unit, r, g, params, uiso=uiso, fit_qdamp=fit_qdamp
    )
    unit *= start.zoom
    params = dataclasses.replace(params, qdamp=start.qdamp)
    n_atoms = len(occupied)
    counts = (
        COUNT_RANGE[0] * n_atoms,
        min(COUNT_RANGE[1] * n_atoms, max_atoms or np.inf),
    )
    normals = facet_normals(family)
    orbits = facet_orbits(family)
    middle = sites[occupied].mean(0)
    cuts, seen = [], {tuple(np.sort(occupied))}
    for centre in _centres(sites, middle):
        for mask in _cuts(sites, occupied, normals, orbits, centre, counts):
            key = tuple(np.flatnonzero(mask))
            if key not in seen:
                seen.add(key)
                cuts.append((sites[mask], centre))
    if family == "hcp":
        blocks = _hcp_blocks(middle, counts)
        cuts += [(block, block.mean(0)) for block in blocks]
    if not cuts:
        return None
    rw = np.concatenate(
        [
            batch_rw(
                [cut * unit for cut, _ in cuts[k : k + BATCH]],
                r,
                g,
                params,
                start.uiso,
            )
            for k in range(0, len(cuts), BATCH)
        ]
    )
    best = None
    for k in np.argsort(rw, kind="stable")[:REFITS]:
        cut, centre = cuts[k][0] * unit, cuts[k][1]
        fit = fit_cluster(
            cut, r, g, params, uiso=start.uiso, fit_qdamp=fit_qdamp
        )
        if best is None or fit.rw < best[0].rw:
            best = (fit, cut, centre)
    fit, cut, centre = best
    cut = cut * fit.zoom
    return CutResult(
        cut - cut.mean(0),
        fit.rw,
        dataclasses.replace(params, qdamp=fit.qdamp),
        fit.uiso,
        centre - middle,
        len(cuts),
    )
