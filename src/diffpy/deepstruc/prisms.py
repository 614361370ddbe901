"""Prism search: close-packed particles cut from one in-plane outline.

A close-packed particle is a stack of layers, and in a faceted particle
(and in the generated stacking library) every layer is cut from one
in-plane outline: each layer holds the sites of its registry (A, B or
C) inside the outline.  Such a particle is set by few numbers: the
sequence of registries and the outline, here the distances of its
edges from the lattice origin along ``N_NORMALS`` (12) in-plane
directions 30° apart, which give triangles, hexagons, their truncated
forms and near-round outlines (a 12-gon).  Each edge distance lies
midway between two consecutive projections of lattice sites, so no edge
passes through a site.

:func:`prism_search` fits those numbers to the data from a
close-packed start (a decode of the stacking model, say), where a site
search from the start (:mod:`diffpy.deepstruc.sitesearch`) trades atoms
one at a time and stays near its start:

1. **Scan.**  The start's outline (the hull of all its layers, and the
   median layer) is scaled by each of ``SCALES`` about the origin and
   stacked in each number of layers from ``MIN_LAYERS`` to
   ``MAX_LAYERS``, the start's sequence cut at its ends or continued
   (fcc-like or hcp-like); the prism that fits best (scale fitted, zoom
   and Uiso of the start) goes on.  Layer count and width trade against
   each other in the PDF, and a start's layer count is often wrong.
2. **Descent.**  The move that lowers Rw most: one edge out or in by
   one row of sites, a layer added to either end (at either registry) or
   removed, and a layer added (removed) with every edge in (out) by one
   row, which keeps the atom count; scale, zoom and Uiso (and qdamp)
   refitted every ``REFIT_EVERY`` moves and when no move helps
   (:func:`~diffpy.deepstruc.fitting.fit_cluster`).
3. **Sequence.**  Every sequence of the layers (three registries for
   the first, then each layer one of the two others than the layer
   below: ``3 * 2**(n - 1)``) is cut from the outline; a better one is
   taken and the descent repeated, up to ``ROUNDS`` times.

Unlike :mod:`diffpy.deepstruc.restacking`, which translates a
candidate's layers, each new sequence cuts its layers from the outline
at their own registries, as the particles are built.  The search is
deterministic.  It cannot represent particles whose layers differ in
outline (a cuboctahedron's, say): ``solve`` searches the prism's sites
afterwards (:func:`~diffpy.deepstruc.sitesearch.site_search`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np

from diffpy.deepstruc.debye import DebyeParameters, simulate_pdfs
from diffpy.deepstruc.fitting import fit_cluster, scale_and_rw
from diffpy.deepstruc.stacking import (
    _CELL,
    _SHIFT,
    LAYER_SPACING,
    MAX_LAYERS,
    MIN_LAYERS,
    REGISTRIES,
    _circular_mean,
    stacking_layers,
)

__all__ = ["PrismResult", "prism_search"]

#: In-plane directions of the outline's edges, 30° apart.
N_NORMALS = 12
#: Factors of the start's outline tried by the scan.
SCALES = tuple(np.round(np.arange(0.5, 1.85, 0.1), 2))
#: Accepted moves of a descent between refits of zoom, Uiso and qdamp.
REFIT_EVERY = 3
#: Most accepted moves in all.
MAX_MOVES = 200
#: Most rounds of descent and sequence choice.
ROUNDS = 4
#: Relative Rw gain below which a move or a sequence is not taken.
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
        directions 0°, 30°, ..., 330°.
    scanned : int
        Prisms whose PDF was computed.
    moves : int
        Accepted moves of the descents and sequence changes.
    """

    xyz: np.ndarray
    rw: float
    params: DebyeParameters
    uiso: float
    sequence: str
    outline: tuple[float, ...]
    scanned: int
    moves: int

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.xyz)


class _Lattice:
    """Sites of the three registries in the plane and the outlines
    that they allow.

    ``edges[j]`` holds the distinct projections of the sites on normal
    j; an outline is one index into each, and keeps the sites that
    project at or below those values.
    """

    def __init__(self, reach: int):
        steps = np.arange(-reach, reach + 1)
        ij = np.stack(np.meshgrid(steps, steps), -1).reshape(-1, 2)
        self.points = [ij @ _CELL + k * _SHIFT for k in range(3)]
        self.heights = [p @ _NORMALS.T for p in self.points]
        every = np.vstack(self.heights)
        self.edges = [np.unique(np.round(h, 6)) for h in every.T]

    def index(self, heights: np.ndarray) -> np.ndarray:
        """The outline that holds sites projecting up to ``heights``."""
        return np.array(
            [
                min(np.searchsorted(e, h - 1e-6), len(e) - 1)
                for e, h in zip(self.edges, heights)
            ]
        )

    def bounds(self, outline: np.ndarray) -> np.ndarray:
        return np.array([e[k] for e, k in zip(self.edges, outline)])

    def layer(self, registry: int, outline: np.ndarray) -> np.ndarray:
        """In-plane sites of one registry inside an outline."""
        inside = self.heights[registry] <= self.bounds(outline) + 1e-6
        return self.points[registry][inside.all(axis=1)]

    def build(self, registries, outline: np.ndarray) -> np.ndarray:
        """The prism (units of d) of these registries and outline."""
        layers = []
        for k, registry in enumerate(registries):
            plane = self.layer(registry, outline)
            height = np.full((len(plane), 1), k * LAYER_SPACING)
            layers.append(np.hstack([plane, height]))
        return np.vstack(layers)

    def shifted(self, outline: np.ndarray, step: int) -> np.ndarray:
        """Every edge moved out (``step`` 1) or in (-1) by one row."""
        top = np.array([len(e) - 1 for e in self.edges])
        return np.clip(outline + step, 0, top)


class _Fit:
    """Zoom, Uiso and instrument parameters of the prisms, and their Rw."""

    def __init__(self, r, g, params, unit, uiso, fit_qdamp):
        self.r, self.g, self.params = r, g, params
        self.unit, self.uiso, self.fit_qdamp = unit, uiso, fit_qdamp
        self.scanned = 0

    def rw(self, prisms: list[np.ndarray]) -> np.ndarray:
        """Rw of each prism with the scale fitted."""
        self.scanned += len(prisms)
        _, g_calc = simulate_pdfs(
            [p * self.unit for p in prisms],
            self.r,
            params=self.params,
            uisos=self.uiso,
        )
        return scale_and_rw(self.g, g_calc)[1]

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
    # the origin of its lattice (an A site)
    d = math.sqrt(3.0) * float(np.linalg.norm(layers.step))
    unit_xyz = (xyz - xyz.mean(0)) @ layers.frame.T / d
    registries = [int(k) for k in layers.registry]
    plane = unit_xyz[:, :2] - np.outer(layers.registry[layers.layer], _SHIFT)
    origin = _circular_mean(plane @ np.linalg.inv(_CELL)) @ _CELL
    heights = (unit_xyz[:, :2] - origin) @ _NORMALS.T
    lattice = _Lattice(int(np.abs(unit_xyz).max() * 2) + 6)
    per_layer = [heights[layers.layer == k] for k in range(len(registries))]
    outlines = [
        heights.max(0),
        np.median([h.max(0) for h in per_layer], axis=0),
    ]
    fit = _Fit(
        np.asarray(r, dtype=float),
        np.asarray(g, dtype=float),
        params,
        d,
        params.uiso if uiso is None else uiso,
        fit_qdamp,
    )

    def allowed(sequence, outline) -> np.ndarray | None:
        prism = lattice.build(sequence, outline)
        sizes = [len(lattice.layer(k, outline)) for k in set(sequence)]
        if min(sizes) == 0 or len(prism) > limit:
            return None
        return prism

    def best_of(options):
        """The best allowed (sequence, outline) and its Rw, or None."""
        kept = {}
        for sequence, outline in options:
            key = (tuple(sequence), tuple(outline))
            if key not in kept:
                prism = allowed(sequence, outline)
                if prism is not None:
                    kept[key] = prism
        if not kept:
            return None
        rw = fit.rw(list(kept.values()))
        k = int(np.argmin(rw))
        sequence, outline = list(kept)[k]
        return list(sequence), np.array(outline), float(rw[k])

    scanned = best_of(
        (sequence, lattice.index(scale * outline))
        for n_layers in range(MIN_LAYERS, MAX_LAYERS + 1)
        for sequence in _resized(registries, n_layers)
        for outline in outlines
        for scale in SCALES
    )
    if scanned is None:
        return None
    sequence, outline, _ = scanned
    rw = fit.refit(lattice.build(sequence, outline))
    moves = 0
    for _ in range(ROUNDS):
        sequence, outline, rw, descended = _descend(
            lattice, fit, best_of, sequence, outline, rw, MAX_MOVES - moves
        )
        moves += descended
        choice = best_of((new, outline) for new in _sequences(len(sequence)))
        if choice is None or choice[2] >= rw * (1 - MIN_GAIN):
            break
        sequence = choice[0]
        rw = fit.refit(lattice.build(sequence, outline))
        moves += 1
    prism = lattice.build(sequence, outline) * fit.unit
    return PrismResult(
        prism - prism.mean(0),
        rw,
        fit.params,
        fit.uiso,
        "".join(REGISTRIES[k] for k in sequence),
        tuple(float(b) for b in lattice.bounds(outline)),
        fit.scanned,
        moves,
    )


def _descend(lattice, fit, best_of, sequence, outline, rw, max_moves):
    """Take the best move while one lowers Rw (see the module's step 2);
    return ``(sequence, outline, rw, moves)``."""
    moves = since_refit = 0
    while moves < max_moves:
        choice = best_of(_moves(lattice, sequence, outline))
        if choice is not None and choice[2] < rw * (1 - MIN_GAIN):
            sequence, outline, rw = choice
            moves += 1
            since_refit += 1
            if since_refit < REFIT_EVERY:
                continue
        elif not since_refit:
            break
        # zoom, Uiso and qdamp of the last fit may hide a better move
        rw = fit.refit(lattice.build(sequence, outline))
        since_refit = 0
    return sequence, outline, rw, moves


def _moves(lattice: _Lattice, sequence: list, outline: np.ndarray):
    """The (sequence, outline) one move away."""
    top = [len(e) - 1 for e in lattice.edges]
    for j in range(N_NORMALS):
        for step in (-1, 1):
            if 0 <= outline[j] + step <= top[j]:
                new = outline.copy()
                new[j] += step
                yield sequence, new
    wider, narrower = lattice.shifted(outline, 1), lattice.shifted(outline, -1)
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


def _sequences(n_layers: int):
    """Every sequence of registries without two equal neighbours."""
    for first in range(3):
        for turns in itertools.product((1, 2), repeat=n_layers - 1):
            yield [int(k) for k in np.cumsum((first,) + turns) % 3]
