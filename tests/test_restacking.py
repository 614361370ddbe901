"""Tests of the layer moves (restacking.py) and of stacking_layers."""

import math

import numpy as np
import pytest
from ase.cluster import Icosahedron
from scipy.spatial.transform import Rotation

from diffpy.deepstruc.candidate import Candidate
from diffpy.deepstruc.debye import DebyeParameters, r_grid, simulate_pdf
from diffpy.deepstruc.fitting import fit_cluster
from diffpy.deepstruc.restacking import restack, restack_best, restackings
from diffpy.deepstruc.stacking import (
    build_particle,
    canonical_sequence,
    stacking_layers,
    stacking_sequence,
    stacking_sequences,
)

PT_D = 2.77
PARAMS = DebyeParameters(qmax=25.0, qdamp=0.04)
R = r_grid(1.5, 30.0, 0.01)


def rotated(xyz, seed=0):
    """``xyz`` (unit d) at the Pt d, rotated, shifted and shuffled."""
    rng = np.random.default_rng(seed)
    xyz = Rotation.random(random_state=seed).apply(np.array(xyz)) * PT_D
    return xyz[rng.permutation(len(xyz))] + 3.0


def fitted(xyz, g, source="prior"):
    """A candidate of ``xyz`` fitted to ``g``."""
    fit = fit_cluster(xyz, R, g, PARAMS)
    return Candidate(
        xyz=(xyz - xyz.mean(0)) * fit.zoom,
        element="Pt",
        rw=fit.rw,
        scale=fit.scale,
        zoom=fit.zoom,
        uiso=fit.uiso,
        latent=np.zeros(2),
        sigma=0.0,
        source=source,
        r=R,
        gobs=g,
        gcalc=fit.gcalc,
        params=PARAMS,
    )


@pytest.mark.parametrize("sequence", ["ABCBA", "ABABACBA", "ABCBABCACB"])
def test_stacking_layers_of_a_rotated_particle(sequence):
    xyz = rotated(build_particle(sequence, "disc-9"))
    layers = stacking_layers(xyz)
    assert layers.stacking.abc == canonical_sequence(sequence)
    assert layers.registry[0] == 0
    assert len(layers.registry) == len(sequence)
    # one registry step is a in-plane shift of d / sqrt(3)
    assert np.linalg.norm(layers.step) == pytest.approx(PT_D / math.sqrt(3))
    assert abs(layers.step @ np.array(layers.stacking.axis)) < 1e-9
    # each layer holds atoms at one height along the axis
    heights = xyz @ np.array(layers.stacking.axis)
    for k in range(len(sequence)):
        assert np.ptp(heights[layers.layer == k]) < 1e-6


@pytest.mark.parametrize("n_layers", [3, 5, 7])
def test_restackings_reach_every_sequence(n_layers):
    xyz = rotated(build_particle(("ABC" * 4)[:n_layers], "disc-9"))
    clusters = restackings(xyz)
    assert len(clusters) == 2 ** (n_layers - 1)
    found = {stacking_sequence(c).abc for c in clusters}
    # fcc stacks may be read along another {111} axis with fewer layers
    fcc = canonical_sequence(("ABC" * 4)[:n_layers])
    assert set(stacking_sequences(n_layers)) - {fcc} <= found
    # the unchanged cluster is among them, atoms in the same order
    assert any(np.allclose(c, xyz) for c in clusters)
    assert all(c.shape == xyz.shape for c in clusters)


def test_restackings_of_a_cluster_that_is_not_close_packed():
    assert restackings(Icosahedron("Pt", 3).positions) == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_restack_finds_a_sequence_from_a_wrong_start(seed):
    # the truth: the hcp disc, rotated, with its layers moved on to a
    # faulted sequence; the start: that hcp disc, which fits poorly
    hcp = rotated(build_particle("ABABABABAB", "disc-9"), seed)
    truth = next(
        c for c in restackings(hcp) if stacking_sequence(c).abc == "ABABACBABC"
    )
    _, g = simulate_pdf(truth, R, params=PARAMS)
    start = fitted(hcp, g)
    assert start.rw > 0.2
    found = restack(start, R, g, PARAMS)
    assert len(found) == 3
    assert [c.rw for c in found] == sorted(c.rw for c in found)
    best = found[0]
    assert best.stacking == stacking_sequence(truth)
    assert best.rw < 0.005
    assert best.source == "restacked" and best.label == ""
    assert np.isnan(best.latent).all()
    # distinct stackings, none the start's
    stackings = [c.stacking for c in found]
    assert len(set(stackings)) == 3 and start.stacking not in stackings
    # the same call gives the same result
    again = restack(start, R, g, PARAMS)
    assert [c.rw for c in again] == [c.rw for c in found]


def test_restack_of_a_generated_particle_from_another_outline_layer():
    # generated particles cut every layer from the outline at its own
    # registry, and a layer can move on to the next registry in three
    # directions (one is taken), so the moved layers only approximate
    # the truth's: it is among the best, with Rw < 0.03, but the data may
    # prefer a related sequence
    truth = build_particle("ABABACBABC", "disc-9") * PT_D
    _, g = simulate_pdf(truth, R, params=PARAMS)
    start = fitted(build_particle("ABABABABAB", "disc-9") * PT_D, g)
    found = restack(start, R, g, PARAMS)
    assert found[0].rw < 0.03 < start.rw
    assert stacking_sequence(truth) in [c.stacking for c in found]


def test_restack_best_skips_clusters_that_are_not_close_packed():
    truth = build_particle("ABCBA", "disc-9") * PT_D
    _, g = simulate_pdf(truth, R, params=PARAMS)
    icosahedron = fitted(Icosahedron("Pt", 3).positions, g)
    assert restack_best([icosahedron], R, g, PARAMS) == []
    packed = fitted(rotated(build_particle("ABABA", "disc-9")), g)
    found = restack_best([icosahedron, packed], R, g, PARAMS, n_starts=1)
    assert found and found[0].stacking == stacking_sequence(truth)
