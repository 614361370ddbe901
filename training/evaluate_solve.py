"""Evaluate the structure solution and its alternatives on new clusters.

Usage::

    python -m training.evaluate_solve --model onnx_models/mmnp \\
        --experimental ../shared/data/experimental --plots /tmp/fits \\
        --write-metadata

The test clusters lie outside every shipped library: their sorted pair
distances, in units of the first-shell distance
(:func:`diffpy.deepstruc.matching.nn_distance`), differ by more than
:data:`SHAPE_TOLERANCE` from those of each of the 197 MMNP shapes and of
each cluster of the ``"large"`` library (:func:`library_twin`; the set
builder raises on a twin).  They are built with ASE from parameters that
neither library uses (:data:`CONSTRUCTIONS`, :class:`Construction`):

* sc, fcc and bcc blocks (ASE's cubic cluster factories) with other
  surface families than the libraries' (100), (110) and (111) together,
  or centred on a cube centre (0.5, 0.5, 0.5), a tetrahedral site
  (0.25, 0.25, 0.25) or an edge centre (0.5, 0, 0) instead of an atom, or
  with layers out of the libraries' ascending order;
* hcp blocks of ``(s1, s2, s3)`` cells out of ascending order and unlike
  the ``(n, n, n +- 1)`` blocks of ``"large"``;
* Ino (r = 0) and Marks (r > 0) decahedra with a facet size p or q of 6
  or more, where the MMNP grid stops at 5 and ``"large"`` keeps
  ``|p - q| <= 2`` and r <= 2;
* Mackay icosahedra without their 12 vertex atoms, or without the outer
  atoms of one of their 20 facets;
* octahedra (with or without ASE's cutoff) with one vertex, or two
  opposite ones, cut by further (001) layers.

Two parts (:data:`PARTS`): ``small``, 24 clusters of 13-200 atoms over
all seven families (:data:`SIZE_RANGES`), and ``large``, 6 clusters of
300-1500 atoms (fcc, octahedral, decahedral, icosahedral).

Each test PDF is one cluster scaled to the nearest-neighbour distance d
of a real metal (the close-packed metals of
:data:`training.evaluate_stacking.METAL_D`, the bcc metals of
:data:`BCC_METAL_D` for the bcc family) times a factor within
±:data:`~training.evaluate_stacking.D_SPREAD`, and simulated like the
test PDFs of :mod:`training.evaluate` (its
:class:`~training.evaluate.TestCase`: Debye PDF, r = 0-29.99 Å in
0.01 Å steps, Qmin :data:`~training.evaluate.QMIN`, no strain) at Qmax,
Biso and qdamp drawn in :data:`RANGES`, with Gaussian noise of
:data:`NOISE` of max |G| on every other PDF of a family.  Everything is
drawn from one seed (``--seed``, a stream per part).  The methods get
G(r), Qmax and Qmin only, never d, qdamp, Biso or the family.

Every method runs on the same PDFs (:data:`METHODS`):

* ``propose``: :func:`diffpy.deepstruc.propose_structures` as shipped;
* ``mine``: :func:`diffpy.deepstruc.mining.mine_library` over the 197
  MMNP shapes for the ``small`` part and over the MMNP shapes and the
  ``"large"`` library together (one ranking, twins removed) for the
  ``large`` part and the measured PDFs;
* ``solve``: ``diffpy.deepstruc.solve.solve_structure`` (imported when
  first used), with ``max_atoms`` :data:`MAX_ATOMS` of the part (2000 on
  the ``large`` part and the measured PDFs).

The top candidate is compared with the truth: **count**, exactly the
true number of atoms; **shape**, the same count and sorted pair
distances within :data:`SHAPE_TOLERANCE` of the truth's, both in units
of their first-shell distance (:func:`same_shape`); **ΔRw** = Rw of the
top candidate minus Rw of the true cluster fitted the same way
(:func:`training.evaluate.truth_rw`: on the same data, r range and
assumed instrument parameters, with qdamp refined for ``solve``, which
refines it), and the share with ΔRw <=
:data:`DELTA_RW_OK`; **MAE** (Å), the mean distance per atom after
centring, optimal assignment and rotation over the count-matched PDFs
only (:func:`aligned_mae`); and the seconds per PDF.  Summaries per part
and per family; for every method the sources of its winners (for
``solve`` the share of ``"solved"`` winners).

``--experimental DIR`` runs the three methods on the measured Pt PDFs
(``*.gr``) of DIR (``propose``, ``mine`` over MMNP and ``"large"``,
``solve`` with 2000 atoms at most) and reports Rw, atom count, diameter,
principal radii of gyration, qdamp
(largest pair distance plus d, in nm) and type of each method's top
candidate beside the sizes that the folder's README gives; ``--plots``
gets one fit figure per file.

``--geometry-model DIR`` runs ``propose`` and ``solve`` with the model
trained on the geometry-disjoint split and gives every method only the
training shapes of that split: ``propose`` and ``solve`` snap to them
(``library=``), ``mine`` fits them, on the ``large`` part and the
measured PDFs with the ``"large"`` clusters that repeat no held-out MMNP
shape.  ``solve`` mines the whole ``"large"`` library for starts above
200 atoms whatever its ``library``.  ``--library`` gives one library to
every method instead (``library=`` of ``propose`` and ``solve``).

The report (every PDF's results and the summaries) goes to
``evaluation_solve.json`` in ``--out`` (default: the folder of the model
that ``propose`` runs); ``--write-metadata`` stores the summary under
``metrics["solve"]`` (``metrics["solve_geometry"]`` with
``--geometry-model``) of the model's ``metadata.json`` (or the metadata
file it names).
"""

import argparse
import importlib.util
import itertools
import json
import re
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.spatial.distance import pdist
from tqdm import tqdm

from diffpy.deepstruc.cli import SOLVE_STRAIN
from diffpy.deepstruc.clusters import (
    _CUBIC_SURFACES,
    _LATTICE_FACTOR,
    CLUSTER_TYPES,
    _sorted_pair_distances,
    build_cluster,
    enumerate_library,
)
from diffpy.deepstruc.debye import DebyeParameters
from diffpy.deepstruc.fitting import FIT_RANGE
from diffpy.deepstruc.libraries import (
    Library,
    _pair_key,
    build_large_cluster,
    load_library,
    unit_cluster,
)
from diffpy.deepstruc.matching import nn_distance
from diffpy.deepstruc.mining import mine_library
from diffpy.deepstruc.pdfdata import instrument_parameters, load_pdf
from diffpy.deepstruc.plausibility import FitQualityWarning
from diffpy.deepstruc.propose import propose_structures
from training.evaluate import (
    ELEMENT,
    QMIN,
    TestCase,
    _commit,
    _stats,
    add_metadata_option,
    add_strain_option,
    delta_rw,
    metadata_target,
    store_metrics,
    truth_rw,
)
from training.evaluate_stacking import (
    D_SPREAD,
    METAL_D,
    _model_info,
    nearest_start_mae,
)

#: Nearest-neighbour distances (Å) of bcc metals at room temperature
#: (a sqrt(3) / 2, textbook lattice constants), for the bcc family.
BCC_METAL_D = {
    "Fe": 2.48,
    "Cr": 2.50,
    "V": 2.62,
    "Mo": 2.72,
    "W": 2.74,
    "Nb": 2.86,
    "Ta": 2.86,
}
#: Ranges of Qmax and qdamp (Å⁻¹) and Biso (Å²), drawn uniformly.
RANGES = {"qmax": (18.0, 28.0), "biso": (0.2, 0.8), "qdamp": (0.02, 0.06)}
#: Standard deviation of the noise (fraction of max |G|) on every other
#: PDF of a family; the others are clean.
NOISE = 0.01
#: Parts of the evaluation with simulated PDFs.
PARTS = ("small", "large")
#: Methods, each judged by its top candidate.
METHODS = ("propose", "mine", "solve")
#: Atom counts (inclusive) of each part's clusters.
SIZE_RANGES = {"small": (13, 200), "large": (300, 1500)}
#: ``max_atoms`` of ``solve`` in each part and on the measured PDFs.
MAX_ATOMS = {"small": 200, "large": 2000, "experimental": 2000}
#: Two clusters have the same shape when they have the same number of
#: atoms and their sorted pair distances, in units of their first-shell
#: distance, differ by at most this much.
SHAPE_TOLERANCE = 0.03
#: A top candidate fits about as well as the truth when its Rw exceeds
#: the truth's by at most this much.
DELTA_RW_OK = 0.02
#: PDFs of the ``--quick`` run: positions in each part's cluster list.
QUICK = {"small": (1, 10, 18), "large": (0,)}
#: Name of the report file.
REPORT_NAME = "evaluation_solve.json"
#: Size of the figures of the measured PDFs (inches) and their dpi.
PLOT_SIZE = (6.4, 2.3)
PLOT_DPI = 80


@dataclass(frozen=True)
class Construction:
    """How one test cluster is built.

    Attributes
    ----------
    family : str
        Its structure type, one of
        :data:`diffpy.deepstruc.clusters.CLUSTER_TYPES`.
    kind : str
        ``"block"`` (an ASE cubic factory; ``params`` are the surfaces,
        their layers and the centre in lattice coordinates), ``"hcp"``
        (``params``: the block of hcp cells), ``"decahedron"``
        (``params``: ASE's p, q, r), ``"icosahedron-vertices"`` and
        ``"icosahedron-facet"`` (``params``: the shells of the Mackay
        icosahedron, less its 12 vertex atoms or the outer atoms of one
        facet), or ``"octahedron-cut"`` (``params``: ASE's length and
        cutoff, the number of cut vertices, 1 or 2, and the number of
        (001) layers cut at each).
    params : tuple
        See ``kind``.
    """

    family: str
    kind: str
    params: tuple

    @property
    def label(self) -> str:
        """A readable name, e.g. ``"decahedral Marks 2-6-1"``."""
        p = self.params
        if self.kind == "block":
            surfaces, layers, centre = p
            faces = " ".join(
                "(" + "".join(map(str, s)) + f"){n}"
                for s, n in zip(surfaces, layers)
            )
            at = "" if centre is None else f" at {tuple(centre)}"
            return f"{self.family} block {faces}{at}"
        if self.kind == "hcp":
            return f"hcp block {'-'.join(map(str, p))}"
        if self.kind == "decahedron":
            name = "Ino" if p[2] == 0 else "Marks"
            return f"decahedral {name} {'-'.join(map(str, p))}"
        if self.kind == "icosahedron-vertices":
            return f"icosahedral Mackay {p[0]} shells less 12 vertices"
        if self.kind == "icosahedron-facet":
            return f"icosahedral Mackay {p[0]} shells less one facet"
        length, cutoff, vertices, depth = p
        layers = f"{depth} layer{'s' if depth > 1 else ''}"
        at = "two opposite vertices" if vertices == 2 else "one vertex"
        return f"octahedral {length}-{cutoff} less {layers} at {at}"


def _block(family, surfaces, layers, centre=None):
    return Construction(family, "block", (surfaces, layers, centre))


_FACES_110_111 = ((1, 1, 0), (1, 1, 1))
_FACES_100_110 = ((1, 0, 0), (1, 1, 0))
_FACES_100_311 = ((1, 0, 0), (3, 1, 1))
_FACES_4 = (*_CUBIC_SURFACES, (2, 1, 0))
_CUBE_CENTRE = (0.5, 0.5, 0.5)
_TETRAHEDRAL_SITE = (0.25, 0.25, 0.25)
_EDGE_CENTRE = (0.5, 0.0, 0.0)

#: The test clusters of each part, in family order.
CONSTRUCTIONS = {
    "small": (
        _block("sc", _CUBIC_SURFACES, (2, 3, 4), _CUBE_CENTRE),
        _block("sc", _FACES_4, (3, 4, 4, 6)),
        _block("sc", _CUBIC_SURFACES, (3, 4, 5), _CUBE_CENTRE),
        _block("fcc", _FACES_110_111, (4, 2)),
        _block("fcc", _CUBIC_SURFACES, (3, 3, 4), _TETRAHEDRAL_SITE),
        _block("fcc", _CUBIC_SURFACES, (3, 5, 5), _CUBE_CENTRE),
        _block("fcc", _FACES_100_311, (4, 6)),
        _block("bcc", _FACES_110_111, (2, 5)),
        _block("bcc", _CUBIC_SURFACES, (4, 4, 6), _TETRAHEDRAL_SITE),
        _block("bcc", _FACES_100_110, (4, 3)),
        Construction("hcp", "hcp", (4, 3, 2)),
        Construction("hcp", "hcp", (5, 4, 2)),
        Construction("hcp", "hcp", (5, 4, 4)),
        Construction("icosahedral", "icosahedron-vertices", (3,)),
        Construction("icosahedral", "icosahedron-facet", (3,)),
        Construction("icosahedral", "icosahedron-vertices", (4,)),
        Construction("icosahedral", "icosahedron-facet", (4,)),
        Construction("decahedral", "decahedron", (2, 6, 0)),
        Construction("decahedral", "decahedron", (1, 6, 1)),
        Construction("decahedral", "decahedron", (3, 6, 0)),
        Construction("decahedral", "decahedron", (2, 6, 1)),
        Construction("octahedral", "octahedron-cut", (5, 0, 1, 2)),
        Construction("octahedral", "octahedron-cut", (6, 1, 1, 1)),
        Construction("octahedral", "octahedron-cut", (6, 0, 2, 2)),
    ),
    "large": (
        _block("fcc", _CUBIC_SURFACES, (5, 7, 6)),
        Construction("octahedral", "octahedron-cut", (9, 2, 1, 2)),
        Construction("icosahedral", "icosahedron-vertices", (6,)),
        Construction("decahedral", "decahedron", (4, 7, 1)),
        Construction("decahedral", "decahedron", (8, 3, 0)),
        Construction("icosahedral", "icosahedron-facet", (8,)),
    ),
}


@dataclass(frozen=True)
class OutCluster:
    """A test cluster (the ``shape`` of a :class:`TestCase`).

    Attributes
    ----------
    label : str
        :attr:`Construction.label`.
    family : str
        Its structure type.
    construction : Construction
        How it was built.
    xyz : numpy.ndarray
        ``(n_atoms, 3)`` coordinates in units of its first-shell
        distance, centred.
    """

    label: str
    family: str
    construction: Construction
    xyz: np.ndarray = field(repr=False)

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.xyz)


@dataclass(frozen=True)
class Setup:
    """Model, settings and libraries of the methods.

    Attributes
    ----------
    model : pathlib.Path
        Model folder of ``propose`` and ``solve``.
    n_samples, seed : int
        Prior samples of ``propose``; seed of ``propose`` and ``solve``.
    libraries : dict
        Per part (``"small"``, ``"large"``, ``"experimental"``) and
        method, the library given to it: ``propose`` and ``solve`` snap
        to it (their ``library=``; None: their defaults), ``mine`` fits
        it.
    strain : bool or "auto"
        ``solve``'s ``strain=``; ``propose`` and ``mine`` refit a strain
        (their ``strain=True``) unless it is False.
    """

    model: Path
    n_samples: int
    seed: int
    libraries: dict
    strain: bool | str = False


def _ase_block(family, surfaces, layers, centre) -> np.ndarray:
    from ase import cluster

    factory = {
        "sc": cluster.SimpleCubic,
        "fcc": cluster.FaceCenteredCubic,
        "bcc": cluster.BodyCenteredCubic,
    }[family]
    atoms = factory(
        "Cu",
        [list(s) for s in surfaces],
        list(layers),
        _LATTICE_FACTOR[family],
        center=None if centre is None else list(centre),
    )
    return atoms.get_positions()


def _outer_layer(xyz: np.ndarray, direction: np.ndarray, n: int = 1):
    """Mask of the atoms of the ``n`` outermost layers along a direction."""
    height = np.round(xyz @ direction, 4)
    levels = np.unique(height)[::-1]
    return height > levels[n] if n < len(levels) else np.ones(len(xyz), bool)


def _facet_normal(xyz: np.ndarray) -> np.ndarray:
    """Outward normal of one facet of an icosahedron (unit vector)."""
    radius = np.linalg.norm(xyz, axis=1)
    vertices = xyz[np.argsort(-radius, kind="stable")[:12]]
    first = vertices[0]
    near = np.argsort(np.linalg.norm(vertices - first, axis=1))[1:6]
    # two neighbours of the first vertex that neighbour each other
    a, b = min(
        itertools.combinations(near, 2),
        key=lambda p: np.linalg.norm(vertices[p[0]] - vertices[p[1]]),
    )
    normal = first + vertices[a] + vertices[b]
    return normal / np.linalg.norm(normal)


def build_construction(construction: Construction) -> np.ndarray:
    """Build a test cluster in units of its first-shell distance.

    Parameters
    ----------
    construction : Construction
        What to build.

    Returns
    -------
    numpy.ndarray
        ``(n_atoms, 3)`` coordinates, centred, first-shell distance 1
        (:func:`diffpy.deepstruc.libraries.unit_cluster`).
    """
    kind, p = construction.kind, construction.params
    if kind == "block":
        xyz = _ase_block(construction.family, *p)
    elif kind == "hcp":
        xyz = build_cluster("hcp", p, 1.0)
    elif kind == "decahedron":
        xyz = build_cluster("decahedral", p, 1.0)
    elif kind.startswith("icosahedron"):
        xyz = np.array(build_cluster("icosahedral", p, 1.0))
        if kind == "icosahedron-vertices":
            radius = np.linalg.norm(xyz, axis=1)
            xyz = xyz[np.argsort(-radius, kind="stable")[12:]]
        else:
            xyz = xyz[~_outer_layer(xyz, _facet_normal(xyz))]
    elif kind == "octahedron-cut":
        length, cutoff, vertices, depth = p
        xyz = build_large_cluster("octahedral", (length, cutoff))
        xyz = xyz - xyz.mean(0)
        axis = np.array([0.0, 0.0, 1.0])
        cut = _outer_layer(xyz, axis, depth)
        if vertices == 2:
            cut |= _outer_layer(xyz, -axis, depth)
        xyz = xyz[~cut]
    else:
        raise ValueError(f"Unknown construction kind {kind!r}.")
    return np.array(unit_cluster(xyz, construction.label))


def _unit_distances(xyz: np.ndarray) -> np.ndarray:
    """Sorted pair distances in units of the first-shell distance."""
    return _sorted_pair_distances(np.asarray(xyz, float)) / nn_distance(xyz)


def same_shape(xyz, other, tolerance: float = SHAPE_TOLERANCE) -> bool:
    """Whether two clusters have the same shape, whatever their scale.

    Parameters
    ----------
    xyz, other : numpy.ndarray
        ``(n_atoms, 3)`` coordinates at any scale.
    tolerance : float
        Largest difference of their sorted pair distances, in units of
        each one's first-shell distance
        (:func:`diffpy.deepstruc.matching.nn_distance`).

    Returns
    -------
    bool
        True for the same number of atoms and pair distances within
        ``tolerance``.
    """
    if len(xyz) != len(other):
        return False
    difference = _unit_distances(xyz) - _unit_distances(other)
    return bool(np.abs(difference).max() <= tolerance)


@lru_cache(maxsize=1)
def _library_by_count() -> dict:
    """The MMNP and ``"large"`` clusters by atom count: name, index."""
    found = {}
    for name in ("mmnp", "large"):
        for index, entry in enumerate(load_library(name)):
            found.setdefault(entry.n_atoms, []).append((name, index))
    return found


@lru_cache(maxsize=None)
def _library_distances(name: str, index: int) -> np.ndarray:
    return _unit_distances(load_library(name)[index].xyz)


def library_twin(xyz, tolerance: float = SHAPE_TOLERANCE) -> str | None:
    """The MMNP or ``"large"`` cluster of the same shape, if any.

    Returns
    -------
    str or None
        ``"<library> <label>"`` of the first such cluster (see
        :func:`same_shape`), None when there is none.
    """
    distances = _unit_distances(xyz)
    for name, index in _library_by_count().get(len(xyz), []):
        known = _library_distances(name, index)
        if np.abs(known - distances).max() <= tolerance:
            return f"{name} {load_library(name)[index].label}"
    return None


@lru_cache(maxsize=None)
def part_clusters(part: str) -> tuple[OutCluster, ...]:
    """The test clusters of a part (:data:`CONSTRUCTIONS`).

    Raises
    ------
    ValueError
        When a cluster is out of the part's :data:`SIZE_RANGES`, has the
        shape of a library cluster (:func:`library_twin`) or of another
        test cluster.
    """
    low, high = SIZE_RANGES[part]
    built = []
    for construction in CONSTRUCTIONS[part]:
        xyz = build_construction(construction)
        xyz.setflags(write=False)
        label = construction.label
        if not low <= len(xyz) <= high:
            raise ValueError(
                f"{label} has {len(xyz)} atoms, outside {low}-{high}."
            )
        twin = library_twin(xyz)
        if twin is not None:
            raise ValueError(f"{label} has the shape of {twin}.")
        for other in built:
            if same_shape(xyz, other.xyz):
                raise ValueError(f"{label} repeats {other.label}.")
        built.append(OutCluster(label, construction.family, construction, xyz))
    return tuple(built)


def draw_cases(clusters, rng) -> list[TestCase]:
    """One blind test PDF per cluster; noise on every other of a family.

    The d of a bcc cluster comes from :data:`BCC_METAL_D`, of the others
    from :data:`training.evaluate_stacking.METAL_D`, times a factor
    within ±:data:`~training.evaluate_stacking.D_SPREAD`.
    """
    cases, seen = [], Counter()
    for cluster in clusters:
        table = BCC_METAL_D if cluster.family == "bcc" else METAL_D
        metal = str(rng.choice(sorted(table)))
        d = table[metal] * rng.uniform(1.0 - D_SPREAD, 1.0 + D_SPREAD)
        conditions = {k: float(rng.uniform(*s)) for k, s in RANGES.items()}
        noisy = seen[cluster.family] % 2 == 1
        seen[cluster.family] += 1
        conditions.update(metal=metal, noise=NOISE * noisy, strain=0.0)
        cases.append(
            TestCase(
                shape=cluster,
                d=float(d),
                conditions=conditions,
                axis=(0.0, 0.0, 1.0),
                seed=int(rng.integers(2**32)),
            )
        )
    return cases


def part_cases(part: str, seed: int, quick: bool = False) -> list[TestCase]:
    """The test PDFs of a part (those of :data:`QUICK` with ``quick``).

    The conditions are drawn for every cluster of the part, so that a
    quick run gives its PDFs the same conditions as the full run.
    """
    rng = np.random.default_rng([seed, PARTS.index(part)])
    cases = draw_cases(part_clusters(part), rng)
    if quick:
        cases = [cases[i] for i in QUICK[part]]
    return cases


def solve_available() -> bool:
    """Whether ``diffpy.deepstruc.solve`` can be imported."""
    return importlib.util.find_spec("diffpy.deepstruc.solve") is not None


def solver():
    """``solve_structure``, imported when first needed."""
    from diffpy.deepstruc.solve import solve_structure

    return solve_structure


def top_candidate(method: str, gr, header: dict, setup: Setup, part: str):
    """The best candidate of a method for a PDF.

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.
    gr : tuple of numpy.ndarray or str
        The PDF, ``(r, G)`` or a file.
    header : dict
        What a file header would give (``qmax``, ``qmin``, ``element``);
        empty for a file, which has its own.
    setup : Setup
        Model, settings and libraries.
    part : str
        ``"small"``, ``"large"`` or ``"experimental"``: which libraries
        and ``max_atoms`` apply.
    """
    library = setup.libraries[part][method]
    if method == "mine":
        return mine_library(
            gr,
            library=library,
            progress=False,
            strain=bool(setup.strain),
            **header,
        )[0]
    options = {
        "model": setup.model,
        "seed": setup.seed,
        "strain": bool(setup.strain),
        **header,
    }
    if library is not None:
        options["library"] = library
    if method == "propose":
        return propose_structures(gr, n_samples=setup.n_samples, **options)[0]
    if method == "solve":
        options["strain"] = setup.strain
        return solver()(gr, max_atoms=MAX_ATOMS[part], **options)[0]
    raise ValueError(f"Unknown method {method!r}; choose from {METHODS}.")


@lru_cache(maxsize=1)
def _cubic_rotations() -> np.ndarray:
    """The 24 proper rotations of the cube, identity first."""
    rotations = []
    for order in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            matrix = np.zeros((3, 3))
            matrix[range(3), order] = signs
            if np.linalg.det(matrix) > 0:
                rotations.append(matrix)
    return np.array(rotations)


def aligned_mae(xyz: np.ndarray, truth: np.ndarray) -> float:
    """MAE (Å) of a cluster against the truth after alignment.

    :func:`diffpy.deepstruc.matching.matched_errors` finds the best match
    only near the starting orientation, so it starts from whichever of
    the 24 cube rotations of the centred cluster lies closest to the
    truth (least mean distance of each atom to the nearest true one).

    Parameters
    ----------
    xyz, truth : numpy.ndarray
        ``(n_atoms, 3)`` coordinates (Å) with the same number of atoms.

    Returns
    -------
    float
        The mean Euclidean distance per atom.
    """
    xyz = np.asarray(xyz, float) - np.mean(xyz, 0)
    truth = np.asarray(truth, float) - np.mean(truth, 0)
    starts = np.einsum("ij,rkj->rik", xyz, _cubic_rotations())
    return nearest_start_mae(starts, truth)


def evaluate_case(case: TestCase, setup: Setup, part: str, names) -> dict:
    """Run the methods ``names`` on one test PDF; compare with the truth.

    Returns
    -------
    dict
        The truth (``label``, ``family``, ``n_atoms``, ``d``, the
        conditions, :func:`training.evaluate.truth_rw`) and under
        ``methods`` each method's top
        candidate (``n_atoms``, ``rw``, ``source``, ``label``, ``type``,
        ``seconds``, ``delta_rw``), its scores (``count``, ``shape``)
        and, when the count is right, ``mae`` (Å).
    """
    gr = case.pdf()
    qmax = case.conditions["qmax"]
    pdf = load_pdf(gr, qmax=qmax, qmin=QMIN)
    params = instrument_parameters(pdf, asdict(DebyeParameters()))
    inside = (pdf.r >= FIT_RANGE[0]) & (pdf.r <= FIT_RANGE[1])
    truth = case.structure()
    cluster = case.shape
    row = {
        "label": cluster.label,
        "family": cluster.family,
        "n_atoms": cluster.n_atoms,
        "d": case.d,
        **case.conditions,
        **truth_rw(
            truth, pdf.r[inside], pdf.g[inside], params, bool(setup.strain)
        ),
        "methods": {},
    }
    header = {"qmax": qmax, "qmin": QMIN, "element": ELEMENT}
    for name in names:
        start = time.perf_counter()
        best = top_candidate(name, gr, header, setup, part)
        seconds = time.perf_counter() - start
        count = best.n_atoms == row["n_atoms"]
        answer = {
            "n_atoms": best.n_atoms,
            "rw": float(best.rw),
            "source": best.source,
            "label": best.label,
            "type": best.type,
            "seconds": seconds,
            "delta_rw": delta_rw(name, float(best.rw), row),
            "count": count,
            "shape": count and same_shape(best.xyz, truth),
        }
        if count:
            answer["mae"] = aligned_mae(best.xyz, truth)
        row["methods"][name] = answer
    return row


def summarise(rows, method) -> dict:
    """Scores of one method over test PDFs (rows of :func:`evaluate_case`).

    ``count``, ``shape`` and ``delta_rw_ok`` (ΔRw <=
    :data:`DELTA_RW_OK`) are fractions of all ``n`` PDFs, ``delta_rw``
    the median and mean over all of them; ``mae`` (mean and std, Å) is
    over the ``n_mae`` count-matched PDFs; ``seconds`` the mean and
    ``median_seconds`` the median time per PDF.
    """
    answers = [row["methods"][method] for row in rows]
    delta = [a["delta_rw"] for a in answers]
    mae = [a["mae"] for a in answers if "mae" in a]
    seconds = [a["seconds"] for a in answers]
    return {
        "n": len(rows),
        "count": float(np.mean([a["count"] for a in answers])),
        "shape": float(np.mean([a["shape"] for a in answers])),
        "delta_rw_ok": float(np.mean(np.array(delta) <= DELTA_RW_OK)),
        "delta_rw": {
            "median": float(np.median(delta)),
            "mean": float(np.mean(delta)),
        },
        "mae": _stats(mae),
        "n_mae": len(mae),
        "seconds": float(np.mean(seconds)),
        "median_seconds": float(np.median(seconds)),
    }


def part_report(rows, names) -> dict:
    """Scores per method, overall and per family, and winning sources.

    ``solved`` is the fraction of the method's top candidates with
    ``source == "solved"``.
    """
    families = [
        f for f in CLUSTER_TYPES if any(r["family"] == f for r in rows)
    ]
    methods = {}
    for name in names:
        sources = Counter(r["methods"][name]["source"] for r in rows)
        methods[name] = {
            "overall": summarise(rows, name),
            "per_family": {
                f: summarise([r for r in rows if r["family"] == f], name)
                for f in families
            },
            "sources": dict(sources),
            "solved": sources["solved"] / len(rows),
        }
    return {
        "n_pdfs": len(rows),
        "n_noisy": sum(r["noise"] > 0 for r in rows),
        "n_per_family": {
            f: sum(r["family"] == f for r in rows) for f in families
        },
        "methods": methods,
    }


def _combined(name: str, libraries) -> Library:
    """One library of several, later twins (same pair key) left out."""
    entries, seen = [], set()
    for library in libraries:
        for entry in library:
            key = _pair_key(entry)
            if key not in seen:
                seen.add(key)
                entries.append(entry)
    return Library(name, tuple(entries))


def geometry_libraries(metadata) -> tuple[Library, Library]:
    """The training shapes of a geometry-split model, alone and with large.

    Parameters
    ----------
    metadata : dict
        The model's metadata; its ``split`` must be ``"geometry"``, with
        ``train`` indexing :func:`diffpy.deepstruc.clusters.enumerate_library`.

    Returns
    -------
    small : Library
        The MMNP shapes of the training split.
    large : Library
        Those and the ``"large"`` clusters that repeat no held-out MMNP
        shape.
    """
    split = metadata["split"]
    if split["mode"] != "geometry":
        raise ValueError(
            f"The model {metadata['name']!r} was trained on the "
            f"{split['mode']!r} split; --geometry-model needs the model of "
            "the geometry split."
        )
    records = enumerate_library()
    train = sorted({records[i].shape_id for i in split["train"]})
    mmnp = load_library("mmnp")
    small = Library(
        "mmnp geometry-split training shapes",
        tuple(mmnp[i] for i in train),
    )
    held_out = {_pair_key(mmnp[i]) for i in set(range(len(mmnp))) - set(train)}
    large = _combined(
        "mmnp geometry-split training shapes + large",
        [
            small,
            [e for e in load_library("large") if _pair_key(e) not in held_out],
        ],
    )
    return small, large


def make_setup(
    model_dir, *, n_samples=1000, seed=0, library=None, geometry_model=None
) -> Setup:
    """The :class:`Setup` of a run (see :func:`evaluate`)."""
    if library is not None and geometry_model is not None:
        raise ValueError(
            "Please give --library or --geometry-model, not both."
        )
    model = Path(geometry_model or model_dir).expanduser()
    if library is not None:
        one = load_library(library)
        per_method = {name: one for name in METHODS}
        libraries = {part: per_method for part in MAX_ATOMS}
    elif geometry_model is not None:
        metadata = json.loads((model / "metadata.json").read_text())
        small, large = geometry_libraries(metadata)
        libraries = {
            part: {"propose": small, "mine": small, "solve": small}
            for part in MAX_ATOMS
        }
        for part in ("large", "experimental"):
            libraries[part]["mine"] = large
    else:
        large = _combined(
            "mmnp + large", [load_library("mmnp"), load_library("large")]
        )
        libraries = {
            "small": {"propose": None, "mine": load_library("mmnp")},
            "large": {"propose": None, "mine": large},
            "experimental": {"propose": None, "mine": large},
        }
        for methods in libraries.values():
            methods["solve"] = None
    return Setup(model, n_samples, seed, libraries)


def _describe_libraries(setup: Setup) -> dict:
    return {
        part: {
            name: (
                None
                if library is None
                else {"name": library.name, "size": len(library)}
            )
            for name, library in methods.items()
        }
        for part, methods in setup.libraries.items()
    }


def readme_sizes(directory) -> dict:
    """Particle sizes (nm) that a data folder's README gives per file.

    Phrases like ``1.8 nm (JQ_S1)`` in ``README.md``; empty without one.
    """
    readme = Path(directory) / "README.md"
    if not readme.is_file():
        return {}
    text = " ".join(readme.read_text(encoding="utf-8").split())
    pattern = r"(\d+(?:\.\d+)?)\s*nm\s*\(([\w.-]+)\)"
    return {name: float(size) for size, name in re.findall(pattern, text)}


def diameter_nm(xyz: np.ndarray) -> float:
    """Largest pair distance plus the first-shell distance, in nm."""
    return (float(pdist(xyz).max()) + nn_distance(xyz)) / 10.0


def gyration_radii(xyz: np.ndarray) -> list[float]:
    """Principal radii of gyration (Å), smallest first: the shape.

    Equal for a compact particle; one small for a plate, one large for a
    rod.
    """
    xyz = np.asarray(xyz, float) - np.mean(xyz, axis=0)
    moments = np.linalg.eigvalsh(xyz.T @ xyz / len(xyz))
    return [float(np.sqrt(max(m, 0.0))) for m in moments]


def plot_measured(path, name, tops, out) -> Path:
    """A figure of one measured PDF: each method's fit, one panel each."""
    from matplotlib.figure import Figure

    from diffpy.deepstruc.plotting import plot_fit

    fig = Figure(
        figsize=(PLOT_SIZE[0], PLOT_SIZE[1] * len(tops)), layout="constrained"
    )
    axes = np.atleast_1d(fig.subplots(len(tops), 1, sharex=True))
    for ax, (method, best) in zip(axes, tops.items()):
        plot_fit(best, ax)
        ax.set_title(
            f"{name}, {method}: {best.n_atoms} atoms, "
            f"{best.type or best.nearest_reference.type}, Rw = {best.rw:.3f}",
            fontsize=9,
        )
        ax.legend(loc="upper right", frameon=False, fontsize=7)
        if ax is not axes[-1]:
            ax.set_xlabel("")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{Path(path).stem}_fits.png"
    fig.savefig(target, dpi=PLOT_DPI)
    return target


def evaluate_measured(directory, setup, names, *, quick=False, plots=None):
    """Run the methods on the measured PDFs (``*.gr``) of a folder.

    Returns
    -------
    list of dict
        Per file: ``file``, ``readme_size_nm`` and under ``methods`` each
        method's top candidate (``rw``, ``n_atoms``, ``diameter_nm``,
        ``radii`` (:func:`gyration_radii`), ``qdamp`` of its fit,
        ``type``, ``source``, ``label``, ``seconds``); ``plot`` names the
        figure when ``plots`` is given.
    """
    directory = Path(directory)
    sizes = readme_sizes(directory)
    files = sorted(directory.glob("*.gr"))[: 1 if quick else None]
    rows = []
    for path in tqdm(files, desc="experimental"):
        row = {
            "file": path.name,
            "readme_size_nm": sizes.get(path.stem),
            "methods": {},
        }
        tops = {}
        for name in names:
            start = time.perf_counter()
            best = top_candidate(name, str(path), {}, setup, "experimental")
            tops[name] = best
            row["methods"][name] = {
                "rw": float(best.rw),
                "n_atoms": best.n_atoms,
                "diameter_nm": diameter_nm(best.xyz),
                "radii": gyration_radii(best.xyz),
                "qdamp": float(best.params.qdamp),
                "type": best.type or best.nearest_reference.type,
                "source": best.source,
                "label": best.label,
                "seconds": time.perf_counter() - start,
            }
        if plots:
            row["plot"] = str(plot_measured(path, path.stem, tops, plots))
        rows.append(row)
    return rows


def evaluate(
    model_dir,
    *,
    parts=PARTS,
    methods=METHODS,
    n_samples=1000,
    seed=0,
    quick=False,
    experimental=None,
    plots=None,
    library=None,
    geometry_model=None,
    strain=False,
    out=None,
    metadata_path=None,
) -> dict:
    """Evaluate ``solve`` and the other methods on new clusters.

    Parameters
    ----------
    model_dir : str or pathlib.Path
        Model folder of ``propose`` and ``solve`` (and whose metadata
        ``--write-metadata`` updates).
    parts : sequence of str
        Parts of :data:`PARTS` to run.
    methods : sequence of str
        Methods of :data:`METHODS` to run.
    n_samples, seed : int
        Prior samples of ``propose``; seed of the test PDFs and of the
        methods.
    quick : bool
        Only the PDFs of :data:`QUICK` and the first measured PDF.
    experimental : str or pathlib.Path, optional
        Folder of measured PDFs; skipped with a message when missing.
    plots : str or pathlib.Path, optional
        Folder of the measured PDFs' fit figures.
    library : str, os.PathLike or Library, optional
        One library for every method and part instead of the defaults.
    geometry_model : str or pathlib.Path, optional
        Model folder of the geometry split (see the module description).
    strain : bool or "auto"
        As for :func:`training.evaluate.evaluate`.
    out : str or pathlib.Path, optional
        Report folder (default: the folder of the model run).
    metadata_path : str or pathlib.Path, optional
        A metadata file whose ``metrics["solve"]`` (``"solve_geometry"``
        with ``geometry_model``) receives the summary.

    Returns
    -------
    dict
        The summary (the report without the per-PDF ``cases``).
    """
    start = time.perf_counter()
    unknown = set(parts) - set(PARTS) | set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"Unknown parts or methods: {sorted(unknown)}.")
    if "solve" in methods and not solve_available():
        raise ValueError(
            "diffpy.deepstruc.solve is not importable; run without the "
            "solve method (--methods propose,mine) until it exists."
        )
    setup = make_setup(
        model_dir,
        n_samples=n_samples,
        seed=seed,
        library=library,
        geometry_model=geometry_model,
    )
    setup = replace(setup, strain=strain)
    metadata = json.loads((setup.model / "metadata.json").read_text())
    report = {
        "model": _model_info(metadata),
        "evaluated_commit": _commit(),
        "protocol": {
            "metal_d": METAL_D,
            "bcc_metal_d": BCC_METAL_D,
            "d_spread": D_SPREAD,
            "qmin": QMIN,
            "ranges": RANGES,
            "noise": NOISE,
            "noisy": "every other PDF of a family",
            "given_to_methods": ["G(r)", "qmax", "qmin"],
            "solve_strain": strain,
            "shape_tolerance": SHAPE_TOLERANCE,
            "delta_rw_ok": DELTA_RW_OK,
            "size_ranges": SIZE_RANGES,
            "clusters": {
                part: [c.label for c in part_clusters(part)] for part in parts
            },
        },
        "settings": {
            "n_samples": n_samples,
            "seed": seed,
            "parts": list(parts),
            "methods": list(methods),
            "quick": quick,
            "max_atoms": MAX_ATOMS,
            "libraries": _describe_libraries(setup),
            "geometry_model": str(geometry_model) if geometry_model else None,
        },
    }
    cases = []
    for part in parts:
        rows = [
            evaluate_case(case, setup, part, methods)
            for case in tqdm(part_cases(part, seed, quick), desc=part)
        ]
        report[part] = part_report(rows, methods)
        cases += [{"part": part, **row} for row in rows]
    if experimental is not None:
        if Path(experimental).is_dir():
            report["experimental"] = evaluate_measured(
                experimental, setup, methods, quick=quick, plots=plots
            )
        else:
            report["experimental_note"] = (
                f"Skipped the measured PDFs: {experimental} is not a folder."
            )
            print(report["experimental_note"])
    report["seconds"] = time.perf_counter() - start
    out = Path(out or setup.model)
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT_NAME).write_text(
        json.dumps({**report, "cases": cases}, indent=1)
    )
    if metadata_path:
        key = "solve_geometry" if geometry_model else "solve"
        store_metrics(metadata_path, key, report)
    return report


def _pct(value: float) -> str:
    return f"{100 * value:.0f}"


def _mae(s: dict) -> str:
    if s["mae"] is None:
        return f"- ({s['n_mae']})"
    return f"{s['mae']['mean']:.2f} ({s['n_mae']})"


def _score_cells(s: dict) -> list[str]:
    return [
        str(s["n"]),
        _pct(s["count"]),
        _pct(s["shape"]),
        _pct(s["delta_rw_ok"]),
        f"{s['delta_rw']['median']:+.3f}",
        _mae(s),
        f"{s['seconds']:.1f}",
    ]


def _table(header, rows) -> list[str]:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


_SCORES = [
    "n",
    "exact count %",
    "exact shape %",
    f"ΔRw ≤ {DELTA_RW_OK} %",
    "median ΔRw",
    "MAE Å (n)",
    "s/PDF",
]


def markdown(report: dict) -> str:
    """Markdown tables of a report (:func:`evaluate`)."""
    lines = []
    for part in PARTS:
        if part not in report:
            continue
        scores = report[part]["methods"]
        lines += [
            f"### {part}: {report[part]['n_pdfs']} PDFs "
            f"({report[part]['n_noisy']} noisy)",
            "",
        ]
        lines += _table(
            ["method", *_SCORES, "winners"],
            [
                [
                    name,
                    *_score_cells(m["overall"]),
                    ", ".join(f"{k} {v}" for k, v in m["sources"].items()),
                ]
                for name, m in scores.items()
            ],
        )
        lines += ["", f"#### {part} per family", ""]
        families = report[part]["n_per_family"]
        lines += _table(
            ["family", "method", *_SCORES],
            [
                [family, name, *_score_cells(m["per_family"][family])]
                for family in families
                for name, m in scores.items()
            ],
        )
        lines.append("")
    if "experimental" in report:
        lines += ["### measured Pt PDFs", ""]
        lines += _table(
            [
                "file",
                "README size nm",
                "method",
                "Rw",
                "atoms",
                "diameter nm",
                "radii Å",
                "qdamp",
                "type",
                "source",
                "s",
            ],
            [
                [
                    row["file"],
                    f"{row['readme_size_nm'] or '-'}",
                    name,
                    f"{m['rw']:.3f}",
                    str(m["n_atoms"]),
                    f"{m['diameter_nm']:.2f}",
                    "/".join(f"{x:.1f}" for x in m["radii"]),
                    f"{m['qdamp']:.3f}",
                    m["type"],
                    m["source"],
                    f"{m['seconds']:.1f}",
                ]
                for row in report["experimental"]
                for name, m in row["methods"].items()
            ],
        )
        lines.append("")
    if "experimental_note" in report:
        lines += [report["experimental_note"], ""]
    lines.append(f"{report['seconds']:.0f} s in all")
    return "\n".join(lines)


def _choices(text: str, allowed) -> list[str]:
    """A comma-separated list, checked against ``allowed``."""
    values = [v.strip() for v in text.split(",") if v.strip()]
    wrong = [v for v in values if v not in allowed]
    if wrong or not values:
        raise argparse.ArgumentTypeError(
            f"choose from {', '.join(allowed)} (comma-separated), not "
            f"{text!r}"
        )
    return values


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="onnx_models/mmnp")
    parser.add_argument(
        "--parts",
        type=lambda text: _choices(text, PARTS),
        default=list(PARTS),
        help="comma-separated parts (default: small,large)",
    )
    parser.add_argument(
        "--methods",
        type=lambda text: _choices(text, METHODS),
        default=list(METHODS),
        help="comma-separated methods (default: propose,mine,solve)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few PDFs only (tests)"
    )
    parser.add_argument(
        "--experimental", help="folder of measured PDFs (*.gr, README.md)"
    )
    parser.add_argument("--plots", help="folder of the measured PDFs' fits")
    parser.add_argument(
        "--library", help="one library for every method instead of theirs"
    )
    parser.add_argument(
        "--geometry-model",
        help="model folder of the geometry split (see the description)",
    )
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    add_strain_option(parser)
    parser.add_argument("--out", help="report folder (default: model)")
    add_metadata_option(parser)
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        # poor fits are expected on noisy, blind data; they are scored
        warnings.simplefilter("ignore", FitQualityWarning)
        report = evaluate(
            args.model,
            parts=args.parts,
            methods=args.methods,
            n_samples=args.samples,
            seed=args.seed,
            quick=args.quick,
            experimental=args.experimental,
            plots=args.plots,
            library=args.library,
            geometry_model=args.geometry_model,
            strain=SOLVE_STRAIN[args.strain],
            out=args.out,
            metadata_path=metadata_target(args),
        )
    print(markdown(report))


if __name__ == "__main__":
    main()
