"""Checks that make a list of candidates trustworthy.

Three checks run on every proposal:

* **near-duplicates** (:func:`distinct_geometries`): two structures with
  the same atom count whose atoms lie within :data:`DUPLICATE_RMSD`
  first-shell distances of each other (RMSD after optimal assignment
  and alignment, :func:`diffpy.deepstruc.matching.matched_errors`) are
  one candidate; only the better one is fitted and listed;
* **flags** (:func:`plausibility_flags`): reasons to doubt a candidate
  that its Rw does not show, listed in :data:`FLAGS`;
* **fit quality** (:func:`warn_if_poor_fit`): a
  :class:`FitQualityWarning` when even the best candidate fits poorly.

:func:`rank_candidates` ranks fitted candidates and applies the last two.
"""

import warnings

import numpy as np
from scipy.spatial.distance import pdist, squareform

from diffpy.deepstruc.matching import matched_errors, nn_distance

#: Structures with the same atom count closer than this RMSD (units of
#: the first-shell distance d) are near-duplicates.
DUPLICATE_RMSD = 0.1
#: Atoms closer than this many d are neighbours.
NEIGHBOUR_CUTOFF = 1.3
#: Mean number of neighbours below which a cluster is a chain or a ring.
MIN_COORDINATION = 3.0
#: A scale farther than this factor from the median scale is an outlier.
SCALE_FACTOR = 2.0
#: RMSD (units of d) to the nearest library geometry of the same atom
#: count above which a candidate is unlike it.
REFERENCE_RMSD = 0.3
#: Best Rw above which the proposal gets a :class:`FitQualityWarning`.
POOR_RW = 0.3
#: The flags and what each means.
FLAGS = {
    "isolated_atoms": "an atom has no neighbour within "
    f"{NEIGHBOUR_CUTOFF} first-shell distances",
    "low_coordination": f"fewer than {MIN_COORDINATION:g} neighbours per "
    "atom on average: a chain, ring or single row, rare as a particle",
    "scale_outlier": f"scale more than {SCALE_FACTOR:g} times off the "
    "median scale of the candidates",
    "unlike_reference": "more than "
    f"{REFERENCE_RMSD} first-shell distances RMSD from the nearest "
    "library geometry of the same size",
}


class FitQualityWarning(UserWarning):
    """Even the best candidate fits the data poorly."""


def distinct_geometries(shapes: list[np.ndarray]) -> list[int]:
    """Indices of the structures that are no near-duplicate of an earlier one.

    Parameters
    ----------
    shapes : list of numpy.ndarray
        ``(n_atoms, 3)`` coordinates in one length unit, best first.

    Returns
    -------
    list of int
        Increasing indices: each structure is kept unless an earlier kept
        one has the same atom count and an RMSD below
        :data:`DUPLICATE_RMSD` first-shell distances to it.
    """
    keep: list[int] = []
    for i, xyz in enumerate(shapes):
        tolerance = DUPLICATE_RMSD * nn_distance(xyz)
        if not any(
            len(shapes[k]) == len(xyz)
            and matched_errors(shapes[k], xyz)[1] < tolerance
            for k in keep
        ):
            keep.append(i)
    return keep


def geometry_flags(xyz: np.ndarray) -> list[str]:
    """The geometry flags of one cluster (see :data:`FLAGS`)."""
    if len(xyz) < 2:
        return ["isolated_atoms"]
    distances = squareform(pdist(xyz))
    np.fill_diagonal(distances, np.inf)
    neighbours = distances < NEIGHBOUR_CUTOFF * nn_distance(xyz)
    flags = []
    if not neighbours.any(1).all():
        flags.append("isolated_atoms")
    if neighbours.sum(1).mean() < MIN_COORDINATION:
        flags.append("low_coordination")
    return flags


def plausibility_flags(candidates) -> list[tuple[str, ...]]:
    """Reasons to doubt each of a list of candidates.

    Parameters
    ----------
    candidates : list of Candidate
        Candidates of one PDF (the scale check compares them).

    Returns
    -------
    list of tuple of str
        For each candidate the names of its flags (keys of :data:`FLAGS`),
        empty for a plausible candidate.
    """
    median = np.median([c.scale for c in candidates]) if candidates else 0
    result = []
    for candidate in candidates:
        flags = geometry_flags(candidate.xyz)
        ratio = candidate.scale / median if median > 0 else 1.0
        if len(candidates) > 2 and not (
            1 / SCALE_FACTOR <= ratio <= SCALE_FACTOR
        ):
            flags.append("scale_outlier")
        if candidate.nearest_reference.rmsd > REFERENCE_RMSD * nn_distance(
            candidate.xyz
        ):
            flags.append("unlike_reference")
        result.append(tuple(flags))
    return result


def warn_if_poor_fit(candidates, stacklevel: int = 3) -> None:
    """Warn with :class:`FitQualityWarning` when the best Rw is poor.

    Parameters
    ----------
    candidates : list of Candidate
        Candidates ranked by Rw.
    stacklevel : int
        Passed to ``warnings.warn``; the default points at the caller
        of the function that calls this one.
    """
    if candidates and candidates[0].rw > POOR_RW:
        warnings.warn(
            f"The best candidate fits poorly (Rw = {candidates[0].rw:.3f} > "
            f"{POOR_RW}). The particle may be larger than the model's "
            "200 atoms (build larger ones with the site search: deepstruc "
            "solve --max-atoms 2000; or mine the 'large' library of "
            "clusters up to 2500 atoms: deepstruc mine --library large) "
            "or of a structure "
            "type it does not know, or the Q parameters may be wrong "
            "(check qmax, qmin and qdamp against the data reduction). "
            "Treat the candidates as rough models.",
            FitQualityWarning,
            stacklevel=stacklevel,
        )


def rank_candidates(candidates: list, top: int) -> list:
    """Rank candidates by Rw, keep ``top``, flag them, warn on a poor fit.

    Parameters
    ----------
    candidates : list of Candidate
        Fitted candidates of one PDF, in any order.
    top : int
        Number kept.

    Returns
    -------
    list of Candidate
        The ``top`` best by Rw, with ``rank`` (1 = best) and ``flags``
        (:func:`plausibility_flags`) set.  A :class:`FitQualityWarning`
        is issued when the best fits poorly (:func:`warn_if_poor_fit`).
    """
    ranked = sorted(candidates, key=lambda c: c.rw)[:top]
    flags = plausibility_flags(ranked)
    for rank, candidate in enumerate(ranked, start=1):
        candidate.rank = rank
        candidate.flags = flags[rank - 1]
    warn_if_poor_fit(ranked, stacklevel=4)
    return ranked
