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

:func:`rank_candidates` ranks fitted candidates (:func:`ranking_order`)
and applies the last two.
"""

import warnings

import numpy as np
from scipy.spatial.distance import pdist, squareform

from diffpy.deepstruc.confidence import white_noise
from diffpy.deepstruc.fitting import EQUAL_RW, STRAIN_PARAMETERS, bic_weights
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
#: The sources of decoded candidates.  Each was picked among the decodes
#: of many latent points for its fit to the data, so the ranking charges
#: it its latent coordinates as fitted parameters (`fitted_parameters`).
DECODED_SOURCES = ("prior", "search", "refined")
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


def _neighbours(xyz: np.ndarray) -> np.ndarray:
    """``(n, n)`` booleans: which atoms are within
    :data:`NEIGHBOUR_CUTOFF` first-shell distances of each other."""
    distances = squareform(pdist(xyz))
    np.fill_diagonal(distances, np.inf)
    return distances < NEIGHBOUR_CUTOFF * nn_distance(xyz)


def mean_coordination(xyz: np.ndarray) -> float:
    """Mean number of neighbours of the atoms of a cluster.

    Parameters
    ----------
    xyz : numpy.ndarray
        ``(n_atoms, 3)`` coordinates.

    Returns
    -------
    float
        Neighbours within :data:`NEIGHBOUR_CUTOFF` first-shell distances,
        averaged over the atoms (0 for fewer than two atoms).
    """
    if len(xyz) < 2:
        return 0.0
    return float(_neighbours(xyz).sum(1).mean())


def geometry_flags(xyz: np.ndarray) -> list[str]:
    """The geometry flags of one cluster (see :data:`FLAGS`)."""
    if len(xyz) < 2:
        return ["isolated_atoms"]
    neighbours = _neighbours(xyz)
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
        Candidates of one PDF.
    stacklevel : int
        Passed to ``warnings.warn``; the default points at the caller
        of the function that calls this one.
    """
    best = min((c.rw for c in candidates), default=0.0)
    if best > POOR_RW:
        warnings.warn(
            f"The best candidate fits poorly (Rw = {best:.3f} > "
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


def fitted_parameters(candidate) -> int:
    """Parameters fitted to the data beyond scale, zoom and Uiso.

    Parameters
    ----------
    candidate : Candidate

    Returns
    -------
    int
        The latent coordinates of a decode (``source`` in
        :data:`DECODED_SOURCES`: its latent point was chosen to fit the
        data), plus :data:`~diffpy.deepstruc.fitting.STRAIN_PARAMETERS`
        for a strained candidate.  Library shapes, re-stackings and
        solved structures were chosen from discrete sets (the site search
        charges each change it makes as it goes) and count 0.
    """
    k = len(candidate.latent) if candidate.source in DECODED_SOURCES else 0
    if candidate.strain is not None:
        k += STRAIN_PARAMETERS
    return k


def ranking_order(candidates, noise: float | None = None) -> list[int]:
    """Indices of the candidates of one PDF, best first.

    Candidates are ranked by the Bayesian information criterion of their
    fit, ``weight Rw^2 + penalty k``
    (:func:`~diffpy.deepstruc.fitting.bic_weights`, ``k`` from
    :func:`fitted_parameters`): a decode or a strained candidate ranks
    above a library shape only when it fits better by more than what its
    extra parameters buy.  For data without noise this is the order of
    Rw.  Candidates with the same parameters whose Rw agree within
    :data:`~diffpy.deepstruc.fitting.EQUAL_RW` fit the data equally (a
    6-atom octahedron and a 5-atom square pyramid have the same G(r) up
    to scale): of these the one with the most neighbours per atom
    (:func:`mean_coordination`), the more compact particle, ranks first.

    Parameters
    ----------
    candidates : list of Candidate
        Fitted candidates of one PDF (they share ``r`` and ``gobs``).
    noise : float, optional
        Standard deviation of the noise of G; by default the white noise
        of the data (:func:`diffpy.deepstruc.confidence.white_noise`).

    Returns
    -------
    list of int
        A permutation of ``range(len(candidates))``.
    """
    if not candidates:
        return []
    first = candidates[0]
    r, g, qmax = first.r, first.gobs, first.params.qmax
    if noise is None:
        noise = white_noise(r, g, qmax)
    weight, penalty = bic_weights(r, g, qmax, noise)
    k = [fitted_parameters(c) for c in candidates]
    bic = [weight * c.rw**2 + penalty * n for c, n in zip(candidates, k)]
    order = sorted(range(len(candidates)), key=lambda i: (bic[i], k[i]))
    # runs of equal fits, each led by its best: the most compact first
    runs: list[list[int]] = []
    for i in order:
        head = runs[-1][0] if runs else None
        if (
            head is not None
            and k[i] == k[head]
            and (abs(candidates[i].rw - candidates[head].rw) <= EQUAL_RW)
        ):
            runs[-1].append(i)
        else:
            runs.append([i])
    for run in runs:
        if len(run) > 1:
            run.sort(key=lambda i: -mean_coordination(candidates[i].xyz))
    return [i for run in runs for i in run]


def rank_candidates(
    candidates: list, top: int, noise: float | None = None
) -> list:
    """Rank candidates (:func:`ranking_order`), keep ``top``, flag them.

    Parameters
    ----------
    candidates : list of Candidate
        Fitted candidates of one PDF, in any order.
    top : int
        Number kept.
    noise : float, optional
        Standard deviation of the noise of G, as for
        :func:`ranking_order`.

    Returns
    -------
    list of Candidate
        The ``top`` best, with ``rank`` (1 = best) and ``flags``
        (:func:`plausibility_flags`) set.  A :class:`FitQualityWarning`
        is issued when even the least Rw is poor
        (:func:`warn_if_poor_fit`).
    """
    order = ranking_order(candidates, noise)
    ranked = [candidates[i] for i in order[:top]]
    flags = plausibility_flags(ranked)
    for rank, candidate in enumerate(ranked, start=1):
        candidate.rank = rank
        candidate.flags = flags[rank - 1]
    warn_if_poor_fit(ranked, stacklevel=4)
    return ranked
