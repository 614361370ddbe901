"""Tests of the diffpy.srfit recipe built from a candidate."""

import numpy as np
import pytest
from conftest import HAS_SRREAL, needs_srreal

from diffpy.deepstruc.candidate import Candidate
from diffpy.deepstruc.clusters import build_cluster
from diffpy.deepstruc.debye import DebyeParameters, r_grid, simulate_pdf
from diffpy.deepstruc.fitting import fit_cluster
from diffpy.deepstruc.srfit import DebyeProfileGenerator, make_recipe, refine

NAMES = ["scale", "zoom", "uiso", "qdamp", "delta2"]
PARAMS = DebyeParameters(qmin=0.7, qmax=25.0, qdamp=0.04, delta2=2.0)


@pytest.fixture(scope="module")
def candidate():
    """A perturbed fcc cluster after the quick fit to its scaled data.

    The data use other qdamp, delta2 and Uiso than the quick fit, so the
    refinement has something to improve.
    """
    xyz = build_cluster("fcc", (2, 3, 2), 2.7)
    truth = DebyeParameters(qmin=0.7, qmax=25.0, qdamp=0.045, delta2=2.5)
    r, g = simulate_pdf(xyz, r_grid(1.5, 20.0, 0.01), params=truth)
    g *= 1.02
    model = xyz + np.random.default_rng(0).normal(0, 0.03, xyz.shape)
    fit = fit_cluster(model, r, g, PARAMS)
    return Candidate(
        xyz=(model - model.mean(0)) * fit.zoom,
        element="Pt",
        rw=fit.rw,
        scale=fit.scale,
        zoom=fit.zoom,
        uiso=fit.uiso,
        latent=np.zeros(2),
        sigma=0.0,
        source="prior",
        r=r,
        gobs=g,
        gcalc=fit.gcalc,
        params=PARAMS,
    )


def _rw(recipe):
    residual = recipe.residual()
    return np.sqrt(residual @ residual / np.sum(recipe.pdf.profile.y**2))


def test_numpy_recipe_starts_at_the_quick_fit(candidate):
    recipe = candidate.make_recipe(backend="numpy")
    assert isinstance(recipe.pdf.G, DebyeProfileGenerator)
    assert recipe.getNames() == NAMES
    expected = [candidate.scale, 1.0, candidate.uiso, 0.04, 2.0]
    np.testing.assert_allclose(recipe.getValues(), expected)
    low, high = recipe.getBounds2()
    assert np.all(low <= recipe.getValues())
    assert np.all(recipe.getValues() <= high)
    assert _rw(recipe) == pytest.approx(candidate.rw, abs=1e-3)


def test_refine_lowers_rw(candidate):
    recipe = make_recipe(candidate, backend="numpy")
    start = _rw(recipe)
    rw = refine(recipe, max_nfev=40)
    assert rw <= start
    assert rw == pytest.approx(_rw(recipe))
    values = dict(zip(recipe.getNames(), recipe.getValues()))
    assert values["delta2"] > 2.0  # the data have delta2 = 2.5


def test_data_and_fit_range(candidate):
    r, g = candidate.r, 2 * candidate.gobs
    recipe = make_recipe(candidate, r=r, g=g, fit_range=(2.0, 10.0))
    profile = recipe.pdf.profile
    inside = (r > 2.0 - 1e-9) & (r < 10.0 + 1e-9)
    np.testing.assert_array_equal(profile.x, r[inside])
    np.testing.assert_array_equal(profile.y, g[inside])


def test_bad_arguments(candidate):
    with pytest.raises(ValueError, match="Please give both r and g"):
        make_recipe(candidate, r=candidate.r)
    with pytest.raises(ValueError, match="Please choose backend"):
        make_recipe(candidate, backend="pdffit")


@pytest.mark.skipif(HAS_SRREAL, reason="diffpy.srreal is installed")
def test_srreal_backend_needs_srreal(candidate):
    with pytest.raises(ImportError, match="diffpy.srreal"):
        make_recipe(candidate, backend="srreal")


@needs_srreal
def test_srreal_recipe_refines(candidate):
    recipe = make_recipe(candidate, backend="srreal")
    assert recipe.getNames() == NAMES
    start = _rw(recipe)
    assert start == pytest.approx(candidate.rw, abs=2e-3)
    assert refine(recipe, max_nfev=20) <= start
