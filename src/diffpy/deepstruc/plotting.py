"""Plots of candidate fits and of the latent space.

The functions draw on a given matplotlib ``Axes`` or on a new figure that
is not attached to pyplot, so they work without a display (files are
rendered by the Agg backend) and leave no open figures behind.
"""

from collections.abc import Sequence
from itertools import cycle
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
#: Style of the prior mean marker.
PRIOR_MEAN_STYLE = dict(
    marker="D", ls="none", color="black", mec="white", ms=7, zorder=4
)
#: Style of the candidate markers.
CANDIDATE_STYLE = dict(
    marker="X", ls="none", color="black", mec="white", ms=9, zorder=3
)
#: Line styles of the successive σ ellipses, repeated when there are more.
SIGMA_STYLES = ("-", "--", ":", "-.")
#: Style of the candidates' rank labels.
LABEL_STYLE = dict(
    fontsize=9,
    fontweight="bold",
    ha="center",
    va="center",
    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8),
)
#: Width and height of the prior inset, as fractions of the map's.
INSET_SIZE = 0.3
#: Half width of the inset's square region, in units of the largest
#: σ ellipse's largest semi-axis.
INSET_ZOOM_MARGIN = 1.3


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


def plot_type_weights(candidate: Candidate, ax=None):
    """Bar plot of the structure types' weights, with their best Rw.

    Parameters
    ----------
    candidate : Candidate
        Any candidate of the PDF (all share
        :attr:`~diffpy.deepstruc.candidate.Candidate.type_weights` and
        :attr:`~diffpy.deepstruc.candidate.Candidate.type_rw`).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; by default a new figure is made.

    Returns
    -------
    matplotlib.figure.Figure
        The figure that holds the plot.

    Raises
    ------
    ValueError
        When the candidate has no type weights.
    """
    if not candidate.type_weights:
        raise ValueError(
            "This candidate has no type weights; they come from propose "
            "with snapping or from mining a library with structure types."
        )
    fig, ax = _axes(ax, (5.0, 0.4 * len(candidate.type_weights) + 1.2))
    names = list(candidate.type_weights)[::-1]
    weights = [candidate.type_weights[n] for n in names]
    colors = [TYPE_COLORS.get(n, OTHER_COLOR) for n in names]
    ax.barh(names, weights, color=colors)
    for k, name in enumerate(names):
        ax.text(
            1.02,
            k,
            f"Rw {candidate.type_rw[name]:.3f}",
            va="center",
            fontsize=8,
            transform=ax.get_yaxis_transform(),
        )
    ax.set_xlim(0, 1)
    ax.set_xlabel("weight of the structure type")
    ax.set_title("How sure is the type (best Rw of each type)", fontsize=10)
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

    The prior of a PDF is usually far narrower than the map, so its mean
    is marked on the map and its σ ellipses are drawn at their true size
    in a zoomed inset, which sits in the emptiest corner of the map and
    is linked to the zoomed region.  Candidates are numbered by rank; the
    numbers are placed so that they do not overlap (with a leader line
    to their point where they had to move away), and a table below the
    map says what each candidate is.

    Parameters
    ----------
    latent_map : dict
        ``z`` (latent points), ``type`` and ``n_atoms`` of the training
        structures, as in
        :attr:`diffpy.deepstruc.model.DeepStrucModel.latent_map`.  Points
        are coloured by type, their area grows with the atom count (see
        the size legend).
    prior_mean, prior_sigma : sequence of float, optional
        The prior of one PDF: its mean is drawn as a diamond and, when
        ``prior_sigma`` is given too, an inset shows ellipses at
        ``sigma_multipliers`` times its standard deviation.
    sigma_multipliers : sequence of float
        Sizes of the σ ellipses, each drawn in its own line style.
    candidates : sequence of Candidate
        Drawn as crosses labelled with their rank.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; by default a new figure is made.

    Returns
    -------
    matplotlib.figure.Figure
        The figure that holds the plot.  Its map axes carry three
        legends (symbols, marker sizes and, with candidates, the
        candidate table) and, with a prior σ, the inset.
    """
    from matplotlib.lines import Line2D

    fig, ax = _axes(ax, (9.0, 7.5))
    training = _Training.of(latent_map)
    training.scatter(ax)
    handles, labels = ax.get_legend_handles_labels()
    if prior_mean is not None:
        handles += ax.plot(*prior_mean, **PRIOR_MEAN_STYLE)
        labels.append("prior mean")
    if prior_sigma is not None:
        for k, style in zip(sigma_multipliers, cycle(SIGMA_STYLES)):
            handles.append(Line2D([], [], color="black", lw=0.9, ls=style))
            labels.append(f"prior {k:g} σ (inset)")
    latent = np.array([c.latent for c in candidates]).reshape(-1, 2)
    if candidates:
        handles += ax.plot(*latent.T, **CANDIDATE_STYLE)
        labels.append("candidates")
    ax.set_xlabel("z₁")
    ax.set_ylabel("z₂")
    ax.set_title("Latent space of the training clusters")
    legend = ax.legend(
        handles,
        labels,
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
    )
    for handle in legend.legend_handles[: len(training.names)]:
        handle.set_sizes([30.0])
        handle.set_alpha(1.0)
    _add_legend(ax, training.size_legend(ax))
    maps = [ax]
    if prior_mean is not None and prior_sigma is not None:
        maps.append(
            _prior_inset(
                ax,
                training,
                np.asarray(prior_mean, dtype=float),
                np.asarray(prior_sigma, dtype=float),
                sigma_multipliers,
                latent,
            )
        )
    if candidates:
        _add_legend(ax, _candidate_table(ax, candidates))
        means = np.reshape([] if prior_mean is None else prior_mean, (-1, 2))
        ranks = [str(c.rank) for c in candidates]
        _label_points(ax, latent, ranks, maps[1:], means)
        for inset in maps[1:]:
            _label_points(inset, latent, ranks, [], means)
    return fig


class _Training:
    """Latent points of the training structures, drawn by type."""

    def __init__(self, z, types, n_atoms):
        self.z, self.types, self.n_atoms = z, types, n_atoms
        known = [t for t in TYPE_COLORS if t in types]
        self.names = known + sorted(set(types) - set(known))

    @classmethod
    def of(cls, latent_map: dict) -> "_Training":
        """Read the arrays of a model's ``latent_map``."""
        return cls(
            np.asarray(latent_map["z"], dtype=float),
            np.asarray(latent_map["type"]),
            np.asarray(latent_map["n_atoms"], dtype=float),
        )

    def area(self, n_atoms):
        """Marker area (points²) of clusters with ``n_atoms`` atoms."""
        return 2.0 + MAX_MARKER_AREA * np.asarray(n_atoms) / self.n_atoms.max()

    def scatter(self, ax) -> None:
        """Scatter the points of each type, labelled with the type."""
        area = self.area(self.n_atoms)
        for name in self.names:
            inside = self.types == name
            ax.scatter(
                *self.z[inside].T,
                s=area[inside],
                color=TYPE_COLORS.get(name, OTHER_COLOR),
                alpha=0.6,
                linewidths=0,
                label=name,
            )

    def size_legend(self, ax):
        """Make a legend of the marker areas of three cluster sizes."""
        from matplotlib.legend import Legend
        from matplotlib.lines import Line2D

        largest = self.n_atoms.max()
        sizes = sorted({float(f"{largest * f:.0g}") for f in (0.1, 0.5, 1)})
        handles = [
            Line2D(
                [],
                [],
                ls="none",
                marker="o",
                color="0.4",
                mew=0,
                ms=np.sqrt(self.area(n)),
            )
            for n in sizes
        ]
        return Legend(
            ax,
            handles,
            [f"{n:g}" for n in sizes],
            title="atoms per cluster\n(marker area)",
            title_fontsize=8,
            fontsize=8,
            ncols=len(sizes),
            loc="lower left",
            bbox_to_anchor=(1.02, 0.0),
            borderaxespad=0.0,
            handletextpad=0.3,
            columnspacing=1.0,
        )


def _add_legend(ax, legend) -> None:
    """Add another legend to ``ax``, unclipped so that layouts see it."""
    ax.add_artist(legend)
    legend.set_clip_on(False)


def _inset_bounds(anchor: str) -> list[float]:
    """Inset bounds (axes fractions) in the corner named by ``anchor``.

    Northern corners keep room for the inset's title below the map's top.
    """
    margin = 0.02
    x0 = margin if "W" in anchor else 1 - margin - INSET_SIZE
    y0 = margin if "S" in anchor else 1 - 4 * margin - INSET_SIZE
    return [x0, y0, INSET_SIZE, INSET_SIZE]


def _emptiest_corner(ax, crowd, avoid) -> str:
    """Compass name of the map corner whose inset would hide least.

    A corner is ranked by the number of points of ``avoid`` (which the
    inset must not hide), then of ``crowd``, that its inset would cover.
    """
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()

    def hidden(anchor):
        left, bottom, width, height = _inset_bounds(anchor)
        lower = np.array([x0 + left * (x1 - x0), y0 + bottom * (y1 - y0)])
        upper = lower + [width * (x1 - x0), height * (y1 - y0)]
        return tuple(
            int(np.all((p >= lower) & (p <= upper), axis=1).sum())
            for p in (avoid, crowd)
        )

    return min(("SE", "NE", "SW", "NW"), key=hidden)


def _prior_inset(ax, training, mean, sigma, multipliers, latent):
    """Zoom onto the prior in an inset with its σ ellipses at true size.

    Returns the inset axes; the zoomed region is marked on ``ax`` and
    linked to the inset.
    """
    from matplotlib.patches import Ellipse

    avoid = np.vstack([mean[None], latent])
    anchor = _emptiest_corner(ax, training.z, avoid)
    inset = ax.inset_axes(_inset_bounds(anchor))
    training.scatter(inset)
    for k, style in zip(multipliers, cycle(SIGMA_STYLES)):
        inset.add_patch(
            Ellipse(
                mean,
                *(2 * k * sigma),
                fill=False,
                color="black",
                lw=0.9,
                ls=style,
            )
        )
    inset.plot(*mean, **PRIOR_MEAN_STYLE)
    inset.plot(*latent.T, **CANDIDATE_STYLE)
    half = INSET_ZOOM_MARGIN * max(multipliers) * sigma.max()
    inset.set_xlim(mean[0] - half, mean[0] + half)
    inset.set_ylim(mean[1] - half, mean[1] + half)
    inset.set_aspect("equal", adjustable="box", anchor=anchor)
    inset.set_xticks([])
    inset.set_yticks([])
    inset.set_title(
        f"prior, zoomed in: σ₁ = {sigma[0]:.2g}, σ₂ = {sigma[1]:.2g}",
        fontsize=8,
    )
    ax.indicate_inset_zoom(inset, edgecolor="0.3")
    return inset


def _candidate_table(ax, candidates):
    """Legend below the map: rank, atoms, Rw and nearest library cluster."""
    from matplotlib.legend import Legend
    from matplotlib.lines import Line2D

    rows = []
    for c in candidates:
        ref = c.nearest_reference
        size = "-".join(str(s) for s in ref.size)
        rows.append(
            f"{c.rank}: {c.n_atoms} atoms, Rw {c.rw:.3f}, "
            f"nearest {ref.type} {size}"
        )
    return Legend(
        ax,
        [Line2D([], [], ls="none")] * len(rows),
        rows,
        title="candidates: rank, atoms, Rw, nearest library cluster",
        title_fontsize=8,
        fontsize=8,
        ncols=2,
        handlelength=0,
        handletextpad=0,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        borderaxespad=0.0,
    )


def _label_points(ax, points, texts, avoid, markers) -> None:
    """Write ``texts`` next to those ``points`` that ``ax`` shows.

    Each label takes the first free place on rings of growing radius
    around its point (:func:`_ring_offsets`): inside the axes, clear of
    the labels placed before it, of the markers at ``points`` and
    ``markers`` and of the axes in ``avoid``.  A label beyond the first
    ring gets a leader line to its point.  The places are found in the
    figure's current layout, which the labels do not change.
    """
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.draw_without_rendering()
    frame = ax.get_window_extent()
    to_pixels = fig.dpi / 72.0
    offsets = _ring_offsets()
    nearest = np.hypot(*offsets[0])
    half = CANDIDATE_STYLE["ms"] / 2 * to_pixels
    taken = [
        Bbox.from_extents(*(c - half), *(c + half))
        for c in ax.transData.transform(np.vstack([points, markers]))
    ]
    taken += [a.get_tightbbox() for a in avoid]
    for point, text in zip(points, texts):
        centre = ax.transData.transform(point)
        if not frame.contains(*centre):
            continue
        probe = ax.text(0, 0, text, **LABEL_STYLE)
        extent = probe.get_window_extent()
        probe.remove()
        size = np.array([extent.width, extent.height]) + 4 * to_pixels
        places = [
            Bbox.from_bounds(*(centre + offset * to_pixels - size / 2), *size)
            for offset in offsets
        ]
        free = [
            i
            for i, box in enumerate(places)
            if frame.contains(box.x0, box.y0)
            and frame.contains(box.x1, box.y1)
            and box.count_overlaps(taken) == 0
        ]
        best = free[0] if free else 0
        taken.append(places[best])
        leader = np.hypot(*offsets[best]) > nearest
        label = ax.annotate(
            text,
            point,
            xytext=offsets[best],
            textcoords="offset points",
            arrowprops=(
                dict(arrowstyle="-", lw=0.6, shrinkA=0, shrinkB=5)
                if leader
                else None
            ),
            **LABEL_STYLE,
        )
        label.set_in_layout(False)


def _ring_offsets() -> np.ndarray:
    """Label offsets (points) on rings of growing radius, nearest first."""
    angles = np.deg2rad([45, 135, -45, -135, 0, 90, 180, -90])
    radii = np.arange(10.0, 80.0, 6.0)
    return np.concatenate(
        [r * np.column_stack([np.cos(angles), np.sin(angles)]) for r in radii]
    )


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
