"""Site search: grow and trim a candidate on the sites of its family.

A candidate structure (a decode or a library shape) is placed on a
template of its structure family, built in units of the
nearest-neighbour distance: the fcc, bcc, sc or hcp lattice, a Mackay
icosahedron of more shells or a larger Ino decahedron, whose sites hold
those of every smaller cluster of the family (Marks decahedra and
truncated forms included).  :func:`align` finds the rotation, shift and
scale that put the candidate's atoms on template sites
(:func:`template` gives the sites); the sites within a few
nearest-neighbour distances of the candidate form the pool.  A
close-packed particle of any stacking (the ``"stacked"`` family, which
``solve`` uses for every proposal of the stacking model) is placed on
its own layers instead: each a triangular lattice at its registry, with
more layers beyond its ends (:func:`stacked_template`), so that the
search grows and trims it layer by layer and within its layers, keeping
its stacking.

:func:`site_search` then changes which pool sites are occupied, one
move at a time: of all moves below, the one that lowers the criterion
(below) most.  Two descents are made from each start (``RULES``): one
takes the move that lowers the criterion most in all, which moves whole
layers where they belong before single atoms roughen the surface; the
other the move that lowers it most per atom changed, which takes single
atoms (the vertices of an icosahedron, say) before a facet layer of
which only some should go.  The better result is kept.  (``rules=`` picks
the rules; ``solve`` searches starts of more than 500 atoms by the
first alone.)  The moves:

* add one atom on an empty site touching at least
  ``MIN_CONTACTS`` occupied sites, or remove one surface atom, all
  scored in one batch
  (:meth:`~diffpy.deepstruc.debye.IncrementalPDF.trial_rw`);
* add or remove a whole facet layer: the sites of the next plane beyond,
  or the atoms on, each facet of the convex hull of the atoms and each
  plane of the family's low-index normals (:func:`facet_normals`)
  through the outermost atoms, which cuts a vertex or an edge in one
  move (with any atom that would be left with fewer than
  ``MIN_CONTACTS`` neighbours, so that no change strands atoms);
* grow or trim every facet of one orbit at once (:func:`facet_orbits`:
  the six {100} facets of a cubic lattice, say, or the twelve vertices
  of an icosahedron), so that a block or polyhedron grows or shrinks
  evenly, where one facet at a time passes through worse fits (not in
  the ``"stacked"`` family, whose layers have their own moves);
* in the ``"stacked"`` family, grow or shrink the rim of one
  close-packed layer: its in-plane outline, which no facet of the whole
  particle changes;
* when none of these helps: move one surface atom to another site (the
  best removals, each followed by the best addition), or move a facet
  layer to another facet (the best layer removals and additions
  paired);
* scale, zoom and Uiso (and qdamp, with ``fit_qdamp``) are refitted
  every ``REFIT_EVERY`` accepted moves and whenever no move helps,
  before the moves of one atom or layer to another place are tried
  (:func:`~diffpy.deepstruc.fitting.fit_cluster`).  With ``fit_qdamp``,
  every move is scored by its best Rw over qdamp values around the last
  fitted one (``QDAMP_STEPS``): qdamp and the particle size both damp
  G, and a move judged at the qdamp fitted to the old size would be
  judged wrong.

A particle that is strained unevenly is searched with a homogeneous
strain of the sites (``strains``): each rule descends from the start
with a strain fitted to it (from a scan of uniaxial strains,
:func:`~diffpy.deepstruc.fitting.fit_cluster`), refitted whenever no
move helps.  Searched both ways, the unstrained and strained results
are compared by the criterion below, the strained ones with
``STRAIN_PARAMETERS`` more parameters, and the descents from the start
that fits better go first.  Without a strain, a search trades atoms for
the misfit of a strained particle; with one fitted to a start of the
wrong shape, it may strain an unstrained particle.

When no move helps, ``KICKS`` random changes (a facet layer or
``KICK_ATOMS`` atoms added or removed) are each followed by a new
descent, and the result is kept when it ends lower (an iterated local
search), to leave local minima.

The best result is then completed: atoms on sites that leave G the
same up to the scale (as a 5-atom square pyramid and the 6-atom
octahedron share G) and raise the mean coordination are added,
as the data cannot tell them and the more compact particle is the
likelier (``"complete"`` steps).

A descent also stops when its last ``STALL_MOVES`` moves lowered Rw by
less than ``STALL_GAIN`` (1 %) of it, and the whole search as soon as
a descent leaves its misfit below the noise (the first term of the
criterion below two standard deviations under the chi-square of white
noise; ``SearchResult.settled``): no other structure could then fit
significantly better.  On clean data that is the exact structure.

A move is accepted when it lowers the Bayesian information criterion

    BIC = n_eff Rw^2 sum(G^2) / (n sigma^2) + ln(n_eff) k,

where ``n`` data points over ``r_max - r_min`` hold
``n_eff = (r_max - r_min) Q_max / pi`` independent values (the
Nyquist-Shannon count), ``sigma`` is the noise of G and ``k`` the number
of parameters of the changes from the start: one per site whose
occupancy differs from the start, and ``GROUP_PARAMETERS`` (2) per
change of a group (a facet layer, a layer's rim), whose sites then
count from where it left them.  A group change is one choice among a few
dozen, not a choice per atom: charged per atom, a facet layer of 20
atoms would need a gain of 20 ln(n_eff), about 100, which noisy data of
a small particle never give.  Each change must so
lower the misfit by more than noise could; on noisy data the search stops
where further atoms are not supported, on clean data it stops when no
move lowers Rw.  A held-out r range would not do: every atom of a
finite particle contributes to G at all r up to its diameter.  The search
is deterministic: the same start, data and seed give the same result.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

from diffpy.deepstruc.debye import DebyeParameters, IncrementalPDF
from diffpy.deepstruc.fitting import (
    EQUAL_RW,
    QDAMP_BOUNDS,
    STRAIN_PARAMETERS,
    bic_weights,
    effective_points,
    fit_cluster,
)
from diffpy.deepstruc.stacking import (
    _CELL,
    _SHIFT,
    LAYER_SPACING,
    stacking_layers,
)

__all__ = [
    "FAMILIES",
    "OffSitesError",
    "SearchResult",
    "SearchStep",
    "align",
    "facet_normals",
    "facet_orbits",
    "family_of",
    "site_search",
    "stacked_template",
    "template",
]

#: Template families and the structure types (of the MMNP library and
#: the stacking classes) that belong to each.
FAMILIES = {
    "fcc": ("fcc", "octahedral"),
    "bcc": ("bcc",),
    "sc": ("sc",),
    "hcp": ("hcp",),
    "icosahedral": ("icosahedral",),
    "decahedral": ("decahedral",),
    "stacked": ("faulted",),
}
#: The family whose sites are a candidate's own close-packed layers.
STACKED = "stacked"
#: Layers of a stacked template beyond the candidate's, on each side.
EXTRA_LAYERS = 4
#: Sites closer than this (units of d) are first neighbours, which
#: :func:`align` matches; bcc's second neighbours lie at 1.155 d.
NEIGHBOUR_CUTOFF = {"bcc": 1.08}
DEFAULT_NEIGHBOUR_CUTOFF = 1.2
#: Atoms closer than this (units of d) hold each other in the search: in
#: bcc the second neighbours too (a corner of the 9-atom bcc cube has one
#: first neighbour and three second ones).
BOND_RADIUS = 1.2
#: An atom may be added where it has at least this many occupied sites
#: within :data:`CONTACT_RADIUS` d.
MIN_CONTACTS = 3
CONTACT_RADIUS = 1.5
#: Candidate atoms further than this (units of d) from every template
#: site after alignment are not matched.
MATCH_TOLERANCE = 0.3
#: Least fraction of a candidate's atoms on template sites for a start.
MIN_MATCHED = 0.7
#: Pool sites reach this far (units of d) beyond the candidate's atoms.
POOL_MARGIN = 3.0
#: Accepted moves between refits of scale, zoom and Uiso.
REFIT_EVERY = 3
#: Best single removals tried as the first half of a move.
SWAP_STARTS = 6
#: Best layer removals and additions paired as layer transfers.
TRANSFER_STARTS = 4
#: Greatest number of accepted moves of one search (by default).
MAX_MOVES = 150
#: A descent stops when its last STALL_MOVES moves lowered Rw by less
#: than the fraction STALL_GAIN.
STALL_MOVES = 20
STALL_GAIN = 0.01
#: How the descents from a start choose their moves, each in turn: by the
#: BIC lowered in all, and per atom changed (`_steepest`).
RULES = ("in all", "per atom")
#: Random changes tried after each first descent (iterated local search).
KICKS = 1
#: Atoms added or removed by one kick of single atoms.
KICK_ATOMS = 3
#: qdamp steps (Å⁻¹) around the last fitted qdamp over which the moves
#: are scored when qdamp is refined, each move by its best.
QDAMP_STEPS = (-0.016, -0.008, -0.004, 0.0, 0.004, 0.008, 0.016)
#: Facet normals closer than this (cosine) are one facet.
FACET_COSINE = 0.999
#: Atoms within this distance (units of d) of a facet plane are on it.
LAYER_TOLERANCE = 0.2
#: Parameters that the criterion charges for a change of a whole group
#: of sites (a facet layer, or the rim of a close-packed layer), however
#: many atoms it moves.
GROUP_PARAMETERS = 2
#: Moves that change a group of sites at once.
GROUP_MOVES = (
    "add layer",
    "remove layer",
    "move layer",
    "grow layer",
    "shrink layer",
    "grow facets",
    "trim facets",
)
#: The hcp cell of the templates (units of d, ideal c/a): its vectors
#: (rows) and the positions of its two sites.
HCP_CELL = (
    np.array(
        [[1, 0, 0], [0.5, math.sqrt(3) / 2, 0], [0, 0, math.sqrt(8 / 3)]]
    ),
    np.array([[0, 0, 0], [0.5, math.sqrt(3) / 6, math.sqrt(8 / 3) / 2]]),
)
#: Families whose facets of one orbit also grow or shrink together
#: (`facet_orbits`); the stacked family's layers have their own moves.
ORBIT_FAMILIES = ("fcc", "bcc", "sc", "hcp", "icosahedral", "decahedral")


class OffSitesError(ValueError):
    """The start's atoms do not lie on the sites of the family."""


@dataclass(frozen=True)
class SearchStep:
    """One accepted change of a site search.

    Attributes
    ----------
    move : str
        ``"start"``, ``"add"``, ``"remove"``, ``"move"``, ``"add layer"``,
        ``"remove layer"``, ``"move layer"``, ``"grow layer"``,
        ``"shrink layer"`` (the rim of one close-packed layer), ``"refit"``,
        ``"kick"`` (a random change that the steps after it improved
        on) or ``"prism"`` (``solve`` rebuilt the start as the prism of
        :func:`~diffpy.deepstruc.prisms.prism_search`; added and removed
        give the net change of the atom count).
    added, removed : int
        Atoms added and removed by the change.
    n_atoms : int
        Atoms after the change.
    rw : float
        Rw after the change (scale fitted; zoom and Uiso as last
        refitted).
    """

    move: str
    added: int
    removed: int
    n_atoms: int
    rw: float


@dataclass
class SearchResult:
    """Outcome of :func:`site_search`.

    Attributes
    ----------
    xyz : numpy.ndarray
        ``(n_atoms, 3)`` coordinates in Å of the final structure, before
        its last fit's zoom.
    family : str
        Template family searched on.
    matched : float
        Fraction of the start's atoms placed on template sites.
    params : DebyeParameters
        The instrument parameters of the last fit (its qdamp refined
        with ``fit_qdamp``).
    path : list of SearchStep
        The accepted changes, from the start.
    strain : numpy.ndarray or None
        The traceless symmetric strain (3x3) of the final structure
        against its family's ideal sites, in the frame of ``xyz``; None
        when it was searched without one (``strains``).
    settled : bool
        Whether the search ended because its misfit was below the
        noise (see :func:`site_search`).
    """

    xyz: np.ndarray
    family: str
    matched: float
    params: DebyeParameters
    path: list[SearchStep] = field(default_factory=list)
    strain: np.ndarray | None = None
    settled: bool = False

    @property
    def added(self) -> int:
        """Atoms added in all, over the whole path."""
        return sum(step.added for step in self.path)

    @property
    def removed(self) -> int:
        """Atoms removed in all, over the whole path."""
        return sum(step.removed for step in self.path)


def family_of(cluster_type: str) -> str | None:
    """The template family of a structure type, None when it has none."""
    for family, types in FAMILIES.items():
        if cluster_type in types:
            return family
    return None


def _nn_distance(xyz: np.ndarray) -> float:
    """Median nearest-neighbour distance of a cluster."""
    from scipy.spatial import cKDTree

    distance, _ = cKDTree(xyz).query(xyz, k=2)
    return float(np.median(distance[:, 1]))


def _lattice(basis: np.ndarray, motif: np.ndarray, radius: float):
    """Lattice points ``n @ basis + motif`` within radius of the origin."""
    reach = int(math.ceil(radius / np.linalg.svd(basis)[1].min())) + 1
    n = np.arange(-reach, reach + 1)
    grid = np.stack(np.meshgrid(n, n, n, indexing="ij"), -1).reshape(-1, 3)
    points = (grid @ basis)[:, None, :] + motif[None]
    points = points.reshape(-1, 3)
    return points[np.linalg.norm(points, axis=1) <= radius]


def _ase_template(family: str, radius: float) -> np.ndarray:
    """The smallest ASE icosahedron or Ino decahedron reaching radius."""
    from ase import cluster

    for n in range(2, 64):
        if family == "icosahedral":
            atoms = cluster.Icosahedron("Cu", n, latticeconstant=math.sqrt(2))
        else:
            atoms = cluster.Decahedron(
                "Cu", n, n, 0, latticeconstant=math.sqrt(2)
            )
        xyz = atoms.get_positions()
        xyz -= xyz.mean(0)
        xyz /= _nn_distance(xyz)
        if np.linalg.norm(xyz, axis=1).max() >= radius:
            return xyz
    raise ValueError(f"No {family} template reaches {radius} d.")


@lru_cache(maxsize=32)
def template(family: str, radius: float) -> np.ndarray:
    """Sites of a structure family within ``radius`` of its centre.

    Parameters
    ----------
    family : str
        One of ``FAMILIES``.
    radius : float
        Least radius of the template in units of the nearest-neighbour
        distance d (rounded up to a whole d for the cache).

    Returns
    -------
    numpy.ndarray
        ``(n_sites, 3)`` site coordinates in units of d, the centre (a
        site) at the origin.
    """
    radius = float(math.ceil(radius))
    if family == "fcc":
        basis = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]]) / math.sqrt(2)
        return _lattice(basis, np.zeros((1, 3)), radius)
    if family == "bcc":
        basis = np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]]) / math.sqrt(3)
        return _lattice(basis, np.zeros((1, 3)), radius)
    if family == "sc":
        return _lattice(np.eye(3), np.zeros((1, 3)), radius)
    if family == "hcp":
        return _lattice(*HCP_CELL, radius)
    if family in ("icosahedral", "decahedral"):
        return _ase_template(family, radius)
    raise _unknown_family(family)


def _unknown_family(family: str) -> ValueError:
    """The error for a family that is not one of ``FAMILIES``."""
    return ValueError(
        f"Unknown structure family {family!r}; please use one of "
        f"{', '.join(FAMILIES)}."
    )


def _neighbours(xyz: np.ndarray, i: int, cutoff: float) -> np.ndarray:
    """Vectors from atom i to its neighbours within cutoff."""
    v = xyz - xyz[i]
    d = np.linalg.norm(v, axis=1)
    return v[(d > 0.5) & (d < cutoff)]


def _frame(u: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Orthonormal frame (rows) of two non-collinear vectors."""
    e1 = u / np.linalg.norm(u)
    e3 = np.cross(u, w)
    e3 /= np.linalg.norm(e3)
    return np.array([e1, np.cross(e3, e1), e3])


def _angle(u: np.ndarray, w: np.ndarray) -> float:
    cos = u @ w / (np.linalg.norm(u) * np.linalg.norm(w))
    return math.degrees(math.acos(np.clip(cos, -1, 1)))


def _similarity(source: np.ndarray, target: np.ndarray):
    """Scale, rotation and shift with target ~ scale * source @ R.T + t."""
    a = source - source.mean(0)
    b = target - target.mean(0)
    u, s, vt = np.linalg.svd(b.T @ a)
    sign = np.sign(np.linalg.det(u @ vt))
    u[:, -1] *= sign
    s[-1] *= sign
    rotation = u @ vt
    scale = s.sum() / (a * a).sum()
    return (
        scale,
        rotation,
        target.mean(0) - scale * source.mean(0) @ rotation.T,
    )


def _anchors(sites: np.ndarray, cutoff: float) -> list[int]:
    """One site per distinct environment, the nearest to the centre."""
    from scipy.spatial import cKDTree

    tree = cKDTree(sites)
    near = np.flatnonzero(np.linalg.norm(sites, axis=1) <= 3.0)
    chosen: dict[tuple, int] = {}
    for i in near[np.argsort(np.linalg.norm(sites[near], axis=1))]:
        shell = np.sort(tree.query(sites[i], k=19)[0][1:])
        key = tuple(np.round(shell / 0.05).astype(int))
        chosen.setdefault(key, int(i))
    return list(chosen.values())


def align(xyz: np.ndarray, family: str):
    """Place a cluster on the sites of a family's template.

    The most coordinated atom nearest the centroid and two of its
    neighbour vectors are matched with every pair of neighbour vectors
    at the same angle around one site of each distinct environment of
    the template; the rotation that puts most atoms on sites wins and is
    refined (with a common scale) on the matched atoms.

    Parameters
    ----------
    xyz : numpy.ndarray
        ``(n_atoms, 3)`` coordinates in Å.
    family : str
        One of ``FAMILIES``; for ``"stacked"`` the template is the
        cluster's own layers (:func:`stacked_template`).

    Returns
    -------
    sites : numpy.ndarray
        The template sites (units of d) that reach ``POOL_MARGIN``
        beyond the cluster.
    occupied : numpy.ndarray
        Indices into ``sites`` of the matched atoms (each site once).
    unit : float
        Å per template unit: the cluster is ``sites[occupied] * unit``
        up to a rotation and shift.
    matched : float
        Fraction of the atoms on a site.
    """
    from scipy.spatial import cKDTree

    xyz = np.asarray(xyz, dtype=float)
    if family == STACKED:
        return _align_stacked(xyz)
    d = _nn_distance(xyz) if len(xyz) > 1 else 1.0
    unit_xyz = (xyz - xyz.mean(0)) / d
    cutoff = NEIGHBOUR_CUTOFF.get(family, DEFAULT_NEIGHBOUR_CUTOFF)
    counts = np.array(
        [len(_neighbours(unit_xyz, i, cutoff)) for i in range(len(xyz))]
    )
    centrality = np.linalg.norm(unit_xyz, axis=1)
    anchor = int(np.lexsort((centrality, -counts))[0])
    sites = template(family, centrality.max() * 2 + POOL_MARGIN + 2)
    tree = cKDTree(sites)
    best = (-1, None)
    u = _neighbours(unit_xyz, anchor, cutoff)
    if len(u) >= 2:
        angles = [_angle(u[0], w) for w in u[1:]]
        k = 1 + int(np.argmin(np.abs(np.array(angles) - 90)))
        target = _frame(u[0], u[k])
        for b in _anchors(sites, cutoff):
            w = _neighbours(sites, b, cutoff)
            for i, j in np.ndindex(len(w), len(w)):
                if i == j or abs(_angle(w[i], w[j]) - angles[k - 1]) > 5:
                    continue
                rotation = _frame(w[i], w[j]).T @ target
                placed = (unit_xyz - unit_xyz[anchor]) @ rotation.T
                placed += sites[b]
                distance, _ = tree.query(placed)
                hits = int((distance < MATCH_TOLERANCE).sum())
                if hits > best[0]:
                    best = (hits, placed)
    if best[1] is None:
        # one atom, or too few neighbours to orient: the centre site
        placed = unit_xyz - unit_xyz[anchor]
    else:
        placed = best[1]
    distance, index = tree.query(placed)
    hit = distance < MATCH_TOLERANCE
    scale = 1.0
    if hit.sum() >= 3:
        scale, rotation, shift = _similarity(placed[hit], sites[index[hit]])
        placed = scale * placed @ rotation.T + shift
        distance, index = tree.query(placed)
        hit = distance < MATCH_TOLERANCE
    pool, occupied, matched = _pool(sites, index[hit], len(xyz))
    return pool, occupied, d / scale, matched


def _pool(sites: np.ndarray, hits: np.ndarray, n_atoms: int):
    """The sites near the matched ones, the matched ones among them
    and the fraction of ``n_atoms`` matched (see :func:`align`)."""
    occupied = np.unique(hits)
    centre = sites[occupied].mean(0) if len(occupied) else np.zeros(3)
    reach = np.linalg.norm(sites[occupied] - centre, axis=1).max(initial=0)
    keep = np.linalg.norm(sites - centre, axis=1) <= reach + POOL_MARGIN
    renumber = np.cumsum(keep) - 1
    return sites[keep], renumber[occupied], float(len(occupied) / n_atoms)


def stacked_template(xyz: np.ndarray):
    """Sites of a close-packed cluster's own layers, and of more.

    The layers, their registries and the lattice step come from
    :func:`diffpy.deepstruc.stacking.stacking_layers`.  Each layer is a
    triangular lattice of spacing d at its registry, wide enough for
    ``POOL_MARGIN`` beyond the cluster; ``EXTRA_LAYERS`` (4) more layers
    on each side continue the last stacking step (fcc-like, so that a
    layer added to an hcp end starts a fault; ``solve`` re-stacks the
    result, which tries the other registry).

    Parameters
    ----------
    xyz : numpy.ndarray
        ``(n_atoms, 3)`` coordinates in Å.

    Returns
    -------
    sites : numpy.ndarray or None
        ``(n_sites, 3)`` in units of d, in a frame whose z axis is the
        layer normal and whose x axis is a lattice row; None when the
        cluster is not close-packed.
    unit_xyz : numpy.ndarray
        The cluster in that frame and unit.
    d : float
        The nearest-neighbour distance (Å), the unit.
    """
    layers = stacking_layers(xyz)
    if layers is None:
        return None, None, 0.0
    unit_xyz, d, origin = layers.in_frame(xyz)
    registry = list(layers.registry)
    for _ in range(EXTRA_LAYERS):
        registry.append((2 * registry[-1] - registry[-2]) % 3)
        registry.insert(0, (2 * registry[0] - registry[1]) % 3)
    registry = np.array(registry)
    # heights of equally spaced layers
    k = layers.layer
    base = float(np.mean(unit_xyz[:, 2] - k * LAYER_SPACING))
    plane = unit_xyz[:, :2] - np.outer(layers.registry[k], _SHIFT)
    radius = np.linalg.norm(plane - origin, axis=1).max() + POOL_MARGIN + 2
    reach = int(math.ceil(radius / _CELL[1, 1])) + 1
    n = np.arange(-reach, reach + 1)
    lattice = np.stack(np.meshgrid(n, n), -1).reshape(-1, 2) @ _CELL
    sites = []
    for level, reg in enumerate(registry, start=-EXTRA_LAYERS):
        points = lattice + origin + reg * _SHIFT
        points = points[np.linalg.norm(points - origin, axis=1) <= radius]
        height = np.full((len(points), 1), base + level * LAYER_SPACING)
        sites.append(np.hstack([points, height]))
    return np.vstack(sites), unit_xyz, d


def _align_stacked(xyz: np.ndarray):
    """:func:`align` for the ``"stacked"`` family."""
    from scipy.spatial import cKDTree

    sites, unit_xyz, d = stacked_template(xyz)
    if sites is None:
        return np.zeros((0, 3)), np.zeros(0, int), 1.0, 0.0
    distance, index = cKDTree(sites).query(unit_xyz)
    hits = index[distance < MATCH_TOLERANCE]
    pool, occupied, matched = _pool(sites, hits, len(xyz))
    return pool, occupied, d, matched


class _Search:
    """State of one site search: which sites hold atoms, and their PDF.

    ``order`` lists the site of each atom in the order of the
    incremental calculator, ``occupied`` flags the sites, ``start`` the
    sites of the start; ``frame`` maps template units to Å (the unit
    times the fitted deformation).
    """

    def __init__(
        self, sites, occupied, unit, family, data, params, uiso, fit_qdamp
    ):
        from scipy.sparse import csr_matrix
        from scipy.spatial import cKDTree

        self.sites, self.frame = sites, unit * np.eye(3)
        (self.r, self.g), self.params = data, params
        self.uiso, self.fit_qdamp = uiso, fit_qdamp
        # whether to fit a strain; whether one was fitted (later fits
        # start from it); whether atoms changed since the last strain fit
        self.fit_strain = self.strained = self.strain_stale = False
        self.normals = facet_normals(family)
        self.orbits = facet_orbits(family) if family in ORBIT_FAMILIES else ()
        self.occupied = np.zeros(len(sites), dtype=bool)
        self.occupied[occupied] = True
        # the sites' occupancy that single changes are counted against,
        # and the group changes made (GROUP_PARAMETERS each)
        self.reference = self.occupied.copy()
        self.groups = 0
        # the close-packed layer of each site of the stacked family, and
        # the neighbours of each site within its layer
        self.level = self.in_layer = None
        if family == STACKED:
            self.level = np.rint(sites[:, 2] / LAYER_SPACING).astype(int)
        self.order = [int(i) for i in occupied]
        tree = cKDTree(sites)

        def adjacency(radius):
            pairs = tree.query_pairs(radius, output_type="ndarray")
            i, j = np.concatenate([pairs, pairs[:, ::-1]]).T
            ones = np.ones(len(i))
            return csr_matrix((ones, (i, j)), shape=(len(sites),) * 2)

        self.neighbours = adjacency(BOND_RADIUS)
        if self.level is not None:
            same = self.neighbours.tocoo()
            keep = self.level[same.row] == self.level[same.col]
            self.in_layer = csr_matrix(
                (same.data[keep], (same.row[keep], same.col[keep])),
                shape=same.shape,
            )
        self.degree = np.asarray(self.neighbours.sum(1)).ravel()
        self.contacts = adjacency(CONTACT_RADIUS)
        self.calc = self._calculator()

    def _calculator(self) -> IncrementalPDF:
        return IncrementalPDF(self.xyz, self.r, self.params, uiso=self.uiso)

    @property
    def xyz(self) -> np.ndarray:
        """Coordinates (Å) of the atoms, in calculator order."""
        return self.placed(self.order)

    def placed(self, sites) -> np.ndarray:
        """Coordinates (Å) of these sites."""
        return self.sites[np.asarray(sites, dtype=np.intp)] @ self.frame.T

    @property
    def changes(self) -> int:
        """Parameters of the changes from the start.

        One per site whose occupancy differs from the reference (the
        start, updated by each group change), and ``GROUP_PARAMETERS``
        per group change.
        """
        differs = int((self.occupied != self.reference).sum())
        return differs + GROUP_PARAMETERS * self.groups

    def change(self, sites, adding: bool) -> np.ndarray:
        """How each of these additions (removals) changes `changes`."""
        differs = self.reference[sites] != adding
        return np.where(differs, 1, -1)

    def group_change(self, added, removed) -> int:
        """How a group change of these sites changes `changes`."""
        sites = np.asarray(list(added) + list(removed), dtype=np.intp)
        differs = self.occupied[sites] != self.reference[sites]
        return GROUP_PARAMETERS - int(differs.sum())

    def apply(self, move: str, added, removed) -> None:
        """Make a change; a group change resets the reference of its
        sites and counts as one group."""
        for site in removed:
            self.remove(site)
        for site in added:
            self.add(site)
        if move in GROUP_MOVES:
            sites = np.asarray(list(added) + list(removed), dtype=np.intp)
            self.reference[sites] = self.occupied[sites]
            self.groups += 1

    def additions(self) -> np.ndarray:
        """Empty sites touching at least MIN_CONTACTS atoms."""
        touching = self.contacts @ self.occupied.astype(float)
        return np.flatnonzero(~self.occupied & (touching >= MIN_CONTACTS))

    def surface(self) -> np.ndarray:
        """Atoms that may be removed: surface atoms, none leaving another
        with fewer than ``MIN_CONTACTS`` neighbours."""
        occupied = self.occupied.astype(float)
        held = self.neighbours @ occupied
        empty = self.degree - held
        edge = self.degree < self.degree.max()
        weak = self.occupied & (held <= MIN_CONTACTS)
        leaves_weak = self.neighbours @ weak.astype(float) > 0
        surface = (empty > 0) | edge
        return np.flatnonzero(self.occupied & surface & ~leaves_weak)

    def dangling(self, added, removed) -> tuple[list[int], list[int]]:
        """A change, less the atoms that it would leave hanging.

        After adding ``added`` and removing ``removed``, atoms with fewer
        than ``MIN_CONTACTS`` occupied neighbour sites go too (added
        ones are not added), and so on until none is left, so that a
        group change never strands atoms.  Returns ``(added, removed)``.
        """
        occupied = self.occupied.copy()
        added = [int(s) for s in added]
        removed = [int(s) for s in removed]
        occupied[added] = True
        occupied[removed] = False
        while True:
            held = self.neighbours @ occupied.astype(float)
            weak = np.flatnonzero(occupied & (held < MIN_CONTACTS))
            if len(weak) == 0 or len(weak) == occupied.sum():
                return added, removed
            occupied[weak] = False
            weak = set(int(s) for s in weak)
            removed += [s for s in weak if self.occupied[s]]
            added = [s for s in added if s not in weak]

    def add(self, site: int) -> None:
        self.calc.add(self.placed(site))
        self.order.append(int(site))
        self.occupied[site] = True

    def remove(self, site: int) -> None:
        k = self.order.index(int(site))
        self.calc.remove(k)
        self.order.pop(k)
        self.occupied[site] = False

    def rw(self) -> float:
        """Rw of the current atoms with the scale fitted, at the best of
        `qdamps`."""
        return float(
            self.calc.trial_group_rw(self.g, [((), ())], self.qdamps)[0]
        )

    @property
    def qdamps(self) -> list[float] | None:
        """qdamp values that moves are scored over (None: the fitted one)."""
        if not self.fit_qdamp:
            return None
        low, high = QDAMP_BOUNDS
        steps = self.params.qdamp + np.array(QDAMP_STEPS)
        return sorted(set(np.clip(steps, low, high)))

    def trial_rw(self, add=(), remove=()) -> np.ndarray:
        """Rw after adding each site of add, then removing each of remove."""
        index = {site: k for k, site in enumerate(self.order)}
        return self.calc.trial_rw(
            self.g,
            add=self.placed(add),
            remove=[index[int(s)] for s in remove],
            qdamps=self.qdamps,
        )

    def group_rw(self, changes) -> np.ndarray:
        """Rw after each ``(added sites, removed sites)`` change."""
        index = {site: k for k, site in enumerate(self.order)}
        return self.calc.trial_group_rw(
            self.g,
            [
                (self.placed(add), [index[int(s)] for s in remove])
                for add, remove in changes
            ],
            self.qdamps,
        )

    def state(self) -> tuple:
        """What `restore` needs to return to this state."""
        return (
            self.occupied.copy(),
            list(self.order),
            self.frame.copy(),
            self.uiso,
            self.params,
            self.strained,
            self.strain_stale,
            self.reference.copy(),
            self.groups,
        )

    def restore(self, state: tuple) -> None:
        """Return to a state saved by `state`."""
        occupied, order, frame, self.uiso, self.params = state[:5]
        self.strained, self.strain_stale, reference, self.groups = state[5:]
        self.reference = reference.copy()
        self.frame = frame.copy()
        self.occupied, self.order = occupied.copy(), list(order)
        self.calc = self._calculator()

    def refit(self, strain: bool = False) -> float:
        """Fit scale, zoom and Uiso (and qdamp); return the Rw.

        With ``strain`` (and ``fit_strain``) the strain too, the first
        time from a scan (:func:`~diffpy.deepstruc.fitting.fit_cluster`),
        then from the strain fitted before.
        """
        strain = strain and self.fit_strain
        fit = fit_cluster(
            self.xyz,
            self.r,
            self.g,
            self.params,
            uiso=self.uiso,
            fit_qdamp=self.fit_qdamp,
            fit_strain=strain,
            strain=np.zeros((3, 3)) if self.strained else None,
        )
        self.strained |= strain
        self.strain_stale &= not strain
        self.frame = fit.deformation @ self.frame
        self.uiso = fit.uiso
        self.params = dataclasses.replace(self.params, qdamp=fit.qdamp)
        self.calc = self._calculator()
        return fit.rw


@lru_cache(maxsize=None)
def facet_normals(family: str) -> np.ndarray:
    """Unit normals of the facets that a particle of a family may have.

    In the frame of :func:`template`: the {100}, {110} and {111} planes
    of the cubic lattices; the basal, {10-10} and {11-20} planes of hcp;
    the 12 vertex and 20 face directions of the icosahedron; the 15
    facets of the Ino decahedron, the 5 edges between its side facets
    and its 2 tips.
    """
    from scipy.spatial import ConvexHull
    from scipy.spatial.distance import pdist

    if family in ("fcc", "bcc", "sc"):
        rows = {
            tuple(sign * np.array(v)[list(order)])
            for v in ((1, 0, 0), (1, 1, 0), (1, 1, 1))
            for order in itertools.permutations(range(3))
            for sign in itertools.product((1, -1), repeat=3)
        }
        normals = np.array(sorted(rows), dtype=float)
    elif family in ("hcp", STACKED):
        angles = np.radians(np.arange(0, 360, 30))
        normals = np.column_stack(
            [np.cos(angles), np.sin(angles), np.zeros(len(angles))]
        )
        normals = np.vstack([normals, [[0, 0, 1], [0, 0, -1]]])
    elif family == "icosahedral":
        sites = template(family, 2.0)
        shell = sites[np.abs(np.linalg.norm(sites, axis=1) - 1) < 0.1]
        faces = [
            a + b + c
            for a, b, c in itertools.combinations(shell, 3)
            if max(pdist([a, b, c])) < DEFAULT_NEIGHBOUR_CUTOFF
        ]
        normals = np.vstack([shell, faces])
    elif family == "decahedral":
        # the facets of a small Ino decahedron (its five-fold axis along
        # z), the edges between its side facets and its two tips
        facets = [
            row[:3] for row in ConvexHull(template(family, 2.0)).equations
        ]
        sides = [n for n in facets if abs(n[2]) < 1e-6]
        normals = np.vstack(
            [facets, -np.array(sides), [[0, 0, 1], [0, 0, -1]]]
        )
    else:
        raise _unknown_family(family)
    normals = normals / np.linalg.norm(normals, axis=1)[:, None]
    return np.array(_distinct(normals))


@lru_cache(maxsize=None)
def facet_orbits(family: str) -> tuple[np.ndarray, ...]:
    """The facets of a family that are alike, as sets of normals.

    Two normals of :func:`facet_normals` are alike when their dot
    products with all the normals are the same (sorted): a symmetry of
    the family maps one onto the other, as it maps the six {100} facets
    of a cubic lattice onto each other.  The 12 in-plane normals of the
    hcp and stacked families, 30° apart, cannot tell {10-10} from
    {11-20} that way; their orbits are every other one.

    Returns
    -------
    tuple of numpy.ndarray
        Indices into :func:`facet_normals` of each set of two or more.
    """
    normals = facet_normals(family)
    if family in ("hcp", STACKED):
        angles = np.rint(np.degrees(np.arctan2(normals[:, 1], normals[:, 0])))
        keys = [
            (round(abs(n[2]), 3), int(a) % 60 if abs(n[2]) < 0.5 else 0)
            for n, a in zip(normals, angles)
        ]
    else:
        keys = [tuple(np.round(np.sort(normals @ n), 3)) for n in normals]
    orbits: dict = {}
    for i, key in enumerate(keys):
        orbits.setdefault(key, []).append(i)
    return tuple(np.array(i) for i in orbits.values() if len(i) > 1)


def _distinct(normals) -> list[np.ndarray]:
    """Unit normals, each kept unless one before is within FACET_COSINE."""
    distinct: list[np.ndarray] = []
    for normal in normals:
        if all(normal @ other < FACET_COSINE for other in distinct):
            distinct.append(normal)
    return distinct


def _facets(
    points: np.ndarray, normals: np.ndarray
) -> list[tuple[np.ndarray, float]]:
    """Distinct (normal, offset) planes bounding points: the facets of
    their convex hull and planes of the given normals through the
    outermost points."""
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = ConvexHull(points)
    except (QhullError, ValueError):
        return []
    normals = _distinct(np.vstack([normals, hull.equations[:, :3]]))
    return [(normal, float((points @ normal).max())) for normal in normals]


def site_search(
    xyz: np.ndarray,
    family: str,
    r: np.ndarray,
    g: np.ndarray,
    params: DebyeParameters | None = None,
    *,
    uiso: float | None = None,
    noise: float = 0.0,
    max_atoms: int | None = None,
    max_moves: int = MAX_MOVES,
    fit_qdamp: bool = False,
    strains: tuple[bool, ...] = (False,),
    rules: tuple[str, ...] = RULES,
    kicks: int = KICKS,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> SearchResult:
    """Search the occupied sites of a family that fit the data best.

    Parameters
    ----------
    xyz : numpy.ndarray
        ``(n_atoms, 3)`` coordinates in Å of the start, at the data's
        scale (its nearest-neighbour distance about that of the data).
    family : str
        Template family (``FAMILIES``; :func:`family_of` maps a
        structure type to it).
    r, g : numpy.ndarray
        The data in the fit range.
    params : DebyeParameters, optional
        Instrument parameters; the defaults when None.
    uiso : float, optional
        Starting Uiso in Å², by default ``params.uiso``.
    noise : float
        Standard deviation of the noise of G, for the information
        criterion; 0 accepts every move that lowers Rw.
    max_atoms : int, optional
        Greatest number of atoms; no limit when None.
    max_moves : int
        Greatest number of accepted moves of the search of each rule.
    fit_qdamp : bool
        Refine qdamp with scale, zoom and Uiso, for data whose resolution
        damping is unknown (it and the particle size both damp G).
    strains : tuple of bool
        Whether the sites are searched unstrained (False), with a
        homogeneous strain refined (True, at the start and whenever no
        move helps; see :func:`~diffpy.deepstruc.fitting.fit_cluster`),
        or both, ``(False, True)``, each rule once each way.  A strain
        is for particles strained unevenly: a search that cannot strain
        its sites makes up for the misfit with atoms.
    rules : tuple of str
        How the descents choose their moves, one descent each (of
        ``RULES``: ``"in all"`` and ``"per atom"``).
    kicks : int
        Random changes tried after the descent of each rule, each
        followed by a descent and kept when it ends lower (iterated
        local search).
    seed : int
        Seed of the kicks; the same seed gives the same result.
    progress : callable, optional
        Called as ``progress(moves, max_moves)`` after each accepted move
        (the moves of each rule's search counted from 0).
    stop : callable, optional
        Called before every move; the search ends when it returns True
        (for a search whose result is no longer needed).

    Returns
    -------
    SearchResult

    Raises
    ------
    OffSitesError
        When fewer than ``MIN_MATCHED`` of the atoms lie on the
        family's sites.
    """
    params = params or DebyeParameters()
    r = np.asarray(r, dtype=float)
    g = np.asarray(g, dtype=float)
    sites, occupied, unit, matched = align(xyz, family)
    if matched < MIN_MATCHED:
        raise OffSitesError(
            f"Only {matched:.0%} of the start's atoms lie on {family} "
            "sites; please start from a cluster of that family."
        )
    uiso = params.uiso if uiso is None else uiso
    search = _Search(
        sites, occupied, unit, family, (r, g), params, uiso, fit_qdamp
    )
    weight, penalty = bic_weights(r, g, params.qmax, noise, per_point=False)
    # weight Rw^2 of a misfit of white noise alone is n_eff, give or take
    # 2 standard deviations of the chi-square of the len(g) points: a
    # misfit below that range is settled
    noise_level = effective_points(r, params.qmax) * (
        1 - 2 * math.sqrt(2 / len(g))
    )
    limit = max_atoms or math.inf

    def bic(rw, changes):
        return weight * np.square(rw) + penalty * np.asarray(changes)

    def settled(rw: float) -> bool:
        """Whether the misfit ``rw`` of a finished descent is below the
        noise."""
        return weight * rw**2 <= noise_level

    def stopped() -> bool:
        return stop is not None and stop()

    unknown = set(rules) - set(RULES)
    if not rules or unknown:
        raise ValueError(
            f"Please give rules among {RULES} (got {tuple(rules)})."
        )
    if not strains or set(strains) - {False, True}:
        raise ValueError(
            f"Please give strains among (False, True) (got {strains})."
        )
    # the start as fitted, unstrained and strained (once for all rules),
    # a strain at the cost of STRAIN_PARAMETERS more parameters
    rw = search.refit()
    begins = {False: (search.state(), rw)}
    if True in strains:
        search.fit_strain = search.strain_stale = True
        rw = search.refit(strain=True)
        begins[True] = (search.state(), rw)
    descents = [
        (k + len(rules) * strained, rule, strained)
        for strained in sorted(set(strains))
        for k, rule in enumerate(rules)
    ]
    # the descents from the start that fits better first (stable: the
    # rules in their order)
    descents.sort(
        key=lambda descent: bic(begins[descent[2]][1], 0)
        + penalty * STRAIN_PARAMETERS * descent[2]
    )
    best = None
    for k, rule, strained in descents:
        begin, start_rw = begins[strained]
        search.restore(begin)
        search.fit_strain = strained
        path = [SearchStep("start", 0, 0, len(search.order), start_rw)]
        rng = np.random.default_rng([seed, k])
        per_atom = rule == "per atom"
        score = _search(
            search,
            bic,
            (settled, stopped),
            limit,
            path,
            max_moves,
            per_atom,
            kicks,
            rng,
            progress,
        )
        score += penalty * STRAIN_PARAMETERS * strained
        if best is None or score < best[0]:
            best = (score, search.state(), path)
        if settled(path[-1].rw) or stopped():
            break
    _, state, path = best
    search.restore(state)
    _complete(search, limit, path)
    xyz = search.xyz
    return SearchResult(
        xyz - xyz.mean(0),
        family,
        matched,
        search.params,
        path,
        _traceless_stretch(search.frame) if search.strained else None,
        settled(path[-1].rw),
    )


def _complete(search: _Search, limit, path: list[SearchStep]) -> None:
    """Add the atoms that the data cannot see, which make it more compact.

    While an empty site's atom leaves G the same up to the scale (the
    calculated G with it fits the one without at an Rw below
    :data:`~diffpy.deepstruc.fitting.EQUAL_RW`) and raises the atoms'
    mean coordination (it has more than half the mean number of
    neighbours), the one with the most neighbours is added (a
    ``"complete"`` step): a 5-atom square pyramid becomes the 6-atom
    octahedron, whose G(r) it shares.  The search itself ends at such
    structures, as it accepts no change that the data do not support.
    """
    while len(search.order) < limit:
        adds = search.additions()
        if len(adds) == 0:
            return
        same = search.calc.trial_rw(search.calc.pdf(), search.placed(adds))
        held = search.neighbours @ search.occupied.astype(float)
        unseen = (same <= EQUAL_RW) & (
            held[adds] > held[search.occupied].mean() / 2
        )
        if not unseen.any():
            return
        k = np.flatnonzero(unseen)[np.argmax(held[adds][unseen])]
        search.add(int(adds[k]))
        n_atoms = len(search.order)
        path.append(SearchStep("complete", 1, 0, n_atoms, search.rw()))


def _traceless_stretch(frame: np.ndarray) -> np.ndarray:
    """The strain of a map of template units to Å, less its zoom.

    The traceless part of ``V / det(V)^(1/3) - 1`` for the stretch V
    of the polar decomposition ``frame = V R``, in the frame of the
    coordinates.
    """
    values, vectors = np.linalg.eigh(frame @ frame.T)
    stretch = np.sqrt(values)
    stretch = stretch / np.prod(stretch) ** (1 / 3) - 1
    stretch -= stretch.mean()
    return (vectors * stretch) @ vectors.T


def _search(
    search,
    bic,
    ends,
    limit,
    path,
    max_moves,
    per_atom,
    kicks,
    rng,
    progress,
) -> float:
    """A descent and its kicks (iterated local search); return the BIC.

    Each kick is a random change (`_kick`) followed by a new descent,
    kept when it ends lower.  The accepted steps are appended to
    ``path``, whose first step is the state the search starts from.
    ``ends`` is ``(settled, stopped)``: no kick follows a descent that
    ends ``settled(rw)``, and ``stopped()`` ends the search (see
    `site_search`).
    """
    settled, stopped = ends
    score = _descend(
        search, bic, stopped, limit, path, max_moves, per_atom, progress
    )
    for _ in range(kicks):
        if len(path) > max_moves or settled(path[-1].rw) or stopped():
            break
        saved = search.state()
        kick = _kick(search, rng, limit)
        if kick is None:
            continue
        search.strain_stale = search.fit_strain
        rw = search.refit()
        trial = [SearchStep("kick", *kick, len(search.order), rw)]
        left = max_moves - len(path)
        new = _descend(search, bic, stopped, limit, trial, left, per_atom)
        if new < score:
            score = new
            path += trial
            if progress is not None:
                progress(len(path) - 1, max_moves)
        else:
            search.restore(saved)
    return score


def _descend(
    search, bic, stopped, limit, path, max_moves, per_atom, progress=None
) -> float:
    """Apply the best move while one lowers the BIC; return the BIC.

    The best move is the one that lowers the BIC most, per atom changed
    with ``per_atom`` (`_steepest`).  The accepted steps are appended to
    ``path``, whose first step is the state the descent starts from.
    It ends early when ``stopped()``.
    """
    rw = path[-1].rw
    score = bic(rw, search.changes)
    since_refit = 0
    while len(path) <= max_moves and not _stalled(path) and not stopped():
        options = _singles(search, bic, limit) + _layers(search, bic, limit)
        best = _steepest(options, score, per_atom)
        if best is None and not since_refit:
            moves = _moves(search, bic) + _transfers(search, bic, options)
            best = _steepest(moves, score, per_atom)
        if best is None:
            if not since_refit and not search.strain_stale:
                break
            # the zoom, Uiso and strain of the last fit may hide a better
            # move
            move, added, removed = "refit", (), ()
        else:
            _, move, added, removed = best
            search.apply(move, added, removed)
            search.strain_stale = search.fit_strain
            since_refit += 1
        if move == "refit" or since_refit == REFIT_EVERY:
            rw = search.refit(strain=move == "refit")
            since_refit = 0
        else:
            rw = search.rw()
        score = bic(rw, search.changes)
        path.append(
            SearchStep(move, len(added), len(removed), len(search.order), rw)
        )
        if progress is not None:
            progress(len(path) - 1, max_moves)
    return float(score)


def _stalled(path: list[SearchStep]) -> bool:
    """Whether the last :data:`STALL_MOVES` moves gained too little Rw.

    Less than :data:`STALL_GAIN` of the Rw relative: on measured data,
    whose misfit is mostly not noise, the criterion alone would go on
    trading atoms for ever smaller gains.
    """
    if len(path) <= STALL_MOVES:
        return False
    before, now = path[-1 - STALL_MOVES].rw, path[-1].rw
    return before - now < STALL_GAIN * before


def _kick(search: _Search, rng, limit):
    """A random change that the descent would not make; (added, removed).

    One of: remove the atoms of a facet, add the next layer of a facet,
    remove ``KICK_ATOMS`` surface atoms (and the atoms that this
    leaves hanging), add as many atoms on sites beside the surface.
    None when the drawn change is not possible.
    """
    kind = rng.integers(4)
    if kind < 2:
        layers = [
            (move, added, removed)
            for move, added, removed in _layer_changes(search, limit)
            if (move == "add layer") == (kind == 1)
        ]
        if not layers:
            return None
        move, added, removed = layers[rng.integers(len(layers))]
    else:
        pool = search.additions() if kind == 3 else search.surface()
        if len(pool) < KICK_ATOMS or (
            kind == 3 and len(search.order) + KICK_ATOMS > limit
        ):
            return None
        chosen = [int(s) for s in rng.choice(pool, KICK_ATOMS, replace=False)]
        move = "add" if kind == 3 else "remove"
        if kind == 3:
            added, removed = chosen, []
        else:
            added, removed = search.dangling([], chosen)
    search.apply(move, added, removed)
    return len(added), len(removed)


def _steepest(options: list, score: float, per_atom: bool):
    """The option that lowers the score most, or None.

    Per atom changed with ``per_atom``, so that single atoms that should
    go win over a facet layer of which only some atoms should; in all,
    without, so that a layer that should go wins over the single atoms
    that would roughen the surface first.
    """
    best, gain = None, 0.0
    for option in options:
        size = max(len(option[2]) + len(option[3]), 1) if per_atom else 1
        value = (score - option[0]) / size
        if value > gain:
            best, gain = option, value
    return best


def _singles(search: _Search, bic, limit) -> list:
    """The best single addition and removal: [(BIC, move, added, removed)]."""
    adds = search.additions() if len(search.order) < limit else []
    removes = search.surface() if len(search.order) > 1 else []
    if len(adds) + len(removes) == 0:
        return []
    rw = search.trial_rw(adds, removes)
    changes = search.changes + np.concatenate(
        [search.change(adds, True), search.change(removes, False)]
    )
    scores = bic(rw, changes)
    options = []
    if len(adds):
        k = int(np.argmin(scores[: len(adds)]))
        options.append((float(scores[k]), "add", [int(adds[k])], []))
    if len(removes):
        k = int(np.argmin(scores[len(adds) :]))
        site = int(removes[k])
        options.append((float(scores[len(adds) + k]), "remove", [], [site]))
    return options


def _moves(search: _Search, bic) -> list:
    """The best moves of one surface atom to another site, as `_singles`.

    The ``SWAP_STARTS`` removals that fit best are each followed by
    the best addition.
    """
    removes = search.surface() if len(search.order) > 1 else []
    if len(removes) == 0:
        return []
    options = []
    rw = search.trial_rw(remove=removes)
    for site in removes[np.argsort(rw, kind="stable")[:SWAP_STARTS]]:
        search.remove(site)
        adds = search.additions()
        adds = adds[adds != site]
        if len(adds):
            scores = bic(
                search.trial_rw(add=adds),
                search.changes + search.change(adds, True),
            )
            k = int(np.argmin(scores))
            options.append((float(scores[k]), "move", [int(adds[k])], [site]))
        search.add(site)
    return options


def _layers(search: _Search, bic, limit) -> list:
    """Facet layers added or removed, alone or an orbit at once, and the
    rims of close-packed layers grown or shrunk, as `_singles`."""
    changes = (
        _layer_changes(search, limit)
        + _orbit_changes(search, limit)
        + _rim_changes(search, limit)
    )
    return _scored(search, bic, changes)


def _layer_changes(search: _Search, limit) -> list:
    """Facet-layer changes: ``[(move, added sites, removed sites)]``.

    For each facet (`_facets`): remove the atoms on it, or add the
    sites of the next plane beyond it that lie within all other facets.
    """
    occupied, offsets, heights = _facet_heights(search)
    # facets beyond which each site lies; _facets keeps distinct normals
    outside = heights > offsets + LAYER_TOLERANCE
    n_outside = outside.sum(axis=1)
    changes = []
    for k, offset in enumerate(offsets):
        height = heights[:, k]
        layer = occupied[height[occupied] > offset - LAYER_TOLERANCE]
        _, layer = search.dangling([], layer)
        if 0 < len(layer) < len(occupied):
            changes.append(("remove layer", [], layer))
        beyond = outside[:, k]
        if not beyond.any():
            continue
        # within every other facet: beyond this one only
        inside = n_outside == beyond
        top = height[beyond].min() + LAYER_TOLERANCE
        new = np.flatnonzero(beyond & (height < top) & inside)
        if 0 < len(new) and len(occupied) + len(new) <= limit:
            changes.append(("add layer", [int(s) for s in new], []))
    return changes


def _facet_heights(search: _Search):
    """The atoms' sites, and the facets of the atoms (`_facets`): their
    offsets, and the height of every site along their normals,
    ``(n_sites, n_facets)``; no facets for atoms without a hull."""
    occupied = np.flatnonzero(search.occupied)
    planes = _facets(search.sites[occupied], search.normals)
    if not planes:
        return occupied, np.zeros(0), np.zeros((len(search.sites), 0))
    normals, offsets = (np.array(a) for a in zip(*planes))
    return occupied, offsets, search.sites @ normals.T


def _orbit_changes(search: _Search, limit) -> list:
    """Every facet of one orbit moved at once: ``[(move, added, removed)]``.

    For each orbit of the family's facets (`facet_orbits`): the atoms on
    all its facets removed, or the sites up to the next plane beyond
    each of its facets added, edges and corners between them included,
    within the other facets: a block or polyhedron grown or trimmed
    evenly, which one facet at a time would reach only through worse
    fits.  Facets of the family's normals only (`_facets` lists them
    first, in their order); none for the stacked family.
    """
    if not search.orbits:
        return []
    occupied, offsets, heights = _facet_heights(search)
    if len(offsets) < len(search.normals):
        return []
    changes = []
    for orbit in search.orbits:
        on = heights[occupied][:, orbit] > offsets[orbit] - LAYER_TOLERANCE
        _, removed = search.dangling([], occupied[on.any(axis=1)])
        if 0 < len(removed) < len(occupied):
            changes.append(("trim facets", [], removed))
        beyond = heights[:, orbit] > offsets[orbit] + LAYER_TOLERANCE
        if not beyond.any(axis=0).all():
            continue
        grown = offsets.copy()
        grown[orbit] = np.where(beyond, heights[:, orbit], np.inf).min(0)
        inside = (heights <= grown + LAYER_TOLERANCE).all(axis=1)
        new = np.flatnonzero(inside & ~search.occupied)
        added, _ = search.dangling(new, [])
        if added and len(occupied) + len(added) <= limit:
            changes.append(("grow facets", added, []))
    return changes


def _rim_changes(search: _Search, limit) -> list:
    """Rims of the close-packed layers of the stacked family, grown or
    shrunk: ``[(move, added sites, removed sites)]``.

    A layer grows by the empty sites of its plane beside any of its
    atoms, or beside two or more (its sides without its corners); it
    shrinks by its atoms with fewer than six neighbours in its plane, or
    with three or fewer (its corners), with the atoms that this leaves
    hanging.  So the in-plane outline of one layer changes, which no
    facet of the whole particle does.  None for the other families.
    """
    if search.level is None:
        return []
    occupied = search.occupied
    held = search.in_layer @ occupied.astype(float)
    n_atoms = int(occupied.sum())
    changes = []
    for level in np.unique(search.level[occupied]):
        plane = search.level == level
        size = int((plane & occupied).sum())
        rims = {
            tuple(np.flatnonzero(plane & occupied & edge))
            for edge in (held < 6, held <= 3)
        }
        for rim in rims:
            if 0 < len(rim) < size:
                _, removed = search.dangling([], rim)
                if len(removed) < n_atoms:
                    changes.append(("shrink layer", [], removed))
        rings = {
            tuple(np.flatnonzero(plane & ~occupied & (held >= least)))
            for least in (1, 2)
        }
        for ring in rings:
            added, _ = search.dangling(ring, [])
            if added and n_atoms + len(added) <= limit:
                changes.append(("grow layer", added, []))
    return changes


def _scored(search: _Search, bic, changes) -> list:
    """``(BIC, move, added, removed)`` of each ``(move, added, removed)``."""
    if not changes:
        return []
    rw = search.group_rw([(added, removed) for _, added, removed in changes])
    options = []
    for (move, added, removed), value in zip(changes, rw):
        score = bic(
            value, search.changes + search.group_change(added, removed)
        )
        options.append((float(score), move, added, removed))
    return options


def _transfers(search: _Search, bic, options: list) -> list:
    """A facet layer removed and another added together, as `_singles`.

    Pairs of the ``TRANSFER_STARTS`` best layer removals and
    additions of ``options`` (from `_layers`), for a particle that has
    the right size and the wrong outline.
    """
    best = sorted(options, key=lambda option: option[0])
    removals = [o for o in best if o[1] == "remove layer"][:TRANSFER_STARTS]
    additions = [o for o in best if o[1] == "add layer"][:TRANSFER_STARTS]
    transfers = []
    for _, _, _, removed in removals:
        for _, _, added, _ in additions:
            added = [site for site in added if site not in removed]
            added, gone = search.dangling(added, removed)
            if added:
                transfers.append(("move layer", added, gone))
    return _scored(search, bic, transfers)
