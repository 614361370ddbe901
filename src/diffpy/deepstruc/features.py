"""Scale-free model input computed from a PDF.

The prior network does not see G(r) on the r grid directly.  It sees G on
a reduced grid ``u = r / d``, where ``d`` is the nearest-neighbour distance
estimated from the first PDF peak, and G is divided by its maximum.  The
input is then the same for every metal of a given cluster geometry, and
the decoder can work in units of ``d`` too.  Training (``training/``) and
the plugin both build the input with :func:`prior_input`, so the two can
never drift apart.
"""

import numpy as np
from scipy.ndimage import gaussian_filter1d

#: Reduced grid ``u = r / d`` of the prior input (0.80, 0.81, ..., 8.00).
U_GRID = np.arange(80, 801) / 100.0

#: r range (Å) searched for the first peak and the maximum of G.  It starts
#: below the model grid (2 Å) so that short bonds (bcc clusters of small
#: metals, 1.9-2.0 Å) keep their first peak.
R_RANGE = (1.0, 30.0)

#: r grid on which training simulates G before building the prior input.
INPUT_R_GRID = np.arange(100, 3000) / 100.0

#: A peak counts as the first coordination peak when it is a local maximum
#: above this fraction of the global maximum of G.
FIRST_PEAK_FRACTION = 0.4

#: Standard deviation (Å) of the Gaussian that smooths G before the first
#: peak is sought, so that noise makes no local maxima on its flanks
#: (G with 2-5 % noise otherwise gave d up to 6 % too short).
#: It is far narrower than any PDF peak, so it moves no peak of clean data.
PEAK_SMOOTHING = 0.05


def estimate_nn_distance(r: np.ndarray, g: np.ndarray) -> float:
    """Estimate the nearest-neighbour distance from the first PDF peak.

    G is smoothed with a Gaussian of :data:`PEAK_SMOOTHING` Å; its first
    local maximum above 40 % of its global maximum (both taken in 1-30 Å)
    is refined by a parabola through it and its two neighbours.

    Parameters
    ----------
    r : numpy.ndarray
        Increasing r grid in Å.
    g : numpy.ndarray
        G(r) on ``r``.

    Returns
    -------
    float
        The estimated nearest-neighbour distance in Å.

    Raises
    ------
    ValueError
        When G has no local maximum above 40 % of its global maximum.
    """
    r, g = _in_range(r, g)
    if g.size < 3:
        raise ValueError(
            "Could not find the first coordination peak: G(r) has fewer "
            "than 3 points between 1 and 30 Å. Please check that r is in Å."
        )
    g = gaussian_filter1d(g, PEAK_SMOOTHING / np.median(np.diff(r)))
    threshold = FIRST_PEAK_FRACTION * g.max()
    inner = g[1:-1]
    is_peak = (inner >= g[:-2]) & (inner > g[2:]) & (inner > threshold)
    peaks = np.flatnonzero(is_peak) + 1
    if threshold <= 0 or peaks.size == 0:
        raise ValueError(
            "Could not find the first coordination peak in G(r). "
            "Please check that the data is a PDF G(r) with r in Å."
        )
    k = peaks[0]
    left, centre, right = g[k - 1], g[k], g[k + 1]
    curvature = left - 2.0 * centre + right
    shift = 0.5 * (left - right) / curvature if curvature < 0 else 0.0
    return float(r[k] + shift * (r[k + 1] - r[k]))


def _in_range(r, g):
    r = np.asarray(r, dtype=float)
    g = np.asarray(g, dtype=float)
    inside = (r >= R_RANGE[0]) & (r < R_RANGE[1])
    return r[inside], g[inside]


def prior_input(r: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, float]:
    """Build the prior network's input from G(r).

    Parameters
    ----------
    r : numpy.ndarray
        r grid in Å, increasing (the data's own grid; only 1-30 Å is used).
    g : numpy.ndarray
        G(r) on ``r``.

    Returns
    -------
    features : numpy.ndarray
        float32 array of ``len(U_GRID)`` values: G / max(G) at
        ``r = u * d``, linearly interpolated, zero outside 1-30 Å and
        outside the data.
    nn_distance : float
        The estimated nearest-neighbour distance ``d`` in Å.
    """
    r, g = _in_range(r, g)
    d = estimate_nn_distance(r, g)
    features = np.interp(U_GRID * d, r, g / g.max(), left=0.0, right=0.0)
    return features.astype(np.float32), d
