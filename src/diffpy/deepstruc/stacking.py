"""Close-packed particles with any layer stacking, and stacking analysis.

A close-packed particle is a stack of triangular layers of atoms; each
layer sits in one of three registries A, B and C, and no two neighbouring
layers share one.  Repeating ABC gives fcc, repeating AB gives hcp; every
other sequence is *faulted* (twins, stacking faults, mixed polytypes).

**Sequences and labels.**  Relabelling A, B and C and reading the stack
from the other end do not change the structure, so a sequence is named by
its canonical form (:func:`canonical_sequence`): the lexicographically
smallest of its six relabellings and those of its reversal, which starts
with ``AB``.  Jagodzinski's notation (:func:`hc_sequence`) labels each
*interior* layer ``h`` when its two neighbours are the same letter and
``c`` when they differ; the two end layers have a neighbour on one side
only and get no letter, so ``n`` layers give ``n - 2`` letters.  The h/c
form does not depend on the letters chosen, and reversing the stack
reverses it.  A stack is ``"fcc"`` when every letter is ``c``, ``"hcp"``
when every letter is ``h`` and ``"faulted"`` otherwise (:data:`KINDS`).
The h/c form up to reversal fixes the canonical sequence; there are 285
canonical sequences of 3 to 10 layers: 8 fcc, 8 hcp and 269 faulted.

**The generator.**  :func:`stacking_particles` builds every distinct
particle of the following rules, deterministically, in about a second
(then cached in the process), in units of the nearest-neighbour distance
d (= 1), centred, like the clusters of :mod:`diffpy.deepstruc.libraries`:

* the layers lie in the planes z = k :data:`LAYER_SPACING` (sqrt(2/3) d),
  k = 0, 1, ...; registry A holds the points i a1 + j a2 of a triangular
  lattice with a1 = (1, 0) and a2 = (1/2, sqrt(3)/2), registries B and C
  the same points shifted by (a1 + a2)/3 and 2 (a1 + a2)/3;
* every canonical sequence of :data:`MIN_LAYERS` to :data:`MAX_LAYERS`
  layers is stacked as written, from the bottom up, and cut with each of
  the in-plane outlines of :data:`SHAPES` (:class:`LayerShape`): discs,
  regular hexagons, triangles and truncated triangles of several sizes,
  centred on an A site.  Each layer keeps the sites of its own registry
  inside the outline, so layers of different registries differ in shape
  and atom count;
* a particle is kept when every layer holds at least
  :data:`MIN_LAYER_ATOMS` atoms and the whole :data:`MIN_ATOMS` to
  :data:`MAX_ATOMS` atoms;
* particles with the same sorted pair distances are merged, the first one
  is kept, in the order: number of layers, canonical sequence, shape.  All
  squared distances are multiples of d²/3, so they are compared exactly,
  as the integers 3 (r/d)².

Of 2640 particles built, 28 are merged, which leaves
:data:`PARTICLE_COUNTS`: 2612 particles, 85 fcc (16-198 atoms), 84 hcp
(17-192 atoms) and 2443 faulted (23-198 atoms), 16 to 198 atoms in all
(median 105).  Each is labelled ``"stacking <abc> <shape>"``, e.g.
``"stacking ABCBA disc-4"``.

**The analysis.**  :func:`stacking_sequence` finds the close-packed
layers of any cluster, at any scale, orientation and atom order, and
returns its :class:`Stacking`, or None when it is not close-packed.
"""

import csv
import itertools
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.distance import pdist

from diffpy.deepstruc.clusters import _canonical
from diffpy.deepstruc.debye import cluster_xyz

#: Distance between neighbouring close-packed layers, in units of d.
LAYER_SPACING = math.sqrt(2.0 / 3.0)
#: Stacking classes (every interior layer c, every one h, or a mixture).
KINDS = ("fcc", "hcp", "faulted")
#: The three registries of a close-packed layer.
REGISTRIES = "ABC"
#: Fewest layers of a generated particle (and of a stacking).
MIN_LAYERS = 3
#: Most layers of a generated particle.
MAX_LAYERS = 10
#: Fewest atoms of a generated particle.
MIN_ATOMS = 5
#: Most atoms of a generated particle.
MAX_ATOMS = 200
#: Fewest atoms of each layer of a generated particle.
MIN_LAYER_ATOMS = 3
#: Default largest deviation (units of d) of an atom from its ideal
#: close-packed site in :func:`stacking_sequence`.
TOLERANCE = 0.2
#: Number of generated particles of each kind.
PARTICLE_COUNTS = {"fcc": 85, "hcp": 84, "faulted": 2443}

_SQRT3 = math.sqrt(3.0)
# in-plane lattice vectors (rows) and the shift from one registry to the
# next
_CELL = np.array([[1.0, 0.0], [0.5, _SQRT3 / 2]])
_SHIFT = _CELL.sum(0) / 3
# projections of lattice sites on the edge normals are multiples of this
_ROW_STEP = _SQRT3 / 6
# atoms closer than this (units of d) are bonded: between the first
# (1) and second (sqrt 2) neighbour shells
_BOND = 0.5 * (1.0 + math.sqrt(2.0))
# triangle normals within this angle belong to one candidate axis
_AXIS_ANGLE = math.radians(10.0)
# least six-fold order of the bond directions about a layer normal
_MIN_ORDER = 0.6
# most candidate axes tested, the most populated first
_MAX_AXES = 8
_RELABELLINGS = tuple(
    str.maketrans(REGISTRIES, "".join(p))
    for p in itertools.permutations(REGISTRIES)
)


@dataclass(frozen=True)
class LayerShape:
    """The in-plane outline cut from every layer of a particle.

    The region is a disc of radius ``radius`` intersected with a hexagon
    whose edges run along close-packed rows: three edges, with outward
    normals at 90°, 210° and 330° from a1, lie ``apothems[0]`` from the
    centre, the other three (normals at 30°, 150° and 270°)
    ``apothems[1]``.  An infinite value drops the bound: a disc has two
    infinite apothems, a triangle ``(h, inf)``, a regular hexagon ``(h,
    h)`` and a truncated triangle ``(h1, h2)`` with h1 < h2 < 2 h1.

    Attributes
    ----------
    name : str
        Name used in particle labels, e.g. ``"disc-4"``.
    radius : float
        Disc radius in units of d.
    apothems : tuple of float
        Distances of the two sets of edges from the centre, units of d.
    """

    name: str
    radius: float = math.inf
    apothems: tuple[float, float] = (math.inf, math.inf)

    def __post_init__(self):
        if not math.isfinite(self.extent) or self.extent <= 0:
            raise ValueError(
                f"The layer shape {self.name!r} must be bounded: give a "
                "positive finite radius or apothem."
            )

    @property
    def extent(self) -> float:
        """Radius (units of d) of a circle around the centre that holds it."""
        return min(self.radius, 2.0 * min(self.apothems))

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Which in-plane points lie inside the outline.

        Parameters
        ----------
        points : numpy.ndarray
            ``(n, 2)`` coordinates in units of d, relative to the centre.

        Returns
        -------
        numpy.ndarray
            ``(n,)`` booleans.
        """
        points = np.asarray(points, float)
        inside = np.einsum("ij,ij->i", points, points) <= self.radius**2
        for apothem, first in zip(self.apothems, (90, 30)):
            for degrees in (first, first + 120, first + 240):
                angle = math.radians(degrees)
                normal = np.array([math.cos(angle), math.sin(angle)])
                inside &= points @ normal <= apothem
        return inside


def disc(k: int) -> LayerShape:
    """The disc ``"disc-k"`` of radius sqrt((k + 1/2) / 3) d.

    Squared distances of the sites of any registry from the centre are
    multiples of d²/3, so the rim never passes through an atom.
    """
    return LayerShape(f"disc-{k}", radius=math.sqrt((k + 0.5) / 3.0))


def polygon(m1: int, m2: int | None = None) -> LayerShape:
    """A polygon with apothems (m + 1/2) sqrt(3)/6 d.

    The sites project on the edge normals at multiples of sqrt(3)/6 d, so
    no edge passes through an atom.

    Parameters
    ----------
    m1 : int
        Size of the first set of edges.
    m2 : int, optional
        Size of the second set: None gives the triangle ``"triangle-m1"``,
        ``m2 == m1`` the hexagon ``"hexagon-m1"`` and otherwise the
        truncated triangle ``"truncated-m1-m2"``.

    Returns
    -------
    LayerShape
    """
    h1 = (m1 + 0.5) * _ROW_STEP
    if m2 is None:
        return LayerShape(f"triangle-{m1}", apothems=(h1, math.inf))
    name = f"hexagon-{m1}" if m2 == m1 else f"truncated-{m1}-{m2}"
    return LayerShape(name, apothems=(h1, (m2 + 0.5) * _ROW_STEP))


#: The in-plane outlines of the generated particles, in the order that
#: decides which duplicate is kept.
SHAPES: tuple[LayerShape, ...] = (
    *(disc(k) for k in (4, 9, 13, 21)),
    *(polygon(m, m) for m in (6, 9)),
    *(polygon(m) for m in (3, 5, 7)),
    *(polygon(m1, m2) for m1, m2 in ((3, 5), (4, 6), (6, 8))),
)


def _check_sequence(sequence: str) -> str:
    if (
        not isinstance(sequence, str)
        or len(sequence) < MIN_LAYERS
        or set(sequence) - set(REGISTRIES)
        or any(a == b for a, b in zip(sequence, sequence[1:]))
    ):
        raise ValueError(
            f"{sequence!r} is not a close-packed stacking sequence: please "
            f"give at least {MIN_LAYERS} letters of {REGISTRIES!r} with no "
            "two equal neighbours, e.g. 'ABCB'."
        )
    return sequence


def canonical_sequence(sequence: str) -> str:
    """The canonical form of a stacking sequence.

    Parameters
    ----------
    sequence : str
        Layer registries, e.g. ``"CBCA"``.

    Returns
    -------
    str
        The lexicographically smallest of the six relabellings of the
        sequence and of its reversal (``"ABAC"``).

    Raises
    ------
    ValueError
        For fewer than :data:`MIN_LAYERS` layers, letters other than A, B
        and C, or two equal neighbours.
    """
    _check_sequence(sequence)
    return min(
        s.translate(table)
        for s in (sequence, sequence[::-1])
        for table in _RELABELLINGS
    )


def hc_sequence(sequence: str) -> str:
    """Jagodzinski's h/c form of a stacking sequence.

    Parameters
    ----------
    sequence : str
        Layer registries, e.g. ``"ABCB"``.

    Returns
    -------
    str
        One letter per interior layer, the end layers have none: ``h``
        when the layer's two neighbours are equal, ``c`` when they differ
        (``"ch"``).

    Raises
    ------
    ValueError
        As :func:`canonical_sequence`.
    """
    _check_sequence(sequence)
    return "".join(
        "h" if below == above else "c"
        for below, above in zip(sequence, sequence[2:])
    )


def stacking_kind(hc: str) -> str:
    """``"fcc"``, ``"hcp"`` or ``"faulted"`` for an h/c sequence."""
    if not hc or set(hc) - set("hc"):
        raise ValueError(
            f"{hc!r} is not an h/c sequence: please give letters h and c."
        )
    if set(hc) == {"c"}:
        return "fcc"
    if set(hc) == {"h"}:
        return "hcp"
    return "faulted"


def registry_sequences(n_layers: int) -> np.ndarray:
    """Every sequence of registries of ``n_layers`` layers from A.

    Parameters
    ----------
    n_layers : int
        Number of layers, at least 1.

    Returns
    -------
    numpy.ndarray
        ``(2**(n_layers - 1), n_layers)`` registries (0, 1 or 2 for A, B
        or C), the first 0 and each next one or two registries on from
        the one below it, so that no two neighbours are equal.
    """
    turns = list(itertools.product((1, 2), repeat=n_layers - 1))
    turns = np.array(turns, dtype=int).reshape(len(turns), n_layers - 1)
    start = np.zeros((len(turns), 1), dtype=int)
    return np.cumsum(np.hstack([start, turns]), axis=1) % 3


def stacking_sequences(n_layers: int) -> list[str]:
    """All canonical stacking sequences of ``n_layers`` layers, sorted.

    Parameters
    ----------
    n_layers : int
        At least :data:`MIN_LAYERS`.

    Returns
    -------
    list of str
        One sequence per h/c form up to reversal: (2**m + 2**ceil(m/2)) / 2
        of them for m = ``n_layers - 2`` interior layers.
    """
    if n_layers < MIN_LAYERS:
        raise ValueError(
            f"A stacking needs at least {MIN_LAYERS} layers, not {n_layers}."
        )
    found = set()
    # after "AB", each layer takes one of the two registries unlike the
    # layer below it
    for choices in itertools.product((0, 1), repeat=n_layers - 2):
        sequence = "AB"
        for choice in choices:
            free = [r for r in REGISTRIES if r != sequence[-1]]
            sequence += free[choice]
        found.add(canonical_sequence(sequence))
    return sorted(found)


@dataclass(frozen=True)
class Stacking:
    """The layer stacking of a close-packed particle.

    Attributes
    ----------
    abc : str
        Canonical sequence of the layer registries
        (:func:`canonical_sequence`), read from one end.
    hc : str
        h/c form of ``abc``, interior layers only (:func:`hc_sequence`).
    kind : str
        One of :data:`KINDS`.
    axis : tuple of float
        Unit normal of the layers in the frame of the analysed
        coordinates, up to sign; ``(0, 0, 1)`` for the generated
        particles.  Not compared: equal stackings along other axes are
        equal.
    """

    abc: str
    hc: str
    kind: str
    axis: tuple[float, float, float] = field(
        default=(0.0, 0.0, 1.0), compare=False
    )

    @property
    def n_layers(self) -> int:
        """Number of layers."""
        return len(self.abc)

    @classmethod
    def from_sequence(
        cls,
        sequence: str,
        axis: tuple[float, float, float] = (0.0, 0.0, 1.0),
    ) -> "Stacking":
        """The stacking of a sequence of registries, e.g. ``"BCAC"``.

        Raises
        ------
        ValueError
            For a sequence that :func:`canonical_sequence` rejects.
        """
        abc = canonical_sequence(sequence)
        hc = hc_sequence(abc)
        axis = tuple(float(a) for a in axis)
        return cls(abc, hc, stacking_kind(hc), axis)


@dataclass(frozen=True, eq=False)
class StackedParticle:
    """One particle of :func:`stacking_particles`.

    Attributes
    ----------
    xyz : numpy.ndarray
        Read-only ``(n_atoms, 3)`` coordinates in units of d, centred, in
        the canonical atom order of :mod:`diffpy.deepstruc.clusters`;
        layers normal to z and stacked upwards in the order of
        ``stacking.abc``, a1 along x.
    stacking : Stacking
        Its stacking sequence.
    shape : str
        Name of its :class:`LayerShape`.
    """

    xyz: np.ndarray
    stacking: Stacking
    shape: str

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.xyz)

    @property
    def kind(self) -> str:
        """``"fcc"``, ``"hcp"`` or ``"faulted"``."""
        return self.stacking.kind

    @property
    def label(self) -> str:
        """Unique name, e.g. ``"stacking ABCBA disc-4"``."""
        return f"stacking {self.stacking.abc} {self.shape}"


def _layer_sites(shape: LayerShape) -> tuple[np.ndarray, ...]:
    """In-plane sites of registries A, B and C inside an outline."""
    reach = math.ceil(shape.extent * 2.0 / _SQRT3) + 2
    steps = np.arange(-reach, reach + 1)
    ij = np.stack(np.meshgrid(steps, steps, indexing="ij"), -1)
    lattice = ij.reshape(-1, 2) @ _CELL
    sites = []
    for k in range(len(REGISTRIES)):
        points = lattice + k * _SHIFT
        sites.append(points[shape.contains(points)])
    return tuple(sites)


def _stack(sites: tuple[np.ndarray, ...], registries: str) -> np.ndarray:
    """Stack the layers of the given registries along z (not centred)."""
    layers = []
    for height, letter in enumerate(registries):
        points = sites[REGISTRIES.index(letter)]
        z = np.full((len(points), 1), height * LAYER_SPACING)
        layers.append(np.hstack([points, z]))
    return np.vstack(layers)


def build_particle(sequence: str, shape: LayerShape | str) -> np.ndarray:
    """The close-packed particle of a registry sequence and an outline.

    Parameters
    ----------
    sequence : str
        Registries of the layers, bottom to top, e.g. ``"ABCB"``; taken as
        given, not relabelled (A sites lie under the outline's centre).
    shape : LayerShape or str
        The outline, or the name of one of :data:`SHAPES`.

    Returns
    -------
    numpy.ndarray
        ``(n_atoms, 3)`` coordinates in units of d, centred, in canonical
        atom order.

    Raises
    ------
    ValueError
        For a bad sequence, an unknown shape name or an empty layer.
    """
    _check_sequence(sequence)
    if isinstance(shape, str):
        shape = _shape_named(shape)
    sites = _layer_sites(shape)
    empty = sorted(
        {c for c in sequence if not len(sites[REGISTRIES.index(c)])}
    )
    if empty:
        raise ValueError(
            f"The shape {shape.name} holds no site of registry "
            f"{', '.join(empty)}; please choose a larger shape."
        )
    return _canonical(_stack(sites, sequence))


def _shape_named(name: str) -> LayerShape:
    for shape in SHAPES:
        if shape.name == name:
            return shape
    raise ValueError(
        f"Unknown layer shape {name!r}; please give a LayerShape or one of "
        + ", ".join(s.name for s in SHAPES)
        + "."
    )


def _distance_key(xyz: np.ndarray) -> bytes:
    """Exact multiset of pair distances: counts of the integers 3 r²."""
    squared = np.rint(3.0 * pdist(xyz, "sqeuclidean")).astype(np.int64)
    return np.bincount(squared).tobytes()


@lru_cache(maxsize=1)
def _particles() -> tuple[StackedParticle, ...]:
    shapes = [(shape, _layer_sites(shape)) for shape in SHAPES]
    seen: set[bytes] = set()
    particles = []
    for n_layers in range(MIN_LAYERS, MAX_LAYERS + 1):
        for abc in stacking_sequences(n_layers):
            stacking = Stacking.from_sequence(abc)
            for shape, sites in shapes:
                counts = [len(sites[REGISTRIES.index(c)]) for c in abc]
                if min(counts) < MIN_LAYER_ATOMS or not (
                    MIN_ATOMS <= sum(counts) <= MAX_ATOMS
                ):
                    continue
                xyz = _stack(sites, abc)
                key = _distance_key(xyz)
                if key in seen:
                    continue
                seen.add(key)
                xyz = _canonical(xyz)
                xyz.setflags(write=False)
                particles.append(StackedParticle(xyz, stacking, shape.name))
    return tuple(particles)


def stacking_particles() -> list[StackedParticle]:
    """Every distinct generated close-packed particle.

    See the module description for the rules; built once per process in a
    few seconds.

    Returns
    -------
    list of StackedParticle
        :data:`PARTICLE_COUNTS` particles in generation order.
    """
    return list(_particles())


# ------------------------------------------------------------ analysis
#: Columns of :func:`write_stacking_csv`.
STACKING_COLUMNS = (
    "id",
    "kind",
    "sequence",
    "hc",
    "n_layers",
    "shape",
    "n_atoms",
)


def write_stacking_csv(particles, path_or_file) -> None:
    """Write particles of :func:`stacking_particles` as CSV, one per row.

    Parameters
    ----------
    particles : iterable of StackedParticle
        The particles, numbered in the given order.
    path_or_file : str, path-like or text file
        Destination file name, or an open text stream (e.g. sys.stdout).
    """
    rows = [
        {
            "id": k,
            "kind": p.kind,
            "sequence": p.stacking.abc,
            "hc": p.stacking.hc,
            "n_layers": p.stacking.n_layers,
            "shape": p.shape,
            "n_atoms": p.n_atoms,
        }
        for k, p in enumerate(particles)
    ]
    if hasattr(path_or_file, "write"):
        _write_csv(path_or_file, rows)
    else:
        with open(path_or_file, "w", newline="", encoding="utf-8") as handle:
            _write_csv(handle, rows)


def _write_csv(handle, rows: list[dict]) -> None:
    writer = csv.DictWriter(handle, STACKING_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def _triangle_normals(xyz: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Unit normals of the triangles of three mutually bonded atoms."""
    neighbours = [set() for _ in range(len(xyz))]
    for i, j in pairs:
        neighbours[i].add(j)
        neighbours[j].add(i)
    triangles = [
        (i, j, k)
        for i, j in pairs
        for k in neighbours[i] & neighbours[j]
        if k > max(i, j)
    ]
    if not triangles:
        return np.zeros((0, 3))
    i, j, k = np.array(triangles).T
    normals = np.cross(xyz[j] - xyz[i], xyz[k] - xyz[i])
    return normals / np.linalg.norm(normals, axis=1, keepdims=True)


def _candidate_axes(normals: np.ndarray) -> list[np.ndarray]:
    """Directions shared by many triangle normals, most shared first."""
    groups = []
    remaining = np.ones(len(normals), bool)
    while remaining.any():
        seed = normals[np.argmax(remaining)]
        cosines = normals @ seed
        members = remaining & (np.abs(cosines) > math.cos(_AXIS_ANGLE))
        aligned = normals[members] * np.sign(cosines[members])[:, None]
        mean = aligned.sum(0)
        groups.append(
            (-members.sum(), len(groups), mean / np.linalg.norm(mean))
        )
        remaining &= ~members
    groups.sort(key=lambda g: g[:2])
    return [axis for _, _, axis in groups[:_MAX_AXES]]


def _layers(heights: np.ndarray) -> np.ndarray:
    """Layer index of each atom: cuts at gaps over half a layer spacing."""
    order = np.argsort(heights)
    cuts = np.diff(heights[order]) > 0.5 * LAYER_SPACING
    index = np.empty(len(heights), int)
    index[order] = np.concatenate([[0], np.cumsum(cuts)])
    return index


def _refined_axis(xyz, axis, layer) -> np.ndarray:
    """The normal that makes the layers flattest (least squares)."""
    means = np.array([xyz[layer == k].mean(0) for k in range(layer.max() + 1)])
    spread = xyz - means[layer]
    _, vectors = np.linalg.eigh(spread.T @ spread)
    normal = vectors[:, 0]
    return normal if normal @ axis >= 0 else -normal


def _site_distance(frac: np.ndarray) -> np.ndarray:
    """Distance (units of d) from fractional offsets to a lattice point."""
    frac = frac - np.round(frac)
    images = np.array(list(itertools.product((-1, 0, 1), repeat=2)))
    shifted = frac[..., None, :] + images
    return np.linalg.norm(shifted @ _CELL, axis=-1).min(-1)


def _circular_mean(frac: np.ndarray) -> np.ndarray:
    """Mean of fractional coordinates modulo 1, per column."""
    phase = np.exp(2j * np.pi * frac).mean(0)
    return np.angle(phase) / (2 * np.pi)


@dataclass(frozen=True, eq=False)
class StackingLayers:
    """The layers of a close-packed cluster (:func:`stacking_layers`).

    Attributes
    ----------
    stacking : Stacking
        The canonical stacking.
    layer : numpy.ndarray
        Layer index of every atom, 0 to ``n_layers - 1`` along ``axis``.
    registry : numpy.ndarray
        Registry of every layer in that order: 0, 1 or 2 for A, B or C,
        relative to the first layer (which is 0).
    step : numpy.ndarray
        In-plane translation, in the units of the analysed coordinates,
        that moves a layer on to the next registry (A to B, B to C, C to
        A).
    """

    stacking: Stacking
    layer: np.ndarray
    registry: np.ndarray
    step: np.ndarray

    @property
    def frame(self) -> np.ndarray:
        """The rotation into the frame of the layers.

        Its rows are a lattice row, the in-plane normal to it and the
        layer normal: ``xyz @ frame.T`` puts the layers normal to z and
        a row along x.
        """
        axis = np.asarray(self.stacking.axis)
        # a lattice row lies 30 degrees from the step between registries
        row = math.cos(math.pi / 6) * self.step - math.sin(
            math.pi / 6
        ) * np.cross(axis, self.step)
        row /= np.linalg.norm(row)
        return np.array([row, np.cross(axis, row), axis])

    def in_frame(
        self, xyz: np.ndarray
    ) -> tuple[np.ndarray, float, np.ndarray]:
        """The analysed cluster in the frame and unit of its lattice.

        Parameters
        ----------
        xyz : numpy.ndarray
            ``(n_atoms, 3)`` coordinates of the cluster analysed.

        Returns
        -------
        unit_xyz : numpy.ndarray
            The cluster centred, rotated by `frame` (layers normal to z)
            and in units of its nearest-neighbour distance d.
        d : float
            That distance, in the units of ``xyz``.
        origin : numpy.ndarray
            The in-plane position of a lattice site of the first layer's
            registry (a circular mean of the atoms' offsets from the
            lattice), in the frame and unit of ``unit_xyz``.
        """
        d = math.sqrt(3.0) * float(np.linalg.norm(self.step))
        unit_xyz = (xyz - xyz.mean(0)) @ self.frame.T / d
        plane = unit_xyz[:, :2] - np.outer(self.registry[self.layer], _SHIFT)
        origin = _circular_mean(plane @ np.linalg.inv(_CELL)) @ _CELL
        return unit_xyz, d, origin


def _stacking_along(xyz, axis, pairs, tolerance) -> StackingLayers | None:
    """The layers of ``xyz`` (units of d) along ``axis``, or None."""
    for _ in range(2):
        layer = _layers(xyz @ axis)
        if layer.max() + 1 < MIN_LAYERS:
            return None
        axis = _refined_axis(xyz, axis, layer)
    heights = xyz @ axis
    layer = _layers(heights)
    n_layers = layer.max() + 1
    if n_layers < MIN_LAYERS:
        return None
    levels = np.bincount(layer, heights) / np.bincount(layer)
    if np.abs(np.diff(levels) - LAYER_SPACING).max() > tolerance:
        return None
    if np.abs(heights - levels[layer]).max() > tolerance:
        return None
    # in-plane frame and the lattice orientation (six-fold mean of the
    # bond directions; bonds between layers project at 30° to the rows)
    e1 = np.cross(axis, [1.0, 0.0, 0.0])
    if np.linalg.norm(e1) < 0.5:
        e1 = np.cross(axis, [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    plane = xyz @ np.column_stack([e1, np.cross(axis, e1)])
    bonds = plane[pairs[:, 1]] - plane[pairs[:, 0]]
    sign = np.where(layer[pairs[:, 0]] == layer[pairs[:, 1]], 1.0, -1.0)
    angles = np.arctan2(bonds[:, 1], bonds[:, 0])
    six_fold = (sign * np.exp(6j * angles)).mean()
    if abs(six_fold) < _MIN_ORDER:
        return None
    theta = np.angle(six_fold) / 6
    rotation = np.array(
        [
            [math.cos(theta), math.sin(theta)],
            [-math.sin(theta), math.cos(theta)],
        ]
    )
    cell = _CELL @ rotation
    frac = plane @ np.linalg.inv(cell)
    # registry of each layer from its offset to the first layer
    offsets = np.array(
        [_circular_mean(frac[layer == k]) for k in range(n_layers)]
    )
    relative = offsets - offsets[0]
    steps = np.arange(len(REGISTRIES))[:, None] / 3.0
    distance = np.stack(
        [_site_distance(relative - step) for step in steps], axis=-1
    )
    registry = distance.argmin(-1)
    if np.any(registry[1:] == registry[:-1]):
        return None
    site = frac - registry[layer][:, None] / 3.0
    origin = _circular_mean(site)
    if _site_distance(site - origin).max() > tolerance:
        return None
    sequence = "".join(REGISTRIES[k] for k in registry)
    in_plane = np.column_stack([e1, np.cross(axis, e1)])
    step = in_plane @ (cell.sum(0) / 3.0)
    return StackingLayers(
        Stacking.from_sequence(sequence, axis), layer, registry, step
    )


def stacking_sequence(xyz, tolerance: float = TOLERANCE) -> Stacking | None:
    """The layer stacking of a close-packed cluster, or None.

    Parameters
    ----------
    xyz : array_like, ase.Atoms or diffpy.structure.Structure
        The cluster, at any scale, orientation and atom order.
    tolerance : float
        Largest deviation of an atom from its ideal site, in units of d.

    Returns
    -------
    Stacking or None
        The ``stacking`` of :func:`stacking_layers`, which describes the
        rules; None when the cluster is not close-packed.
    """
    layers = stacking_layers(xyz, tolerance)
    return None if layers is None else layers.stacking


def stacking_layers(
    xyz, tolerance: float = TOLERANCE
) -> StackingLayers | None:
    """The layers of a close-packed cluster and their stacking, or None.

    The cluster is scaled to its mean bond length d (bonds: pairs closer
    than (1 + sqrt 2)/2 times it).  Candidate layer normals are the
    directions shared by many triangles of bonded atoms.  Along each, the
    atoms are grouped into layers (cut at gaps over half a layer
    spacing), the normal is refined to make the layers flattest, and the
    stacking is accepted when

    * there are at least :data:`MIN_LAYERS` layers, every atom lies within
      ``tolerance`` of its layer's plane and the planes are
      :data:`LAYER_SPACING` apart within ``tolerance``;
    * one triangular lattice of spacing d, common to all layers, has a
      site of the layer's registry within ``tolerance`` of every atom;
    * the bond directions have six-fold order about the normal (bonds
      between layers count with the opposite sign, as they project at
      30° to the rows), which rejects the (110) planes of bcc, spaced
      like close-packed layers;
    * no two neighbouring layers share a registry.

    An fcc cluster has up to four such axes (the {111} normals); the one
    with the fewest layers is returned (then the smallest ``abc``), so a
    generated fcc particle may come back with fewer layers than its
    label.  Every generated particle is recognised after a random
    rotation, shuffling and Gaussian noise of 0.03 d on each coordinate;
    with 0.05 d, about 6 % are missed.

    Parameters
    ----------
    xyz : array_like, ase.Atoms or diffpy.structure.Structure
        The cluster, at any scale, orientation and atom order.
    tolerance : float
        Largest deviation of an atom from its ideal site, in units of d;
        the default tolerates decoded structures blurred by a few per cent
        of d.

    Returns
    -------
    StackingLayers or None
        The stacking, the layer of every atom, the registry of every
        layer and the step between registries.  None when no axis
        satisfies the rules: icosahedra, decahedra,
        sc, bcc, amorphous clusters, fewer than three layers.  A layer
        normal is only found from a triangle of bonded atoms within a
        layer, so stacks of single rows (the MMNP hcp blocks one cell
        wide) give None too.

    Raises
    ------
    ValueError
        For bad coordinates or a tolerance outside (0, 0.25].
    """
    if not 0.0 < tolerance <= 0.25:
        raise ValueError(
            f"Please give a tolerance in (0, 0.25] d, not {tolerance}: "
            "neighbouring registries lie 0.577 d apart."
        )
    xyz = cluster_xyz(xyz)
    if len(xyz) < MIN_LAYERS:
        return None
    # unit: the median distance to the closest atom, then the mean bond
    # length, which noise does not shorten
    closest = cKDTree(xyz).query(xyz, k=2)[0][:, 1]
    unit = np.median(closest)
    if not closest.min() > 1e-6 * unit:  # atoms on one spot
        return None
    xyz = (xyz - xyz.mean(0)) / unit
    for _ in range(3):
        pairs = cKDTree(xyz).query_pairs(_BOND, output_type="ndarray")
        if not len(pairs):
            return None
        bond = np.linalg.norm(xyz[pairs[:, 0]] - xyz[pairs[:, 1]], axis=1)
        xyz /= bond.mean()
        unit *= bond.mean()
    normals = _triangle_normals(xyz, pairs)
    found = [
        _stacking_along(xyz, axis, pairs, tolerance)
        for axis in _candidate_axes(normals)
    ]
    found = [s for s in found if s is not None]
    if not found:
        return None
    best = min(found, key=lambda s: (s.stacking.n_layers, s.stacking.abc))
    return replace(best, step=best.step * unit)
