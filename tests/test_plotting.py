"""Tests of the fit and latent-map plots."""

from dataclasses import replace

import numpy as np
import pytest
from matplotlib.legend import Legend
from matplotlib.patches import Ellipse

from diffpy.deepstruc.model import load_model
from diffpy.deepstruc.plotting import (
    MAX_MARKER_AREA,
    TYPE_COLORS,
    plot_fit,
    plot_latent_map,
    save,
)
from diffpy.deepstruc.propose import propose_structures
from diffpy.deepstruc.report import example_pdf


@pytest.fixture(scope="module")
def candidates():
    return propose_structures(example_pdf(), n_samples=50, top=2)


@pytest.fixture(scope="module")
def latent_map():
    return load_model("mmnp").latent_map


def test_plot_fit(candidates, tmp_path):
    best = candidates[0]
    fig = plot_fit(best)
    (ax,) = fig.axes
    observed, calculated, difference, zero = ax.lines
    assert np.array_equal(observed.get_ydata(), best.gobs)
    assert np.array_equal(calculated.get_ydata(), best.gcalc)
    offset = zero.get_ydata()[0]
    assert np.allclose(difference.get_ydata() - offset, best.gobs - best.gcalc)
    assert offset < min(best.gobs.min(), best.gcalc.min())
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["observed", "calculated", "difference"]
    title = ax.get_title()
    assert "Candidate 1" in title and str(best.nearest_reference) in title
    assert f"{best.n_atoms} atoms" in title and f"{best.rw:.3f}" in title
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("r (Å)", "G (Å⁻²)")
    assert save(fig, tmp_path / "fit.png").stat().st_size > 0


def test_plot_fit_on_given_axes(candidates):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    assert plot_fit(candidates[0], ax=ax) is fig
    assert len(ax.lines) == 4


def _legend(ax, title):
    """The legend of ``ax`` (its main one or an added one) with ``title``."""
    (legend,) = [
        a
        for a in [ax.get_legend(), *ax.artists]
        if isinstance(a, Legend) and a.get_title().get_text() == title
    ]
    return legend


def _label_boxes(ax):
    """Display boxes of the drawn rank labels of ``ax``."""
    ax.figure.draw_without_rendering()
    return [t.get_bbox_patch().get_window_extent() for t in ax.texts]


def _assert_apart(boxes, frame):
    """No two boxes overlap, and all lie inside ``frame``."""
    for i, box in enumerate(boxes):
        assert box.count_overlaps(boxes[i + 1 :]) == 0
        assert frame.contains(box.x0, box.y0)
        assert frame.contains(box.x1, box.y1)


def test_plot_latent_map(candidates, latent_map, tmp_path):
    mean, sigma = np.array([0.2, -1.5]), np.array([0.005, 0.003])
    fig = plot_latent_map(
        latent_map,
        prior_mean=mean,
        prior_sigma=sigma,
        candidates=candidates,
    )
    (ax,) = fig.axes
    (inset,) = ax.child_axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [
        *TYPE_COLORS,
        "prior mean",
        "prior 3 σ (inset)",
        "prior 5 σ (inset)",
        "prior 7 σ (inset)",
        "candidates",
    ]
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(
        latent_map["z"]
    )
    # The prior's ellipses are at their true size in the inset, which
    # shows all of them and is marked on the map.
    ellipses = sorted(
        (p for p in inset.patches if isinstance(p, Ellipse)),
        key=lambda p: p.width,
    )
    k = np.array([3, 5, 7])
    assert np.allclose([p.width for p in ellipses], 2 * k * sigma[0])
    assert np.allclose([p.height for p in ellipses], 2 * k * sigma[1])
    assert all(np.allclose(p.center, mean) for p in ellipses)
    (x0, x1), (y0, y1) = inset.get_xlim(), inset.get_ylim()
    assert x0 < mean[0] - 7 * sigma[0] and mean[0] + 7 * sigma[0] < x1
    assert y0 < mean[1] - 7 * sigma[1] and mean[1] + 7 * sigma[1] < y1
    assert x1 - x0 < 4 * 7 * sigma[0]  # the 7 σ ellipse fills the inset
    (indicator,) = [a for a in ax.artists if hasattr(a, "rectangle")]
    assert np.allclose(
        indicator.rectangle.get_bbox().bounds, [x0, y0, x1 - x0, y1 - y0]
    )
    diamond, crosses = ax.lines
    assert diamond.get_marker() == "D"
    assert np.allclose(crosses.get_xdata(), [c.latent[0] for c in candidates])
    # The inset hides neither the prior mean nor a candidate.
    fig.draw_without_rendering()
    hidden = inset.get_tightbbox()
    for point in [mean, *(c.latent for c in candidates)]:
        assert not hidden.contains(*ax.transData.transform(point))
    assert [t.get_text() for t in ax.texts] == ["1", "2"]
    _assert_apart(_label_boxes(ax), ax.get_window_extent())
    sizes = _legend(ax, "atoms per cluster\n(marker area)")
    numbers = [float(t.get_text()) for t in sizes.get_texts()]
    assert len(numbers) == 3 and numbers == sorted(numbers)
    area = 2 + MAX_MARKER_AREA * np.array(numbers) / max(latent_map["n_atoms"])
    assert np.allclose(
        [h.get_markersize() ** 2 for h in sizes.legend_handles], area
    )
    table = _legend(ax, "candidates: rank, atoms, Rw, nearest library cluster")
    best = candidates[0]
    ref = best.nearest_reference
    assert table.get_texts()[0].get_text() == (
        f"1: {best.n_atoms} atoms, Rw {best.rw:.3f}, nearest {ref.type} "
        + "-".join(str(s) for s in ref.size)
    )
    assert save(fig, tmp_path / "latent_map.png").stat().st_size > 0


def test_plot_latent_map_crowded_labels(candidates, latent_map):
    # Eight candidates within 3 σ of the prior mean: their rank labels
    # neither overlap on the map nor in the inset.
    mean, sigma = np.array([1.2, -2.0]), np.array([0.007, 0.004])
    rng = np.random.default_rng(0)
    crowd = [
        replace(
            candidates[i % 2],
            rank=i + 1,
            latent=mean + rng.uniform(-3, 3, 2) * sigma,
        )
        for i in range(8)
    ]
    fig = plot_latent_map(
        latent_map, prior_mean=mean, prior_sigma=sigma, candidates=crowd
    )
    (ax,) = fig.axes
    (inset,) = ax.child_axes
    ranks = [str(i) for i in range(1, 9)]
    for axes in (ax, inset):
        assert [t.get_text() for t in axes.texts] == ranks
        boxes = _label_boxes(axes)
        _assert_apart(boxes, axes.get_window_extent())
        markers = axes.transData.transform([c.latent for c in crowd])
        assert not any(box.count_contains(markers) for box in boxes)
    hidden = inset.get_tightbbox()
    assert not any(box.overlaps(hidden) for box in _label_boxes(ax))


def test_plot_latent_map_without_prior(latent_map):
    fig = plot_latent_map(latent_map)
    (ax,) = fig.axes
    assert not ax.child_axes
    assert not ax.lines and not ax.patches and not ax.texts
    assert len(ax.get_legend().get_texts()) == len(TYPE_COLORS)
    assert _legend(ax, "atoms per cluster\n(marker area)")
