"""Tests of strained refits (``strain=True`` of propose and mine)."""

import numpy as np
import pytest

from diffpy.deepstruc import mine_library
from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf
from diffpy.deepstruc.libraries import load_library
from diffpy.deepstruc.strain import refit_strained, unstrained_xyz

R = np.arange(3000) / 100
PARAMS = DebyeParameters(qmax=24.0, qdamp=0.04, biso=0.4)
HEADER = {"qmax": PARAMS.qmax, "qmin": PARAMS.qmin, "qdamp": PARAMS.qdamp}
#: A direction of no symmetry, and the uniaxial strain along it.
AXIS = np.array([1.0, 2.0, 0.5]) / np.linalg.norm([1.0, 2.0, 0.5])
STRAIN = 0.04


def _shape(label: str) -> np.ndarray:
    (entry,) = [e for e in load_library("mmnp") if e.label == label]
    return entry.xyz * 2.77


def _strained(xyz: np.ndarray) -> np.ndarray:
    return xyz + STRAIN * np.outer(xyz @ AXIS, AXIS)


def test_mining_with_strain_finds_a_strained_shape():
    truth = _shape("octahedral 5")
    gr = simulate_pdf(_strained(truth), R, params=PARAMS)
    plain = mine_library(gr, element="Pt", **HEADER)
    strained = mine_library(gr, element="Pt", strain=True, **HEADER)
    best = strained[0]
    assert best.label == "octahedral 5"
    assert best.rw < 0.01 < plain[0].rw
    # 4 % along AXIS, less its isotropic part
    principal = np.linalg.eigvalsh(best.strain)
    expected = STRAIN * np.array([-1, -1, 2]) / 3
    assert principal == pytest.approx(expected, abs=2e-3)
    assert strained[0].type_weights["octahedral"] > 0.5


def test_an_unstrained_noisy_pdf_keeps_its_best_candidate_unstrained():
    truth = _shape("decahedral 2-3-1")
    r, g = simulate_pdf(truth, R, params=PARAMS)
    g = g + np.random.default_rng(1).normal(0, 0.02 * np.abs(g).max(), r.size)
    plain = mine_library((r, g), element="Pt", top=4, **HEADER)
    assert plain[0].label == "decahedral 2-3-1"
    refitted = refit_strained(plain)
    # the true shape gains no more than the noise from a strain (a wrong
    # one may gain more: strained, it looks more like the truth)
    assert refitted[0] is plain[0]
    best = mine_library((r, g), element="Pt", strain=True, **HEADER)[0]
    assert best.label == "decahedral 2-3-1"
    assert best.strain is None


def test_a_strain_is_kept_on_a_noisy_pdf_when_it_beats_its_charge():
    # 3 % strain under white noise of 5 % of max G: the strain lowers the
    # chi-square of the 3000 points by about 80, three times its charge
    # of five parameters (27); counted over the 218 independent values
    # only, it would gain 6 and be dropped
    truth = _shape("fcc 3-4-4")
    r, g = simulate_pdf(
        truth + 0.03 * np.outer(truth @ AXIS, AXIS), R, params=PARAMS
    )
    g = g + np.random.default_rng(1).normal(0, 0.05 * np.abs(g).max(), r.size)
    best = mine_library((r, g), element="Pt", strain=True, **HEADER)[0]
    assert best.label == "fcc 3-4-4"
    assert best.strain is not None
    principal = np.linalg.eigvalsh(best.strain)
    assert principal[-1] == pytest.approx(0.02, abs=0.01)


def test_refits_only_the_best_distinct_candidates():
    truth = _shape("fcc 3-4-4")
    gr = simulate_pdf(_strained(truth), R, params=PARAMS)
    plain = mine_library(gr, element="Pt", top=6, **HEADER)
    refitted = refit_strained(plain[::-1], n_refits=2)
    strained = [c for c in refitted if c.strain is not None]
    assert len(strained) == 2
    # the two that fitted best before, in their places
    assert {id(c) for c in refitted} >= {id(c) for c in plain[2:]}
    for new in strained:
        assert new.rw < min(c.rw for c in plain[:2])


def test_rivals_take_places_but_are_not_refitted():
    truth = _shape("fcc 3-4-4")
    gr = simulate_pdf(_strained(truth), R, params=PARAMS)
    plain = mine_library(gr, element="Pt", top=6, **HEADER)
    # the two best places go to the rivals: nothing left to refit
    kept = refit_strained(plain[2:], n_refits=2, rivals=plain[:2])
    assert [id(c) for c in kept] == [id(c) for c in plain[2:]]
    # one place left: the best of the others is refitted
    refitted = refit_strained(plain[1:], n_refits=2, rivals=plain[:1])
    assert [c.strain is not None for c in refitted] == [True] + [False] * 4


def test_unstrained_xyz_undoes_the_strain():
    truth = _shape("icosahedral 3")
    gr = simulate_pdf(_strained(truth), R, params=PARAMS)
    best = mine_library(gr, element="Pt", top=1, strain=True, **HEADER)[0]
    assert best.strain is not None
    plain = unstrained_xyz(best)
    distances = np.sort(np.linalg.norm(plain - plain.mean(0), axis=1))
    ideal = np.sort(np.linalg.norm(truth - truth.mean(0), axis=1))
    assert distances / distances[-1] == pytest.approx(
        ideal / ideal[-1], abs=2e-3
    )
    assert refit_strained([]) == []


def test_unstrained_undoes_a_strain():
    from diffpy.deepstruc.strain import unstrained

    truth = _shape("octahedral 5")
    gr = simulate_pdf(_strained(truth), R, params=PARAMS)
    best = mine_library(gr, element="Pt", strain=True, **HEADER)[0]
    assert best.strain is not None
    plain = unstrained(best)
    assert plain.strain is None and unstrained(plain) is plain
    # the octahedron without a strain: its pair distances in proportion
    assert plain.rw > 0.05 > best.rw
    pairs = [
        np.linalg.norm(xyz[:, None] - xyz, axis=-1)[
            np.triu_indices(len(xyz), 1)
        ]
        for xyz in (plain.xyz, truth)
    ]
    ratio = pairs[0] / pairs[1]
    assert ratio == pytest.approx(np.full(ratio.size, ratio.mean()), rel=1e-6)
