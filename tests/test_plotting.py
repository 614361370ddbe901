"""Tests of the fit and latent-map plots."""

import numpy as np
import pytest

from diffpy.deepstruc.model import load_model
from diffpy.deepstruc.plotting import (
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


def test_plot_latent_map(candidates, latent_map):
    mean, sigma = np.array([0.2, -1.5]), np.array([0.05, 0.1])
    fig = plot_latent_map(
        latent_map,
        prior_mean=mean,
        prior_sigma=sigma,
        candidates=candidates,
    )
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [
        *TYPE_COLORS,
        "prior mean",
        "prior 3, 5, 7 σ",
        "candidates",
    ]
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(
        latent_map["z"]
    )
    widths = sorted(p.width for p in ax.patches)
    assert np.allclose(widths, 2 * np.array([3, 5, 7]) * sigma[0])
    assert all(np.allclose(p.center, mean) for p in ax.patches)
    diamond, crosses = ax.lines
    assert diamond.get_marker() == "D"
    assert np.allclose(crosses.get_xdata(), [c.latent[0] for c in candidates])
    assert [t.get_text() for t in ax.texts] == ["1", "2"]


def test_plot_latent_map_without_prior(latent_map):
    fig = plot_latent_map(latent_map)
    (ax,) = fig.axes
    assert not ax.lines and not ax.patches and not ax.texts
    assert len(ax.get_legend().get_texts()) == len(TYPE_COLORS)
