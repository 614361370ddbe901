"""Tests of the diffpy.srfit recipe built from a candidate."""

import math
from dataclasses import replace

import numpy as np
import pytest
from conftest import HAS_SRREAL, needs_srreal
from scipy.optimize import least_squares, leastsq

from diffpy.deepstruc import debye
from diffpy.deepstruc.candidate import Candidate
from diffpy.deepstruc.clusters import build_cluster
from diffpy.deepstruc.debye import (
    DebyeParameters,
    PairHistogram,
    r_grid,
    simulate_pdf,
)
from diffpy.deepstruc.fitting import fit_cluster
from diffpy.deepstruc.srfit import (
    BOUNDS,
    FREE,
    VARIABLES,
    DebyeProfileGenerator,
    make_recipe,
    refine,
)
from diffpy.srfit.fitbase import FitResults

PARAMS = DebyeParameters(qmin=0.7, qmax=25.0, qdamp=0.04, delta2=2.0)
IDIOMS = ("refine", "bounded", "unbounded", "leastsq")


def _candidate(truth):
    """A perturbed fcc cluster after the quick fit to data of ``truth``.

    The quick fit uses other qdamp and delta2 (those of PARAMS) than the
    data, so a refinement of them has something to improve.
    """
    xyz = build_cluster("fcc", (2, 3, 2), 2.7)
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


@pytest.fixture(scope="module")
def candidate():
    """Candidate for data with qdamp 0.045 and delta2 2.5."""
    return _candidate(replace(PARAMS, qdamp=0.045, delta2=2.5))


@pytest.fixture(scope="module")
def sharp_candidate():
    """Candidate for data with qdamp 0.02 and delta2 0.

    Refining all variables, unbounded optimizers drive qdamp through 0.
    """
    return _candidate(replace(PARAMS, qdamp=0.02, delta2=0.0))


def _rw(recipe):
    residual = recipe.residual()
    return np.sqrt(residual @ residual / np.sum(recipe.pdf.profile.y**2))


def _run(idiom, recipe):
    """Refine recipe in place with one of IDIOMS; return its Rw."""
    if idiom == "refine":
        return refine(recipe)
    if idiom == "bounded":
        x = least_squares(
            recipe.residual, recipe.values, bounds=recipe.getBounds2()
        ).x
    elif idiom == "unbounded":
        x = least_squares(recipe.residual, recipe.values).x
    else:
        x, _ = leastsq(recipe.residual, recipe.values)
    recipe.residual(x)
    return _rw(recipe)


def _values(recipe):
    return dict(zip(recipe.getNames(), recipe.getValues()))


# S1: default numpy recipe, expect scale, zoom, uiso free at the quick fit
# and within their bounds, qdamp and delta2 fixed at the candidate's params
def test_numpy_recipe_starts_at_the_quick_fit(candidate):
    recipe = candidate.make_recipe(backend="numpy")
    assert isinstance(recipe.pdf.G, DebyeProfileGenerator)
    assert recipe.getNames() == ["scale", "zoom", "uiso"]
    expected = [candidate.scale, 1.0, candidate.uiso]
    np.testing.assert_allclose(recipe.getValues(), expected)
    low, high = recipe.getBounds2()
    assert np.all(low <= recipe.getValues())
    assert np.all(recipe.getValues() <= high)
    assert recipe.qdamp.value == 0.04
    assert recipe.delta2.value == 2.0
    start = _rw(recipe)
    assert start == pytest.approx(candidate.rw, abs=1e-3)
    assert refine(recipe) <= start
    assert (recipe.qdamp.value, recipe.delta2.value) == (0.04, 2.0)


# S2: free keyword, expect exactly the named variables free, in recipe
# order, and fixed variables freed by recipe.free with their bounds
@pytest.mark.parametrize(
    "free, names",
    [
        (VARIABLES, list(VARIABLES)),
        ((*FREE, "delta2"), ["scale", "zoom", "uiso", "delta2"]),
        ("qdamp", ["qdamp"]),
        ((), []),
    ],
)
def test_free_variables(candidate, free, names):
    recipe = make_recipe(candidate, free=free, backend="numpy")
    assert recipe.getNames() == names
    recipe.free("all")
    assert recipe.getNames() == list(VARIABLES)
    low, high = recipe.getBounds2()
    np.testing.assert_array_equal(low, [BOUNDS[n][0] for n in VARIABLES])
    np.testing.assert_array_equal(high, [BOUNDS[n][1] for n in VARIABLES])


# S3: free start values outside their bounds, expect them clipped, and
# fixed ones (qdamp = delta2 = 0 from the data) kept
def test_starts_clipped_into_bounds(candidate):
    params = replace(PARAMS, qdamp=0.0, delta2=0.0)
    outside = replace(candidate, scale=-0.5, uiso=0.5, params=params)
    recipe = make_recipe(outside, backend="numpy")
    np.testing.assert_allclose(recipe.getValues(), [0.0, 1.0, 0.1])
    assert (recipe.qdamp.value, recipe.delta2.value) == (0.0, 0.0)
    recipe = make_recipe(outside, free=VARIABLES, backend="numpy")
    assert _values(recipe)["qdamp"] == BOUNDS["qdamp"][0]
    assert _values(recipe)["delta2"] == BOUNDS["delta2"][0]


def test_refine_lowers_rw(candidate):
    recipe = make_recipe(candidate, free=VARIABLES, backend="numpy")
    start = _rw(recipe)
    rw = refine(recipe, max_nfev=40)
    assert rw < start - 0.01
    assert rw == pytest.approx(_rw(recipe))
    assert _values(recipe)["delta2"] > 2.0  # the data have delta2 = 2.5


# S4: the bounded and unbounded scipy idioms on the default recipe, expect
# them to end at refine()'s Rw with finite FitResults uncertainties
@pytest.mark.parametrize("idiom", IDIOMS)
def test_idioms_default_recipe(candidate, idiom):
    recipe = make_recipe(candidate, backend="numpy")
    rw = _run(idiom, recipe)
    assert rw == pytest.approx(
        refine(make_recipe(candidate, backend="numpy")), abs=1e-6
    )
    results = FitResults(recipe)
    assert results.varnames == list(FREE)
    assert np.all(np.isfinite(results.varunc))
    assert np.all(np.asarray(results.varunc) > 0)


# S5: all variables free on data that pull qdamp to 0, expect the
# unbounded idioms to cross qdamp = 0 without an exception (the numpy
# backend used to raise "non-negative qdamp"), reach refine()'s Rw and
# give finite uncertainties; the bounded ones stay within the bounds
@pytest.mark.parametrize("idiom", IDIOMS)
def test_idioms_all_free(sharp_candidate, idiom, monkeypatch):
    qdamps = []
    evaluate = DebyeProfileGenerator.__call__

    def spy(generator, r):
        qdamps.append(generator.qdamp.value)
        return evaluate(generator, r)

    recipe = make_recipe(sharp_candidate, free=VARIABLES, backend="numpy")
    monkeypatch.setattr(DebyeProfileGenerator, "__call__", spy)
    rw = _run(idiom, recipe)
    monkeypatch.undo()
    reference = refine(
        make_recipe(sharp_candidate, free=VARIABLES, backend="numpy")
    )
    assert rw == pytest.approx(reference, abs=1e-5)
    assert rw < sharp_candidate.rw - 0.01
    if idiom in ("unbounded", "leastsq"):
        assert min(qdamps) < 0
    else:
        assert min(qdamps) >= BOUNDS["qdamp"][0]
    results = FitResults(recipe)
    assert results.varnames == list(VARIABLES)
    assert np.all(np.isfinite(results.varunc))


# S6: refine() with all variables free, expect every value inside bounds
# that keep it off 0 (qdamp used to run to 5e-13 on the sharp data) and
# finite, positive FitResults uncertainties
@pytest.mark.parametrize("data", ["candidate", "sharp_candidate"])
def test_refined_uncertainties_finite(request, data):
    recipe = make_recipe(
        request.getfixturevalue(data), free=VARIABLES, backend="numpy"
    )
    refine(recipe)
    low, high = recipe.getBounds2()
    assert np.all(low[1:] > 0)
    assert np.all((low <= recipe.getValues()) & (recipe.getValues() <= high))
    results = FitResults(recipe)
    assert np.all(np.isfinite(results.varunc))
    assert np.all(np.asarray(results.varunc) > 0)


# S7: negative zoom, uiso, qdamp and delta2, expect the G of their
# absolute values instead of an exception
def test_generator_uses_absolute_values(candidate):
    generator = DebyeProfileGenerator(candidate.xyz, PARAMS, uiso=0.003)
    r = candidate.r
    generator.zoom.value = 1.01
    expected = generator(r)
    for name in ("zoom", "uiso", "qdamp", "delta2"):
        par = generator.get(name)
        par.value = -par.value
    np.testing.assert_array_equal(generator(r), expected)
    generator.qdamp.value = 0.0
    assert np.isfinite(generator(r)).all()


def _extendedrmax(rmax, rstep, uiso):
    """srreal's extended rmax of a new calculator, from its definition."""
    fwhm = math.sqrt(8 * math.log(2) * 2 * uiso)
    tail = math.sqrt(-math.log(3.33e-6) / (4 * math.log(2))) * fwhm
    ext = min(10.0, 12 * math.pi / PARAMS.qmax + tail)
    return math.ceil((rmax + ext) / rstep) * rstep


# S8: srfit's grid convention on data with rstep 0.02 (params.rstep is
# 0.01), expect rmin = r[0], rmax = r[-1] + rstep / 2 and the G of that
# range, which differs from the simulator's r[-1] + rstep convention
def test_generator_follows_srfit_grid(candidate):
    r = np.arange(100, 1001) * 0.02
    uiso = 0.0031
    generator = DebyeProfileGenerator(candidate.xyz, PARAMS, uiso=uiso)
    g = generator(r)
    rmin, rmax, rstep = generator._range
    assert rstep == pytest.approx(0.02, rel=1e-12)
    assert (rmin, rmax) == (2.0, pytest.approx(20.01, abs=1e-12))
    dhi = _extendedrmax(20.01, rstep, uiso)
    assert dhi != _extendedrmax(20.02, rstep, uiso)
    assert generator._steps * rstep == pytest.approx(dhi)
    pairs = PairHistogram.from_cluster(candidate.xyz)
    params = replace(PARAMS, rstep=rstep)
    expected = pairs.pdf(r, params, uiso=uiso, extendedrmax=dhi)
    np.testing.assert_array_equal(g, expected)
    assert not np.allclose(g, pairs.pdf(r, params, uiso=uiso), atol=1e-6)


# S9: Uiso evaluated up and down, expect the extended range to grow with
# Uiso, stay when it shrinks by fewer than 50 steps and follow it when it
# shrinks by more, as srreal's calculator does
def test_generator_keeps_extended_range(candidate):
    r = candidate.r
    rstep = (r[-1] - r[0]) / (r.size - 1)
    pairs = PairHistogram.from_cluster(candidate.xyz)
    generator = DebyeProfileGenerator(candidate.xyz, PARAMS)
    uisos = (0.003, 0.006, 0.003, 0.05, 0.0001)
    fresh = [
        round(_extendedrmax(r[-1] + rstep / 2, rstep, uiso) / rstep)
        for uiso in uisos
    ]
    assert 0 < fresh[1] - fresh[2] < 50 < fresh[3] - fresh[4]
    for uiso, steps in zip(uisos, (0, 1, 1, 3, 4)):
        generator.uiso.value = uiso
        g = generator(r)
        assert generator._steps == fresh[steps]
        expected = pairs.pdf(
            r,
            replace(PARAMS, rstep=rstep),
            uiso=uiso,
            extendedrmax=fresh[steps] * rstep,
        )
        np.testing.assert_array_equal(g, expected)


# S10: r off the k rstep grid, expect the srreal rmin rounded down to the
# grid (srreal's first point no longer above min(r)) and rmax covering r
@pytest.mark.parametrize("rmin", [1.5, 1.505, 0.004, 0.0])
def test_output_grid_brackets_r(rmin):
    r = rmin + np.arange(500) * 0.01
    _, lo, hi = debye._output_grid(r, PARAMS)
    grid = r_grid(lo, hi, PARAMS.rstep)
    assert grid[0] <= r[0] + 1e-12 < grid[0] + PARAMS.rstep
    assert grid[-1] >= r[-1] - 1e-12


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
    with pytest.raises(ValueError, match="not qbroad, zom"):
        make_recipe(candidate, free=("scale", "zom", "qbroad"))


@pytest.mark.skipif(HAS_SRREAL, reason="diffpy.srreal is installed")
def test_srreal_backend_needs_srreal(candidate):
    with pytest.raises(ImportError, match="diffpy.srreal"):
        make_recipe(candidate, backend="srreal")


@needs_srreal
def test_srreal_recipe_refines(candidate):
    recipe = make_recipe(candidate, backend="srreal")
    assert recipe.getNames() == list(FREE)
    assert (recipe.qdamp.value, recipe.delta2.value) == (0.04, 2.0)
    start = _rw(recipe)
    assert start == pytest.approx(candidate.rw, abs=2e-3)
    assert refine(recipe, max_nfev=20) <= start


# S11: both backends evaluated at the same sequence of values (Uiso up,
# down by fewer than 50 steps, negative qdamp and delta2), expect the same
# G(r) to Rw 1e-4 at every step
@needs_srreal
def test_backends_agree(candidate):
    recipes = [
        make_recipe(candidate, free=VARIABLES, backend=backend)
        for backend in ("numpy", "srreal")
    ]
    start = recipes[0].getValues()
    steps = [
        start,
        start * [1, 1.01, 1, 1, 1],
        start * [1, 1, 2, 1, 1],
        start * [1, 1, 1.5, 1, 1],
        start * [1, 0.99, 1, -1, -1],
    ]
    for x in steps:
        for recipe in recipes:
            recipe.residual(x)
        numpy_g, srreal_g = (recipe.pdf.profile.ycalc for recipe in recipes)
        rw = np.sqrt(np.sum((numpy_g - srreal_g) ** 2) / np.sum(srreal_g**2))
        assert rw <= 1e-4


# S12: the scipy idioms on the srreal recipe with all variables free, expect
# no exception, refine()'s Rw and finite uncertainties
@needs_srreal
@pytest.mark.parametrize("idiom", IDIOMS)
def test_srreal_idioms(sharp_candidate, idiom):
    recipe = make_recipe(sharp_candidate, free=VARIABLES, backend="srreal")
    rw = _run(idiom, recipe)
    reference = refine(
        make_recipe(sharp_candidate, free=VARIABLES, backend="numpy")
    )
    assert rw == pytest.approx(reference, abs=1e-3)
    assert np.all(np.isfinite(FitResults(recipe).varunc))


# S13: simulate_pdf with srreal on r off the k rstep grid, starting on the
# first peak's rising edge, expect srreal's grid values (equal to numpy's)
# interpolated linearly from a grid that starts below r[0]; it used to
# start above r[0] and repeat its first value there
@needs_srreal
def test_srreal_simulate_off_grid(candidate):
    r = 2.505 + np.arange(1000) * 0.01
    _, lo, hi = debye._output_grid(r, PARAMS)
    grid = r_grid(lo, hi, PARAMS.rstep)
    assert grid[0] < r[0] < grid[1]
    dhi = debye._fourier_grid(PARAMS, candidate.uiso, lo, hi).dhi
    ggrid = PairHistogram.from_cluster(candidate.xyz).pdf(
        grid, PARAMS, uiso=candidate.uiso, extendedrmax=dhi
    )
    expected = np.interp(r, grid, ggrid)
    assert abs(expected[0] - ggrid[1]) > 0.1
    _, gsrreal = simulate_pdf(
        candidate.xyz, r, params=PARAMS, uiso=candidate.uiso, backend="srreal"
    )
    np.testing.assert_allclose(gsrreal, expected, atol=1e-5)
