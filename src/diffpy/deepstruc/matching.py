"""Compare clusters: fingerprints, optimal assignment and alignment.

Two measures are used throughout the package and its evaluation:

* the **fingerprint distance**: each cluster is described, in units of
  its nearest-neighbour distance d (the mean length of its first
  coordination shell, :func:`nn_distance`), by a Gaussian-smeared
  histogram of its pair distances counted per atom (u = 0.5-10, 0.02
  steps, width 0.05); the fingerprint distance is the Euclidean norm of
  the difference.  It ignores orientation and atom order, is close for
  clusters that differ by an atom or two, and names the nearest library
  geometry.
* the **matched error**: for two clusters with the same number of atoms,
  both centred, the atoms are paired by optimal (Hungarian) assignment,
  the first is rotated onto the second (Kabsch), and the two steps are
  repeated until the pairing no longer changes.  The search starts from
  the given orientation, so it finds the best match only for clusters
  within roughly 20 degrees of each other; the decoder's output and the
  library share the orientation of ASE's cluster constructors, which is
  the case the package needs.  For other inputs it is an upper bound.
  The mean Euclidean distance per atom is the MAE, and the root mean
  square is the RMSD.
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: Reduced distances u (units of d) on which fingerprints are given.
FINGERPRINT_U = np.arange(25, 501) / 50.0
#: Width (units of d) of the Gaussian that smears each pair distance.
FINGERPRINT_WIDTH = 0.05
_BIN = 0.01
_EDGES = (0.25, 10.25)


def nn_distance(xyz: np.ndarray) -> float:
    """Mean length of the first coordination shell of a cluster.

    The shell holds the pairs shorter than 1.08 times the median, over
    atoms, of the distance to the closest other atom.  Unlike the shortest
    distance, this length unit is not pulled down by positional noise.
    0 for a single atom.
    """
    from scipy.spatial.distance import pdist, squareform

    xyz = np.asarray(xyz, float)
    if len(xyz) < 2:
        return 0.0
    distances = pdist(xyz)
    square = squareform(distances)
    np.fill_diagonal(square, np.inf)
    closest = np.median(square.min(1))
    return float(distances[distances < 1.08 * closest].mean())


@lru_cache(maxsize=1)
def _smoothing_matrix():
    """Sparse Gaussian smearing from histogram bins to FINGERPRINT_U.

    Weights beyond 6 widths (below 2e-8) are left out.
    """
    from scipy.sparse import csr_matrix

    centres = np.arange(_EDGES[0] + _BIN / 2, _EDGES[1], _BIN)
    reduced = (centres[:, None] - FINGERPRINT_U) / FINGERPRINT_WIDTH
    weights = np.exp(-0.5 * reduced**2)
    weights[np.abs(reduced) > 6] = 0.0
    return csr_matrix(weights)


def fingerprints(clusters, units=None) -> np.ndarray:
    """Smeared per-atom pair-distance histograms of many clusters.

    Parameters
    ----------
    clusters : sequence of numpy.ndarray
        ``(n_atoms, 3)`` coordinates of each cluster.
    units : float or sequence of float, optional
        Length unit of each cluster; by default its :func:`nn_distance`.

    Returns
    -------
    numpy.ndarray
        ``(len(clusters), len(FINGERPRINT_U))``: for each cluster, twice
        the number of pairs per atom at reduced distance u, smeared by a
        Gaussian of width :data:`FINGERPRINT_WIDTH`.
    """
    from scipy.spatial.distance import pdist

    n_bins = int(round((_EDGES[1] - _EDGES[0]) / _BIN))
    if units is None:
        units = [nn_distance(x) for x in clusters]
    units = np.broadcast_to(np.asarray(units, float), (len(clusters),))
    index, weight = [], []
    for row, (xyz, unit) in enumerate(zip(clusters, units)):
        if len(xyz) < 2 or unit <= 0:
            continue
        # split each pair linearly between its two nearest bin centres
        x = (pdist(xyz) / unit - _EDGES[0]) / _BIN - 0.5
        low = np.floor(x)
        upper = x - low
        low = low.astype(np.intp)
        for b, w in ((low, 1.0 - upper), (low + 1, upper)):
            keep = (b >= 0) & (b < n_bins)
            index.append(b[keep] + row * n_bins)
            weight.append(w[keep] * 2.0 / len(xyz))
    counts = np.bincount(
        np.concatenate(index) if index else np.zeros(0, np.intp),
        weights=np.concatenate(weight) if weight else None,
        minlength=len(clusters) * n_bins,
    )
    histograms = counts.reshape(len(clusters), n_bins)
    return np.asarray((_smoothing_matrix().T @ histograms.T).T)


def fingerprint(xyz: np.ndarray, unit: float | None = None) -> np.ndarray:
    """Fingerprint of one cluster (see :func:`fingerprints`)."""
    return fingerprints([np.asarray(xyz, float)], unit)[0]


@dataclass(frozen=True)
class NearestReference:
    """The library geometry closest to a cluster.

    Attributes
    ----------
    type : str
        Structure type of the library geometry.
    size : tuple of int
        Its size parameters (see :mod:`diffpy.deepstruc.clusters`).
    n_atoms : int
        Its number of atoms.
    rmsd : float
        RMSD in Å after assignment and alignment, with the library geometry
        scaled to the cluster's nearest-neighbour distance; NaN when the
        atom counts differ.  An upper bound for a cluster far from the
        library's orientation (see :func:`matched_errors`).
    shape_id : int
        Index into :func:`diffpy.deepstruc.clusters.library_shapes`.
    fingerprint_distance : float
        The fingerprint distance that selected it.
    """

    type: str
    size: tuple
    n_atoms: int
    rmsd: float
    shape_id: int
    fingerprint_distance: float

    def __str__(self) -> str:
        size = "-".join(str(s) for s in self.size)
        return f"{self.type} {size} ({self.n_atoms} atoms)"


@lru_cache(maxsize=1)
def _library_fingerprints():
    from diffpy.deepstruc.clusters import library_shapes

    shapes = library_shapes()
    return shapes, fingerprints([s.xyz for s in shapes])


def nearest_reference(xyz: np.ndarray) -> NearestReference:
    """Find the library geometry nearest to a cluster.

    The nearest geometry has the smallest fingerprint distance (each
    cluster in units of its own nearest-neighbour distance, so size and
    type count, scale does not).

    Parameters
    ----------
    xyz : numpy.ndarray
        ``(n_atoms, 3)`` coordinates in Å.

    Returns
    -------
    NearestReference
    """
    shapes, prints = _library_fingerprints()
    distance = np.linalg.norm(prints - fingerprint(xyz), axis=1)
    best = int(np.argmin(distance))
    shape = shapes[best]
    rmsd = float("nan")
    if shape.n_atoms == len(xyz):
        unit = nn_distance(xyz) / nn_distance(shape.xyz)
        rmsd = matched_errors(xyz, shape.xyz * unit)[1]
    return NearestReference(
        type=shape.type,
        size=tuple(shape.size),
        n_atoms=shape.n_atoms,
        rmsd=rmsd,
        shape_id=shape.shape_id,
        fingerprint_distance=float(distance[best]),
    )


def _kabsch(moving: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation matrix that best maps centred ``moving`` onto ``target``."""
    u, _, vt = np.linalg.svd(moving.T @ target)
    sign = np.sign(np.linalg.det(u @ vt)) or 1.0
    return u @ np.diag([1.0, 1.0, sign]) @ vt


def matched_errors(
    xyz: np.ndarray, reference: np.ndarray, max_iter: int = 10
) -> tuple[float, float, float]:
    """Position errors of a cluster after assignment and alignment.

    Parameters
    ----------
    xyz, reference : numpy.ndarray
        ``(n_atoms, 3)`` coordinates with the same number of atoms.
    max_iter : int
        Most assignment/rotation rounds.

    Returns
    -------
    mae : float
        Mean Euclidean distance per atom.
    rmsd : float
        Root mean square distance per atom.
    mae_component : float
        Mean absolute difference per Cartesian component.

    Raises
    ------
    ValueError
        When the atom counts differ.
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    xyz = np.asarray(xyz, float)
    reference = np.asarray(reference, float)
    if xyz.shape != reference.shape:
        raise ValueError(
            f"Cannot match {len(xyz)} atoms to {len(reference)} atoms."
        )
    moving = xyz - xyz.mean(0)
    target = reference - reference.mean(0)
    order = None
    for _ in range(max_iter):
        _, new_order = linear_sum_assignment(
            cdist(moving, target, "sqeuclidean")
        )
        if order is not None and np.array_equal(order, new_order):
            break
        order = new_order
        moving = moving @ _kabsch(moving, target[order])
    delta = moving - target[order]
    distances = np.linalg.norm(delta, axis=1)
    return (
        float(distances.mean()),
        float(np.sqrt(np.mean(distances**2))),
        float(np.abs(delta).mean()),
    )
