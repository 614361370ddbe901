"""Prism search: close-packed particles cut from one in-plane outline.

A close-packed particle is a stack of layers, and in a faceted particle
(and in the generated stacking library) every layer is cut from one
in-plane outline: each layer holds the sites of its registry (A, B or
C) inside the outline.  Such a *prism* is set by few numbers: the
sequence of registries and the outline, here the distances of its
edges from the lattice origin along ``N_NORMALS`` (12) in-plane
directions 30° apart, which give triangles, hexagons, their truncated
forms and near-round outlines (a 12-gon), centred anywhere.  Each edge
lies at a projection of lattice sites, keeping the sites at or below
it; an edge that cuts off no site is released, so that each prism has
one outline.

:func:`prism_search` fits those numbers to the data from a
close-packed start (a decode of the stacking model, say), where a site
search from the start (:mod:`diffpy.deepstruc.sitesearch`) trades atoms
one at a time and stays near its start.  Every prism is scored by its
Rw with the scale fitted, at the zoom and Uiso (and qdamp) of the last
full fit (:func:`~diffpy.deepstruc.fitting.fit_cluster`), many at once
(:func:`~diffpy.deepstruc.debye.simulate_pdfs`):

1. **Scan.**  The start is fitted; its outline (the hull of all its
   layers, the median layer, and that made 3-fold and 6-fold symmetric)
   is scaled by each of ``SCALES`` about the origin and stacked in each
   number of layers from ``MIN_LAYERS`` to ``MAX_LAYERS``, the start's
   sequence cut at alternate ends or continued (fcc-like or hcp-like)
   at each of the three registry steps.  Then every sequence of the
   ``SCAN_SHAPES`` best layer counts and outlines is tried.  Layer count
   and width trade against each other in the PDF, and a start's layer
   count is often wrong.
2. **Beam search.**  The ``BEAM`` best prisms are kept; each step scores
   every move of each of them and keeps the best of all.  The moves:
   one edge out or in by one row of sites (a released edge in to cut
   the outermost row), alone or with the opposite edge the other way (a
   shift); the three edges of a 3-fold orbit, or every edge, out or in;
   the outline moved by one registry step, and its sites' extent made
   3-fold or 6-fold symmetric (each orbit rounded down or up); a layer
   added to either end (at either registry) or removed, also with every
   edge in or out, which keeps the atom count.  Zoom, Uiso (and qdamp)
   are refitted to the best prism every ``REFIT_EVERY`` steps.
3. **Sequence.**  When ``PATIENCE`` steps found nothing better, every
   sequence of the best prism's layers (three registries for the first,
   then each layer one of the two others than the layer below:
   ``3 * 2**(n - 1)``) is cut from its outline; a better one joins the
   beam and the search goes on, up to ``ROUNDS`` times.

Unlike :mod:`diffpy.deepstruc.restacking`, which translates a
candidate's layers, each new sequence cuts its layers from the outline
at their own registries, as the particles are built.  Prisms of equal
Rw are the same particle (turned over, or relabelled) and are kept
once.  The search is deterministic.  It cannot represent particles
whose layers differ in outline (a cuboctahedron's, say): ``solve``
searches the prism's sites afterwards
(:func:`~diffpy.deepstruc.sitesearch.site_search`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np

from diffpy.deepstruc.debye import DebyeParameters
from diffpy.deepstruc.fitting import batch_rw, fit_cluster
from diffpy.deepstruc.stacking import (
    _CELL,
    _SHIFT,
    LAYER_SPACING,
    MAX_LAYERS,
    MIN_LAYERS,
    REGISTRIES,
    registry_sequences,
    stacking_layers,
)

__all__ = ["PrismResult", "prism_search"]

#: In-plane directions of the outline's edges, 30° apart.
N_NORMALS = 12
#: Factors of the start's outline tried by the scan.
SCALES = tuple(np.round(np.arange(0.5, 1.85, 0.1), 2))
#: Sites beyond the widest outline of the scan (units of d), for the
#: moves.
REACH = 4.0
#: Best layer counts and outlines of the scan whose every sequence is
#: tried.
SCAN_SHAPES = 3
#: Prisms kept by the beam search.
BEAM = 4
#: Steps of the beam search between refits of zoom, Uiso and qdamp.
REFIT_EVERY = 3
#: Steps without gain before the search ends (or takes a new sequence).
PATIENCE = 3
#: Most steps of the beam search.
MAX_STEPS = 100
#: Most choices of the best sequence.
ROUNDS = 4
#: Relative Rw gain below which a step or a sequence gains nothing.
MIN_GAIN = 1e-4

_ANGLES = np.radians(30.0 * np.arange(N_NORMALS))
_NORMALS = np.column_stack([np.cos(_ANGLES), np.sin(_ANGLES)])


@dataclass(frozen=True)
class PrismResult:
    """Outcome of :func:`prism_search`.

    Attributes
    ----------
    xyz : numpy.ndarray
        ``(n_atoms, 3)`` coordinates in Å of the best prism, centred,
        its layers normal to z, at the fitted zoom.
    rw : float
        Its Rw with scale, zoom and Uiso (and qdamp) fitted.
    params : DebyeParameters
        Instrument parameters of the fit (qdamp refined with
        ``fit_qdamp``).
    uiso : float
        Fitted Uiso (Å²).
    sequence : str
        Registries of its layers, bottom to top, e.g. ``"ABCB"``.
    outline : tuple of float
        Distances (units of the nearest-neighbour distance) of the
        outline's edges from the lattice origin, along the in-plane
        directions 0°, 30°, ..., 330°; inf for an edge that cuts off no
        site.
    scanned : int
        Prisms whose PDF was computed.
    steps : int
        Steps of the beam search.
    """

    xyz: np.ndarray
    rw: float
    params: DebyeParameters
    uiso: float
    sequence: str
    outline: tuple[float, ...]
    scanned: int
    steps: int

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.xyz)


class _Lattice:
    """Sites of the three registries in the plane and the outlines
    that they allow.

    ``edges[j]`` holds the distinct projections of the sites on normal
    j; an outline is one index into each, and keeps the sites whose
    projections are at or below those values (``ranks[registry]`` holds
    the index of each site's projections).  An edge at its last index
    (``top``) cuts off nothing: it is released.
    """

    def __init__(self, radius: float):
        reach = int(math.ceil(radius * 2 / math.sqrt(3))) + 1
        steps = np.arange(-reach, reach + 1)
        ij = np.stack(np.meshgrid(steps, steps), -1).reshape(-1, 2)
        self.points = []
        for k in range(3):
            points = ij @ _CELL + k * _SHIFT
            within = np.einsum("ij,ij->i", points, points) <= radius**2
            self.points.append(points[within])
        heights = [p @ _NORMALS.T for p in self.points]
        every = np.vstack(heights)
        self.edges = [np.unique(np.round(h, 6)) for h in every.T]
        self.top = np.array([len(e) - 1 for e in self.edges])
        self.ranks = [
            np.column_stack(
                [np.searchsorted(e, h - 1e-6) for e, h in zip(self.edges, h.T)]
            )
            for h in heights
        ]
        # layers and canonical outlines met before
        self.layers: dict = {}
        self.outlines: dict = {}

    def index(self, heights: np.ndarray) -> np.ndarray:
        """The outline that holds sites projecting up to ``heights``."""
        return np.array(
            [
                min(np.searchsorted(e, h - 1e-6), len(e) - 1)
                for e, h in zip(self.edges, heights)
            ]
        )

    def rounded(self, heights: np.ndarray) -> list[np.ndarray]:
        """The outlines of a symmetric ``heights`` (equal on the edges of
        an orbit) with each orbit's edges rounded down or up to the
        sites' projections."""
        below = [
            max(np.searchsorted(e, h + 1e-6, side="right") - 1, 0)
            for e, h in zip(self.edges, heights)
        ]
        choices = [np.array(below), self.index(heights)]
        orbits = np.unique(np.round(heights, 6), return_inverse=True)[1]
        n_orbits = orbits.max() + 1
        return [
            np.choose(np.array(pick)[orbits], choices)
            for pick in itertools.product((0, 1), repeat=n_orbits)
        ]

    def bounds(self, outline) -> np.ndarray:
        """The distances of an outline's edges (inf where released)."""
        return np.array(
            [
                math.inf if k == top else e[k]
                for e, k, top in zip(self.edges, outline, self.top)
            ]
        )

    def inside(self, registry: int, outline) -> np.ndarray:
        """Which sites of one registry lie inside an outline."""
        return (self.ranks[registry] <= np.asarray(outline)).all(axis=1)

    def layer(self, registry: int, outline) -> np.ndarray:
        """In-plane sites of one registry inside an outline."""
        key = (registry, tuple(int(k) for k in outline))
        if key not in self.layers:
            self.layers[key] = self.points[registry][self.inside(*key)]
        return self.layers[key]

    def extent(self, registries, outline) -> np.ndarray:
        """The outline of the largest projection on each normal of the
        sites of these registries inside an outline (a non-empty one)."""
        ranks = np.vstack(
            [self.ranks[k][self.inside(k, outline)] for k in set(registries)]
        )
        return ranks.max(0)

    def canonical(self, registries, outline) -> tuple[int, ...] | None:
        """One outline per prism: each edge that alone cuts off no site
        of these registries released, in turn; None when a registry has
        no site inside."""
        key = (frozenset(registries), tuple(int(k) for k in outline))
        if key not in self.outlines:
            self.outlines[key] = self._canonical(*key)
        return self.outlines[key]

    def _canonical(self, registries, outline) -> tuple[int, ...] | None:
        outline = np.array(outline)
        ranks = [self.ranks[k] for k in set(registries)]
        beyond = [r > outline for r in ranks]
        if any(b.any(axis=1).all() for b in beyond):
            return None
        cuts = [b.sum(axis=1) for b in beyond]
        for j in range(N_NORMALS):
            if outline[j] == self.top[j]:
                continue
            if not any(
                (b[:, j] & (c == 1)).any() for b, c in zip(beyond, cuts)
            ):
                outline[j] = self.top[j]
                for b, c in zip(beyond, cuts):
                    c -= b[:, j]
                    b[:, j] = False
        return tuple(int(k) for k in outline)

    def build(self, registries, outline) -> np.ndarray:
        """The prism (units of d) of these registries and outline."""
        layers = []
        for k, registry in enumerate(registries):
            plane = self.layer(registry, outline)
            height = np.full((len(plane), 1), k * LAYER_SPACING)
            layers.append(np.hstack([plane, height]))
        return np.vstack(layers)


class _Fit:
    """Zoom, Uiso and instrument parameters of the prisms, and their Rw."""

    def __init__(self, r, g, params, unit, uiso, fit_qdamp):
        self.r, self.g, self.params = r, g, params
        self.unit, self.uiso, self.fit_qdamp = unit, uiso, fit_qdamp
        self.scanned = 0

    def rw(self, prisms: list[np.ndarray]) -> np.ndarray:
        """Rw of each prism with the scale fitted."""
        self.scanned += len(prisms)
        return batch_rw(
            [p * self.unit for p in prisms],
            self.r,
            self.g,
            self.params,
            self.uiso,
        )

    def refit(self, prism: np.ndarray) -> float:
        """Refit zoom and Uiso (and qdamp) to a prism; its Rw."""
        fit = fit_cluster(
            prism * self.unit,
            self.r,
            self.g,
            self.params,
            uiso=self.uiso,
            fit_qdamp=self.fit_qdamp,
        )
        self.unit *= fit.zoom
        self.uiso = fit.uiso
        self.params = dataclasses.replace(self.params, qdamp=fit.qdamp)
        return fit.rw


def prism_search(
    xyz: np.ndarray,
    r: np.ndarray,
    g: np.ndarray,
    params: DebyeParameters | None = None,
    *,
    uiso: float | None = None,
    fit_qdamp: bool = False,
    max_atoms: int | None = None,
) -> PrismResult | None:
    """The prism of layers cut from one outline that fits the data best.

    Parameters
    ----------
    xyz : numpy.ndarray
        ``(n_atoms, 3)`` coordinates in Å of a close-packed start, about
        at the data's scale.
    r, g : numpy.ndarray
        The data in the fit range.
    params : DebyeParameters, optional
        Instrument parameters; the defaults when None.
    uiso : float, optional
        Starting Uiso in Å², by default ``params.uiso``.
    fit_qdamp : bool
        Refine qdamp with zoom and Uiso.
    max_atoms : int, optional
        Most atoms of a prism; no limit when None.

    Returns
    -------
    PrismResult or None
        The best prism found, or None when the start is not close-packed.
    """
    params = params or DebyeParameters()
    xyz = np.asarray(xyz, dtype=float)
    layers = stacking_layers(xyz)
    if layers is None:
        return None
    limit = max_atoms or math.inf
    # the start in units of d, in the frame of its layers, relative to
    # the origin of its lattice
    unit_xyz, d, origin = layers.in_frame(xyz)
    registries = [int(k) for k in layers.registry]
    heights = (unit_xyz[:, :2] - origin) @ _NORMALS.T
    radius = np.linalg.norm(unit_xyz[:, :2] - origin, axis=1).max()
    lattice = _Lattice(max(SCALES) * radius + REACH)
    per_layer = [heights[layers.layer == k] for k in range(len(registries))]
    median = np.median([h.max(0) for h in per_layer], axis=0)
    outlines = [heights.max(0), median] + [
        _symmetric(median, fold) for fold in (3, 6)
    ]
    fit = _Fit(
        np.asarray(r, dtype=float),
        np.asarray(g, dtype=float),
        params,
        d,
        params.uiso if uiso is None else uiso,
        fit_qdamp,
    )

    # the start's zoom and Uiso, for the scan
    fit.refit(unit_xyz)

    def rated(options, known=()) -> list[tuple[float, tuple, tuple]]:
        """``(rw, sequence, outline)`` of the allowed options, not those
        ``known``, best first (as tuples)."""
        new = {}
        for sequence, outline in options:
            outline = lattice.canonical(sequence, outline)
            key = (tuple(sequence), outline)
            if outline is None or key in known or key in new:
                continue
            prism = lattice.build(*key)
            if len(prism) <= limit:
                new[key] = prism
        if not new:
            return []
        rw = fit.rw(list(new.values()))
        return _distinct(sorted(zip(rw, *zip(*new))))

    scanned = rated(
        (sequence, lattice.index(scale * outline))
        for n_layers in range(MIN_LAYERS, MAX_LAYERS + 1)
        for resized in _resized(registries, n_layers)
        for shift in range(3)
        for sequence in [[(k + shift) % 3 for k in resized]]
        for outline in outlines
        for scale in SCALES
    )
    if not scanned:
        return None
    # every sequence of the best few layer counts and outlines
    shapes = list(dict.fromkeys((len(s), o) for _, s, o in scanned))
    for n_layers, outline in shapes[:SCAN_SHAPES]:
        scanned += rated((new, outline) for new in _sequences(n_layers))
    beam = _distinct(sorted(scanned))[:BEAM]
    fit.refit(lattice.build(*beam[0][1:]))
    beam = _rerated(fit, lattice, beam)
    best, stale, steps, rounds, known = beam[0], 0, 0, 0, set()
    while steps < MAX_STEPS:
        steps += 1
        # the moves of the beam's prisms not made before
        known.update(tuple(state) for _, *state in beam)
        moves = rated(
            (
                move
                for _, sequence, outline in beam
                for move in _moves(lattice, list(sequence), np.array(outline))
            ),
            known,
        )
        beam = sorted(beam + moves)[:BEAM]
        if steps % REFIT_EVERY == 0:
            fit.refit(lattice.build(*beam[0][1:]))
            beam = _rerated(fit, lattice, beam)
        if beam[0][0] < best[0] * (1 - MIN_GAIN):
            best, stale = beam[0], 0
            continue
        stale += 1
        if stale <= PATIENCE:
            continue
        if rounds == ROUNDS:
            break
        # every sequence of the best prism's layers, cut from its outline
        rounds += 1
        _, sequence, outline = best
        fit.refit(lattice.build(sequence, outline))
        best = _rerated(fit, lattice, [best])[0]
        orders = rated((new, outline) for new in _sequences(len(sequence)))
        if not orders or orders[0][0] >= best[0] * (1 - MIN_GAIN):
            break
        best, stale = orders[0], 0
        beam = sorted(_rerated(fit, lattice, beam) + orders)[:BEAM]
    _, sequence, outline = best
    prism = lattice.build(sequence, outline)
    rw = fit.refit(prism)
    prism = prism * fit.unit
    return PrismResult(
        prism - prism.mean(0),
        rw,
        fit.params,
        fit.uiso,
        "".join(REGISTRIES[k] for k in sequence),
        tuple(float(b) for b in lattice.bounds(np.array(outline))),
        fit.scanned,
        steps,
    )


def _rerated(fit: _Fit, lattice: _Lattice, states: list) -> list:
    """``(rw, sequence, outline)`` of the states at the current fit."""
    rw = fit.rw([lattice.build(*state) for _, *state in states])
    return _distinct(
        sorted([(v, *state) for v, (_, *state) in zip(rw, states)])
    )


def _distinct(states: list) -> list:
    """Sorted ``(rw, ...)`` states less those of the same Rw as the one
    before: the same particle (turned over, or with its registries
    relabelled) of another sequence and outline."""
    return [
        (float(state[0]), *state[1:])
        for k, state in enumerate(states)
        if k == 0 or not math.isclose(state[0], states[k - 1][0], rel_tol=1e-9)
    ]


def _moves(lattice: _Lattice, sequence: list, outline: np.ndarray):
    """The (sequence, outline) one move away."""
    top = lattice.top
    extent = lattice.extent(sequence, outline)
    # each edge out or in by one row (a released edge in to cut the
    # outermost row), alone or with the opposite edge the other way (a
    # shift)
    bound = np.where(outline == top, extent, outline)
    for j in range(N_NORMALS):
        opposite = (j + N_NORMALS // 2) % N_NORMALS
        for step in (-1, 1):
            if not 0 <= bound[j] + step <= top[j]:
                continue
            new = outline.copy()
            new[j] = bound[j] + step
            yield sequence, new
            if 0 <= bound[opposite] - step <= top[opposite]:
                new = new.copy()
                new[opposite] = bound[opposite] - step
                yield sequence, new
    # the three edges of each 3-fold orbit together
    for orbit in range(N_NORMALS // 3):
        edges = np.arange(orbit, N_NORMALS, N_NORMALS // 3)
        for step in (-1, 1):
            new = outline.copy()
            new[edges] = np.clip(bound[edges] + step, 0, np.take(top, edges))
            yield sequence, new
    # every edge that cuts off sites, out or in
    binding = outline < top
    wider = np.where(binding, np.minimum(outline + 1, top), top)
    narrower = np.where(binding, np.maximum(outline - 1, 0), top)
    yield sequence, wider
    yield sequence, narrower
    # the outline moved by one registry step (every layer on to the next
    # registry), and the extent of its sites made 3-fold or 6-fold
    # symmetric about the origin, at each registry step
    heights = np.array([e[k] for e, k in zip(lattice.edges, extent)])
    symmetric = [
        new
        for fold in (3, 6)
        for new in lattice.rounded(_symmetric(heights, fold))
    ]
    for shift in range(3):
        moved = [(k + shift) % 3 for k in sequence]
        if shift:
            yield moved, outline
        for new in symmetric:
            yield moved, new
    if len(sequence) > MIN_LAYERS:
        for shorter in (sequence[1:], sequence[:-1]):
            yield shorter, outline
            yield shorter, wider
    if len(sequence) < MAX_LAYERS:
        for registry in range(3):
            for longer in ([registry] + sequence, sequence + [registry]):
                if longer[0] != longer[1] and longer[-1] != longer[-2]:
                    yield longer, outline
                    yield longer, narrower


def _resized(registries: list, n_layers: int) -> list[list]:
    """The sequence cut to ``n_layers`` at alternate ends, or continued
    at alternate ends fcc-like and hcp-like (two sequences)."""
    resized = []
    for continued in ("fcc", "hcp"):
        sequence = list(registries)
        while len(sequence) > n_layers:
            sequence = sequence[1:] if len(sequence) % 2 else sequence[:-1]
        while len(sequence) < n_layers:
            if len(sequence) % 2:
                last, before = sequence[-1], sequence[-2]
            else:
                last, before = sequence[0], sequence[1]
            new = (2 * last - before) % 3 if continued == "fcc" else before
            if len(sequence) % 2:
                sequence.append(new)
            else:
                sequence.insert(0, new)
        resized.append(sequence)
    return resized


def _symmetric(heights: np.ndarray, fold: int) -> np.ndarray:
    """Edge distances averaged over the ``fold``-fold rotations."""
    orbits = heights.reshape(fold, N_NORMALS // fold)
    return np.tile(orbits.mean(0), fold)


def _sequences(n_layers: int):
    """Every sequence of registries without two equal neighbours."""
    sequences = registry_sequences(n_layers)
    for first in range(3):
        for sequence in (sequences + first) % 3:
            yield [int(k) for k in sequence]
