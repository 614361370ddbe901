"""Plots of candidate fits and of the latent space.

The functions draw on a given matplotlib ``Axes`` or on a new figure that
is not attached to pyplot, so they work without a display (files are
rendered by the Agg backend) and leave no open figures behind.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from diffpy.deepstruc.candidate import Candidate

#: Colour of each structure type in the latent map.
TYPE_COLORS = {
    "sc": "tab:gray",
    "fcc": "tab:blue",
    "bcc": "tab:orange",
    "hcp": "tab:green",
    "icosahedral": "tab:red",
    "decahedral": "tab:purple",
    "octahedral": "tab:brown",
}
#: Colour of types that are not in :data:`TYPE_COLORS`.
OTHER_COLOR = "tab:olive"
#: Largest marker area (points²) in the latent map, for the largest cluster.
MAX_MARKER_AREA = 40.0


def _axes(ax, figsize: tuple[float, float]):
    """Return ``ax`` and its figure, or a new pyplot-free figure's axes."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def plot_fit(candidate: Candidate, ax=None):
    """Plot the observed and calculated PDF of a candidate.

    The difference (observed - calculated) is drawn offset below the
    curves, with a dashed line marking its zero.

    Parameters
    ----------
    candidate : Candidate
        A fitted candidate (its ``r``, ``gobs`` and ``gcalc``).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; by default a new figure is made.

    Returns
    -------
    matplotlib.figure.Figure
        The figure that holds the plot.
    """
    fig, ax = _axes(ax, (7.0, 4.5))
    r, gobs, gcalc = candidate.r, candidate.gobs, candidate.gcalc
    diff = gobs - gcalc
    span = max(gobs.max(), gcalc.max()) - min(gobs.min(), gcalc.min())
    offset = min(gobs.min(), gcalc.min()) - diff.max() - 0.1 * span
    ax.plot(r, gobs, color="black", lw=0.8, label="observed")
    ax.plot(r, gcalc, color="tab:red", lw=1.2, label="calculated")
    ax.plot(r, diff + offset, color="tab:green", lw=0.8, label="difference")
    ax.axhline(offset, color="0.5", lw=0.6, ls="--")
    ax.set_xlim(r[0], r[-1])
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("G (Å⁻²)")
    ax.set_title(
        f"Candidate {candidate.rank}: nearest {candidate.nearest_reference}"
        f"\n{candidate.n_atoms} atoms, Rw = {candidate.rw:.3f}"
    )
    ax.legend(loc="upper right", frameon=False)
    return fig


def plot_latent_map(
    latent_map: dict,
    *,
    prior_mean: Sequence[float] | None = None,
    prior_sigma: Sequence[float] | None = None,
    sigma_multipliers: Sequence[float] = (3, 5, 7),
    candidates: Sequence[Candidate] = (),
    ax=None,
):
    """Plot the training structures and the candidates in latent space.

    Parameters
    ----------
    latent_map : dict
        ``z`` (latent points), ``type`` and ``n_atoms`` of the training
        structures, as in
        :attr:`diffpy.deepstruc.model.DeepStrucModel.latent_map`.  Points
        are coloured by type, their area grows with the atom count.
    prior_mean, prior_sigma : sequence of float, optional
        The prior of one PDF: its mean is drawn as a diamond and, when
        ``prior_sigma`` is given too, ellipses at ``sigma_multipliers``
        times its standard deviation.
    sigma_multipliers : sequence of float
        Sizes of the σ ellipses.
    candidates : sequence of Candidate
        Drawn as crosses labelled with their rank.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; by default a new figure is made.

    Returns
    -------
    matplotlib.figure.Figure
        The figure that holds the plot.
    """
    from matplotlib.patches import Ellipse

    fig, ax = _axes(ax, (6.5, 5.5))
    z = np.asarray(latent_map["z"], dtype=float)
    types = np.asarray(latent_map["type"])
    area = np.asarray(latent_map["n_atoms"], dtype=float)
    area = 2.0 + MAX_MARKER_AREA * area / area.max()
    known = [t for t in TYPE_COLORS if t in types]
    for name in known + sorted(set(types) - set(known)):
        inside = types == name
        ax.scatter(
            *z[inside].T,
            s=area[inside],
            color=TYPE_COLORS.get(name, OTHER_COLOR),
            alpha=0.6,
            linewidths=0,
            label=name,
        )
    if prior_mean is not None:
        ax.plot(*prior_mean, "D", color="black", ms=7, label="prior mean")
        if prior_sigma is not None:
            sigmas = ", ".join(f"{k:g}" for k in sigma_multipliers)
            for i, k in enumerate(sigma_multipliers):
                ax.add_patch(
                    Ellipse(
                        prior_mean,
                        *(2 * k * np.asarray(prior_sigma)),
                        fill=False,
                        color="black",
                        ls="--",
                        lw=0.8,
                        label=f"prior {sigmas} σ" if i == 0 else None,
                    )
                )
    if candidates:
        latent = np.array([c.latent for c in candidates])
        ax.plot(*latent.T, "x", color="black", ms=8, mew=2, label="candidates")
        for candidate in candidates:
            ax.annotate(
                str(candidate.rank),
                candidate.latent,
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=9,
                fontweight="bold",
            )
    ax.set_xlabel("z₁")
    ax.set_ylabel("z₂")
    ax.set_title("Latent space")
    legend = ax.legend(fontsize=8, loc="best")
    for handle in legend.legend_handles[: len(set(types))]:
        handle.set_sizes([30.0])
        handle.set_alpha(1.0)
    return fig


def save(fig, path: str | Path) -> Path:
    """Save a figure; the format follows the extension of ``path``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to save.
    path : str or pathlib.Path
        The file to write.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    fig.savefig(path, dpi=150)
    return path
