"""Near-duplicates, plausibility flags, the ranking and the poor-fit
warning."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from diffpy.deepstruc.candidate import Candidate
from diffpy.deepstruc.clusters import library_shapes
from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf
from diffpy.deepstruc.fitting import EQUAL_RW, STRAIN_PARAMETERS, bic_weights
from diffpy.deepstruc.plausibility import (
    DUPLICATE_RMSD,
    FLAGS,
    POOR_RW,
    FitQualityWarning,
    distinct_geometries,
    fitted_parameters,
    geometry_flags,
    mean_coordination,
    plausibility_flags,
    rank_candidates,
    ranking_order,
    warn_if_poor_fit,
)


def shape(cluster_type, n_atoms):
    return next(
        s.xyz
        for s in library_shapes()
        if s.type == cluster_type and s.n_atoms == n_atoms
    )


def fake(xyz, scale=1.0, rmsd=0.0, rw=0.1):
    """What the checks read of a candidate."""
    return SimpleNamespace(
        xyz=xyz,
        scale=scale,
        rw=rw,
        nearest_reference=SimpleNamespace(rmsd=rmsd),
    )


def test_near_duplicates_are_merged_and_distinct_shapes_kept():
    rng = np.random.default_rng(1)
    fcc = shape("fcc", 87) * 2.77
    jitter = 0.3 * DUPLICATE_RMSD * 2.77 / np.sqrt(3)
    copy = fcc + jitter * rng.standard_normal(fcc.shape)
    far = fcc + 0.5 * 2.77 * rng.standard_normal(fcc.shape)
    deca = shape("decahedral", 13) * 2.77
    shuffled = rng.permutation(copy)
    shapes = [fcc, copy, deca, far, shuffled]
    assert distinct_geometries(shapes) == [0, 2, 3]


def test_plausible_library_cluster_has_no_flags():
    candidates = [fake(shape(t, n) * 2.7) for t, n in [("fcc", 87)] * 3]
    assert plausibility_flags(candidates) == [(), (), ()]


def test_chain_and_isolated_atom_are_flagged():
    chain = np.arange(10)[:, None] * [2.7, 0, 0]
    assert "low_coordination" in geometry_flags(chain)
    lonely = np.vstack([shape("icosahedral", 55) * 2.7, [[30.0, 0, 0]]])
    assert geometry_flags(lonely) == ["isolated_atoms"]


def test_scale_outlier_and_unlike_reference_are_flagged():
    compact = shape("fcc", 87) * 2.7
    candidates = [
        fake(compact, scale=0.9),
        fake(compact, scale=0.95),
        fake(compact, scale=4.2),
        fake(compact, scale=1.0, rmsd=2.07),
    ]
    flags = plausibility_flags(candidates)
    assert flags == [(), (), ("scale_outlier",), ("unlike_reference",)]
    assert all(flag in FLAGS for entry in flags for flag in entry)


def test_poor_best_fit_warns_with_advice():
    with pytest.warns(FitQualityWarning, match="larger than the model") as w:
        warn_if_poor_fit([fake(None, rw=POOR_RW + 0.05)])
    message = str(w[0].message)
    assert "deepstruc solve --max-atoms 2000" in message
    assert "deepstruc mine --library large" in message


def test_good_best_fit_does_not_warn(recwarn):
    warn_if_poor_fit([fake(None, rw=POOR_RW - 0.05), fake(None, rw=0.9)])
    warn_if_poor_fit([])
    assert not [w for w in recwarn if w.category is FitQualityWarning]


NOISE = 0.02
PARAMS = DebyeParameters(qmax=25.0)


@pytest.fixture(scope="module")
def noisy_pdf():
    """r, G of a 55-atom icosahedron with white noise of NOISE max G."""
    r = np.arange(2.0, 30.0, 0.01)
    _, g = simulate_pdf(shape("icosahedral", 55) * 2.77, r, params=PARAMS)
    sigma = NOISE * np.abs(g).max()
    return r, g + sigma * np.random.default_rng(0).standard_normal(r.size)


def candidate(pdf, rw, source="library", strain=None):
    r, g = pdf
    return Candidate(
        xyz=shape("icosahedral", 55) * 2.77,
        element="Pt",
        rw=rw,
        scale=1.0,
        zoom=1.0,
        uiso=0.005,
        latent=np.full(2, math.nan) if source == "library" else np.zeros(2),
        sigma=0.0,
        source=source,
        r=r,
        gobs=g,
        gcalc=g,
        params=PARAMS,
        strain=strain,
    )


def rw_better_by(pdf, rw, parameters):
    """The Rw that lowers the chi-square of ``rw`` by ``parameters`` times
    the cost of one parameter (the noise given as its true level)."""
    r, g = pdf
    weight, penalty = bic_weights(r, g, PARAMS.qmax, NOISE * np.abs(g).max())
    return math.sqrt(rw**2 - parameters * penalty / weight)


def test_decodes_and_strains_are_charged_their_parameters(noisy_pdf):
    strain = np.diag([0.01, -0.005, -0.005])
    assert fitted_parameters(candidate(noisy_pdf, 0.1)) == 0
    assert fitted_parameters(candidate(noisy_pdf, 0.1, "prior")) == 2
    assert fitted_parameters(candidate(noisy_pdf, 0.1, "refined")) == 2
    assert fitted_parameters(candidate(noisy_pdf, 0.1, "solved")) == 0
    strained = candidate(noisy_pdf, 0.1, "search", strain)
    assert fitted_parameters(strained) == 2 + STRAIN_PARAMETERS


@pytest.mark.parametrize("noise", ["given", "estimated"])
def test_a_decode_ranks_first_only_when_it_beats_its_charge(noisy_pdf, noise):
    sigma = NOISE * np.abs(noisy_pdf[1]).max() if noise == "given" else None
    shape_ = candidate(noisy_pdf, 0.2)
    # two parameters cost 2 penalties: gains of 1 and 3 penalties
    close = candidate(noisy_pdf, rw_better_by(noisy_pdf, 0.2, 1), "prior")
    clear = candidate(noisy_pdf, rw_better_by(noisy_pdf, 0.2, 3), "prior")
    assert close.rw < shape_.rw
    assert ranking_order([close, shape_], sigma) == [1, 0]
    assert ranking_order([shape_, clear], sigma) == [1, 0]
    ranked = rank_candidates([close, clear, shape_], 2, sigma)
    assert [c.rank for c in ranked] == [1, 2]
    assert ranked == [clear, shape_]


def test_a_strained_candidate_pays_for_its_strain(noisy_pdf):
    strain = np.diag([0.01, -0.005, -0.005])
    shape_ = candidate(noisy_pdf, 0.2)
    gain = STRAIN_PARAMETERS - 1
    weak = candidate(noisy_pdf, rw_better_by(noisy_pdf, 0.2, gain))
    weak.strain = strain
    assert ranking_order([weak, shape_]) == [1, 0]
    weak.strain = None
    assert ranking_order([weak, shape_]) == [0, 1]


def test_without_noise_the_ranking_is_by_rw(noisy_pdf):
    r, g = noisy_pdf
    _, clean = simulate_pdf(shape("icosahedral", 55) * 2.77, r, params=PARAMS)
    pdf = (r, clean)
    shape_ = candidate(pdf, 0.0101)
    decode = candidate(pdf, 0.0100, "prior")
    assert ranking_order([shape_, decode]) == [1, 0]
    assert ranking_order([]) == []


def test_of_equal_fits_the_more_compact_structure_ranks_first(noisy_pdf):
    # the 6-atom octahedron and the 5-atom square pyramid (the octahedron
    # less one vertex) have the same G(r) up to the scale
    octahedron = np.array(
        [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]
    ) * (2.77 / math.sqrt(2))
    pyramid = candidate(noisy_pdf, 0.3)
    pyramid.xyz = octahedron[:5]
    full = candidate(noisy_pdf, 0.3 + EQUAL_RW / 2)
    full.xyz = octahedron
    assert mean_coordination(full.xyz) == 4.0
    assert mean_coordination(pyramid.xyz) == 3.2
    assert ranking_order([pyramid, full]) == [1, 0]
    # a fit better by more than the fits' precision still wins
    full.rw = 0.3 + 2 * EQUAL_RW
    assert ranking_order([pyramid, full]) == [0, 1]
