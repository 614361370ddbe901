"""Strained refits: the best candidates fitted with a homogeneous strain.

Real particles, and the test PDFs of the evaluations, are often strained
unevenly: stretched along one direction and squeezed along others.  The
quick fit (:func:`~diffpy.deepstruc.fitting.fit_cluster`) zooms a
cluster isotropically only, so a strained particle fits its own shape
badly, and another shape may fit better.  :func:`refit_strained` refits
the best distinct candidates with a homogeneous traceless strain too,
and keeps the strain where it lowers the Bayesian information criterion
(:func:`~diffpy.deepstruc.fitting.bic_weights`, five more parameters):
on unstrained data the candidates are left as they were.  ``propose``
and ``mine`` do this with ``strain=True``, and ``solve`` starts from
such proposals (:func:`unstrained` undoes a strain, as ``solve`` does to
pick its starts).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from diffpy.deepstruc.candidate import Candidate
from diffpy.deepstruc.confidence import white_noise
from diffpy.deepstruc.fitting import (
    STRAIN_PARAMETERS,
    bic_weights,
    fit_cluster,
    worker_pool,
)
from diffpy.deepstruc.plausibility import distinct_geometries

__all__ = ["STRAIN_REFITS", "refit_strained", "unstrained", "unstrained_xyz"]

#: Best distinct candidates refitted with a strain.
STRAIN_REFITS = 6


def refit_strained(
    candidates: list[Candidate],
    *,
    noise: float | None = None,
    n_refits: int = STRAIN_REFITS,
    rivals: Sequence[Candidate] = (),
) -> list[Candidate]:
    """The candidates, the best refitted with a homogeneous strain too.

    Parameters
    ----------
    candidates : list of Candidate
        Fitted candidates of one PDF, in any order.
    noise : float, optional
        Standard deviation of the noise of G, for the information
        criterion; by default the white noise of the data
        (:func:`diffpy.deepstruc.confidence.white_noise`).
    n_refits : int
        Best distinct candidates (by Rw) that are refitted.
    rivals : sequence of Candidate
        Candidates of the same PDF that were refitted already: they
        take their places among the ``n_refits`` best but are not
        refitted again.

    Returns
    -------
    list of Candidate
        The same candidates in the same order.  Each refitted one whose
        strain lowers the information criterion is replaced by a copy
        with the strain applied to its coordinates
        (:attr:`~diffpy.deepstruc.candidate.Candidate.strain`) and the
        new fit.
    """
    if not candidates:
        return []
    every = list(candidates) + list(rivals)
    order = sorted(range(len(every)), key=lambda i: every[i].rw)
    pool = order[: 3 * n_refits]
    keep = distinct_geometries([every[i].xyz for i in pool])
    chosen = [pool[k] for k in keep[:n_refits] if pool[k] < len(candidates)]
    best = every[order[0]]
    if noise is None:
        noise = white_noise(best.r, best.gobs, best.params.qmax)
    # the candidates of one PDF share its data
    weight, penalty = bic_weights(best.r, best.gobs, best.params.qmax, noise)

    def refit(candidate: Candidate) -> Candidate:
        fit = fit_cluster(
            candidate.xyz,
            candidate.r,
            candidate.gobs,
            candidate.params,
            zoom=1.0,
            uiso=candidate.uiso,
            fit_strain=True,
        )
        gain = weight * (candidate.rw**2 - fit.rw**2)
        if gain <= penalty * STRAIN_PARAMETERS:
            return candidate
        xyz = candidate.xyz @ fit.deformation.T
        return dataclasses.replace(
            candidate,
            xyz=xyz - xyz.mean(0),
            rw=fit.rw,
            scale=fit.scale,
            zoom=candidate.zoom * fit.zoom,
            uiso=fit.uiso,
            gcalc=fit.gcalc,
            strain=fit.strain,
        )

    refitted = list(candidates)
    # numpy releases the GIL in the heavy parts of the fits
    with worker_pool() as threads:
        for i, new in zip(
            chosen, threads.map(refit, [candidates[i] for i in chosen])
        ):
            refitted[i] = new
    return refitted


def unstrained_xyz(candidate: Candidate) -> np.ndarray:
    """A candidate's coordinates (Å) with its strain undone.

    Parameters
    ----------
    candidate : Candidate

    Returns
    -------
    numpy.ndarray
        ``(n_atoms, 3)``: ``xyz`` itself when ``strain`` is None.
    """
    if candidate.strain is None:
        return candidate.xyz
    return candidate.xyz @ np.linalg.inv(np.eye(3) + candidate.strain).T


def unstrained(candidate: Candidate) -> Candidate:
    """A strained candidate refitted without its strain.

    Parameters
    ----------
    candidate : Candidate

    Returns
    -------
    Candidate
        A copy with the strain undone (:func:`unstrained_xyz`) and scale,
        zoom and Uiso fitted anew; the candidate itself when ``strain``
        is None.
    """
    if candidate.strain is None:
        return candidate
    xyz = unstrained_xyz(candidate)
    fit = fit_cluster(
        xyz,
        candidate.r,
        candidate.gobs,
        candidate.params,
        zoom=1.0,
        uiso=candidate.uiso,
    )
    xyz = (xyz - xyz.mean(0)) * fit.zoom
    return dataclasses.replace(
        candidate,
        xyz=xyz,
        rw=fit.rw,
        scale=fit.scale,
        zoom=candidate.zoom * fit.zoom,
        uiso=fit.uiso,
        gcalc=fit.gcalc,
        strain=None,
    )
