"""Layer moves: re-stack close-packed candidates with every sequence.

A close-packed candidate keeps its layers (their atoms and in-plane
shapes) when each layer is moved on to another registry: layer k is
translated in its plane by ``(t_k - s_k) mod 3`` registry steps, where
``s`` is its registry and ``t`` the new one
(:func:`diffpy.deepstruc.stacking.stacking_layers`).  With the first
layer fixed, every sequence of n layers without two equal neighbours is
reached, 2^(n-1) of them (512 for 10 layers): the whole space of
stackings of that particle.  :func:`restack` computes the PDF of each
with the scale fitted, and fits the best ones fully with scale, zoom and
Uiso (:func:`diffpy.deepstruc.fitting.fit_cluster`).

This turns a candidate whose layers are right and whose stacking is
wrong into the stacking the data support, including sequences no
library or training set holds.  The moves are exact for the layers the
candidate has; they are approximate for a particle whose layers differ
in shape from the candidate's, as in the generated library, where each
layer is cut from one outline at its own registry, and because a layer
can reach the next registry by three translations 120° apart, of which
the analysed frame fixes one.  Then the true sequence is usually among
the best few re-stackings but need not be the best.
"""

import dataclasses
import math

import numpy as np

from diffpy.deepstruc.fitting import batch_rw, fit_cluster
from diffpy.deepstruc.stacking import registry_sequences, stacking_layers

#: Best candidates of a ranking that are re-stacked.
RESTACK_STARTS = 2
#: Best re-stackings of each start that get the full fit.
RESTACK_FITS = 3


def restackings(xyz: np.ndarray) -> list[np.ndarray]:
    """Every re-stacking of a close-packed cluster.

    Parameters
    ----------
    xyz : numpy.ndarray
        ``(n_atoms, 3)`` coordinates.

    Returns
    -------
    list of numpy.ndarray
        The cluster with its layers moved on to every sequence of
        registries that keeps the first layer and has no two equal
        neighbours, in the same atom order and units; the unchanged
        cluster among them.  Empty when the cluster is not close-packed.
    """
    layers = stacking_layers(xyz)
    if layers is None:
        return []
    n_layers = len(layers.registry)
    clusters = []
    for target in registry_sequences(n_layers):
        shift = (target - layers.registry) % 3
        clusters.append(xyz + np.outer(shift[layers.layer], layers.step))
    return clusters


def restack(candidate, r, g, params, n_fits: int = RESTACK_FITS) -> list:
    """The best re-stackings of a candidate, fitted to the data.

    Parameters
    ----------
    candidate : Candidate
        A fitted candidate; nothing is returned unless it is
        close-packed.
    r, g : numpy.ndarray
        The data in the fit range.
    params : DebyeParameters
        Instrument parameters of the fits.
    n_fits : int
        Number of re-stackings, best by the scale-only Rw, that are
        fitted fully: each of another stacking than the candidate's and
        than each other.

    Returns
    -------
    list of Candidate
        Copies of the candidate with the new structure and fit,
        ``source="restacked"``, no latent point, no label; best fit
        first.
    """
    clusters = restackings(candidate.xyz / candidate.zoom)
    if len(clusters) < 2:
        return []
    rw = batch_rw(clusters, r, g, params)
    seen = {candidate.stacking}
    restacked = []
    for k in np.argsort(rw, kind="stable"):
        if len(restacked) == n_fits:
            break
        new = dataclasses.replace(candidate, xyz=clusters[k])
        if new.stacking in seen:
            continue
        seen.add(new.stacking)
        fit = fit_cluster(clusters[k], r, g, params)
        restacked.append(
            dataclasses.replace(
                new,
                xyz=(clusters[k] - clusters[k].mean(0)) * fit.zoom,
                rw=fit.rw,
                scale=fit.scale,
                zoom=fit.zoom,
                uiso=fit.uiso,
                gcalc=fit.gcalc,
                latent=np.full(2, math.nan),
                sigma=math.nan,
                source="restacked",
                label="",
                rank=0,
                flags=(),
            )
        )
    return sorted(restacked, key=lambda c: c.rw)


def restack_best(
    candidates: list, r, g, params, n_starts: int = RESTACK_STARTS
) -> list:
    """Re-stackings (:func:`restack`) of the best close-packed candidates.

    Parameters
    ----------
    candidates : list of Candidate
        Fitted candidates of one PDF, in any order.
    r, g : numpy.ndarray
        The data in the fit range.
    params : DebyeParameters
        Instrument parameters of the fits.
    n_starts : int
        Number of close-packed candidates, best by Rw, re-stacked.

    Returns
    -------
    list of Candidate
        The re-stacked candidates, ``source="restacked"``.
    """
    packed = [c for c in sorted(candidates, key=lambda c: c.rw) if c.stacking]
    return [
        new
        for start in packed[:n_starts]
        for new in restack(start, r, g, params)
    ]
