"""How sure is the structure type: relative weights of the types.

Every structure type gets the least Rw that any of its clusters reaches
(mined library shapes and decodes alike), and the types are weighed
against each other by how much worse their best fit is than the best of
all, measured in units of what the data can resolve:

    w_t ∝ exp( -N / (2 T) * (Rw_t² - Rw_best²) / Rw_ref² ),

where

- ``N = (r_max - r_min) * Qmax / π`` is the number of independent points
  of the fitted range (the Nyquist count, since G(r) is oversampled);
- ``Rw_ref = max(Rw_noise, Rw_best)``: the misfit that noise alone would
  give (:func:`noise_rw`, from the noise level of the data,
  :func:`noise_level`) or, when the
  best fit is worse than that (model error: strain, size distribution,
  an imperfect Qdamp), the best fit's own, as when uncertainties are
  scaled by the square root of the reduced χ²;
- ``T`` (:data:`TEMPERATURE`) widens the weights for the residuals of
  model error, which are correlated over r and so carry less evidence
  than independent noise.  It was calibrated on simulated PDFs that are
  not the test PDFs of the reliability table (see the metrics page).

With pure, independent noise and ``T = 1`` this is the likelihood ratio
of the types' best fits.
"""

import math

import numpy as np

#: Fewest points beyond the best candidate's diameter that give the noise
#: level; with fewer, the last :data:`TAIL_FRACTION` of the r range does.
TAIL_MIN_POINTS = 100
#: Part of the fitted r range, at its high end, that gives the noise
#: level when the particle fills nearly the whole range.
TAIL_FRACTION = 0.25
#: Divides the evidence of the Rw differences (see the module notes):
#: fitted by ``python -m training.calibrate`` on blind simulated PDFs of
#: shapes in and out of the training library, answered by ``propose``
#: and ``mine`` with ``strain=True`` (63.1, rounded).
TEMPERATURE = 63.0


def noise_level(candidate) -> float:
    """Estimate the noise (standard deviation of G) from the high-r part.

    Beyond the diameter of the particle its G holds nothing but the
    termination ripples of the Fourier transform, which the calculated
    PDF has too, so the residual of the best candidate there is noise
    (plus whatever the data hold that no single particle explains, which
    only makes the weights more cautious).

    Parameters
    ----------
    candidate : Candidate
        The best candidate of the PDF.

    Returns
    -------
    float
        Root mean square of ``gobs - gcalc`` beyond the candidate's
        diameter, or over the last :data:`TAIL_FRACTION` of the fitted r
        range when fewer than :data:`TAIL_MIN_POINTS` points lie beyond.
    """
    r = candidate.r
    residual = candidate.gobs - candidate.gcalc
    xyz = candidate.xyz - candidate.xyz.mean(0)
    beyond = r > 2 * np.linalg.norm(xyz, axis=1).max()
    if beyond.sum() < TAIL_MIN_POINTS:
        beyond = r >= r[-1] - TAIL_FRACTION * (r[-1] - r[0])
    return float(np.sqrt(np.mean(residual[beyond] ** 2)))


def white_noise(r: np.ndarray, g: np.ndarray, qmax: float) -> float:
    """Estimate the white noise of G from its spectrum beyond Qmax.

    G(r) is a sine transform of F(Q) up to Qmax, so its Fourier
    components at frequencies above Qmax hold nothing but noise added in
    r space.  Noise that came with F(Q) is band-limited like G itself
    and is not seen here (the estimate is then near zero).

    Parameters
    ----------
    r, g : numpy.ndarray
        G on an evenly spaced r grid.
    qmax : float
        Qmax of the data in Å⁻¹.

    Returns
    -------
    float
        Standard deviation of the white noise per point; 0 when the grid
        is too coarse to hold frequencies beyond 1.5 Qmax.
    """
    step = (r[-1] - r[0]) / (len(r) - 1)
    # a Hann window keeps the ends of the range from leaking into the
    # high frequencies; white noise keeps sum(window^2) of its power
    window = np.hanning(len(g))
    spectrum = np.fft.rfft(g * window)
    omega = 2 * math.pi * np.fft.rfftfreq(len(g), step)
    beyond = omega > 1.5 * qmax
    if beyond.sum() < 10:
        return 0.0
    power = np.mean(np.abs(spectrum[beyond]) ** 2)
    return float(np.sqrt(power / np.sum(window**2)))


def noise_rw(g: np.ndarray, noise: float) -> float:
    """The Rw that noise of standard deviation ``noise`` alone gives.

    Parameters
    ----------
    g : numpy.ndarray
        G on the fitted r grid.
    noise : float
        Standard deviation of the noise of each point.

    Returns
    -------
    float
        ``noise * sqrt(len(g) / sum(g²))``.
    """
    g = np.asarray(g, float)
    return float(noise * math.sqrt(g.size / np.sum(g * g)))


def independent_points(r: np.ndarray, qmax: float) -> float:
    """The number of independent points of G on ``r``: Δr Qmax / π."""
    return float((r[-1] - r[0]) * qmax / math.pi)


def type_weights(
    type_rw: dict[str, float],
    rw_noise: float,
    n_points: float,
    temperature: float = TEMPERATURE,
) -> dict[str, float]:
    """Relative weights of the structure types (they sum to 1).

    Parameters
    ----------
    type_rw : dict
        Least Rw of each structure type.
    rw_noise : float
        Rw that the data's noise alone gives (:func:`noise_rw`).
    n_points : float
        Independent points of the fitted data (:func:`independent_points`).
    temperature : float
        Divides the evidence (see the module notes).

    Returns
    -------
    dict
        Weight of each type, largest first; empty when ``type_rw`` is.
    """
    if not type_rw:
        return {}
    names = list(type_rw)
    rw = np.array([type_rw[name] for name in names])
    best = rw.min()
    reference = max(rw_noise, best, 1e-12)
    evidence = n_points / (2 * temperature) * (rw**2 - best**2)
    weights = np.exp(-evidence / reference**2)
    weights /= weights.sum()
    order = np.argsort(-weights, kind="stable")
    return {names[i]: float(weights[i]) for i in order}


def best_rw_by_type(types, rw) -> dict[str, float]:
    """Least Rw of every named type (entries without a type are skipped).

    Parameters
    ----------
    types : sequence of str
        Structure type of each cluster, ``""`` when unknown.
    rw : sequence of float
        Rw of each cluster.

    Returns
    -------
    dict
        ``{type: least Rw}``, in order of first appearance.
    """
    best: dict[str, float] = {}
    for name, value in zip(types, rw):
        if name and value < best.get(name, math.inf):
            best[name] = float(value)
    return best


def check_noise(noise: float | None) -> None:
    """Raise ValueError unless ``noise`` is None or finite and positive."""
    if noise is not None and not (noise > 0 and math.isfinite(noise)):
        raise ValueError(
            "Please give the noise as the standard deviation of G, a "
            f"finite number > 0 (got noise={noise})."
        )


def weigh_types(
    candidates: list,
    type_rw: dict[str, float],
    params,
    noise: float | None = None,
) -> None:
    """Set ``type_rw`` and ``type_weights`` of every candidate of a PDF.

    Parameters
    ----------
    candidates : list of Candidate
        The candidates of one PDF; all get the same two dicts.
    type_rw : dict
        Least Rw of each structure type (:func:`best_rw_by_type`).
    params : DebyeParameters
        Instrument parameters of the fits (their ``qmax``).
    noise : float, optional
        Standard deviation of the noise of G, overriding the estimate of
        :func:`noise_level`.
    """
    best = min(candidates, key=lambda c: c.rw)
    r, g = best.r, best.gobs
    if noise is None:
        noise = noise_level(best)
    weights = type_weights(
        type_rw, noise_rw(g, noise), independent_points(r, params.qmax)
    )
    for candidate in candidates:
        candidate.type_rw = dict(type_rw)
        candidate.type_weights = dict(weights)
