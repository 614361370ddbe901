"""Tests of the prism search (layers cut from one in-plane outline)."""

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf
from diffpy.deepstruc.prisms import _resized, _sequences, prism_search
from diffpy.deepstruc.stacking import (
    build_particle,
    canonical_sequence,
    disc,
    polygon,
    stacking_sequence,
)

D = 2.77  # Pt nearest-neighbour distance, Å
PARAMS = DebyeParameters(qmax=24.0, qdamp=0.03, biso=0.5)
R = np.arange(1.5, 30.0, 0.01)


def _same_shape(a, b):
    """Equal sorted pair distances."""
    da, db = np.sort(pdist(a)), np.sort(pdist(b))
    return len(a) == len(b) and np.allclose(da / da[0], db / db[0], atol=0.02)


def _turned(xyz, seed=2):
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    turned = Rotation.random(random_state=seed).apply(xyz) + rng.normal(
        0, 5, 3
    )
    return turned[rng.permutation(len(xyz))]


def _data(xyz, noise=0.0):
    g = 1.3 * simulate_pdf(xyz, R, params=PARAMS)[1]
    return g + np.random.default_rng(1).normal(0, noise, g.shape)


@pytest.mark.parametrize(
    "sequence, outline, start_sequence, start_outline, noise",
    [
        # two layers fewer and a wider outline than the start, and
        # another sequence
        ("ABABACA", polygon(4), "ABCABCABC", polygon(3), 0.0),
        # a truncated triangle of ten layers from a hexagon of six, on
        # noisy data
        ("ABACBACABC", polygon(4, 5), "ABCACB", polygon(6, 6), 0.01),
        # a near-round outline (the 12-gon of the disc's sites)
        ("ABCBA", disc(7), "ABABA", disc(4), 0.0),
    ],
)
def test_prism_search_finds_layer_count_outline_and_sequence(
    sequence, outline, start_sequence, start_outline, noise
):
    truth = build_particle(sequence, outline) * D
    start = _turned(build_particle(start_sequence, start_outline) * D * 1.02)
    result = prism_search(start, R, _data(truth, noise), PARAMS)
    assert _same_shape(result.xyz, truth)
    assert canonical_sequence(result.sequence) == canonical_sequence(sequence)
    assert stacking_sequence(result.xyz).abc == canonical_sequence(sequence)
    assert result.rw < 0.01 + 2 * noise
    assert result.steps > 0 and result.scanned > 100


def test_prism_search_is_deterministic_and_keeps_max_atoms():
    truth = build_particle("ABCB", polygon(6, 6)) * D
    start = _turned(build_particle("ABC", polygon(5, 5)) * D)
    g = _data(truth)
    first = prism_search(start, R, g, PARAMS, fit_qdamp=True)
    again = prism_search(start, R, g, PARAMS, fit_qdamp=True)
    assert np.array_equal(first.xyz, again.xyz) and first.rw == again.rw
    assert first.params.qdamp == again.params.qdamp
    assert len(first.outline) == 12
    # a hexagon: six edges bind, the other six are released
    assert sum(np.isfinite(first.outline)) == 6
    small = prism_search(start, R, g, PARAMS, max_atoms=len(truth) - 10)
    assert small.n_atoms <= len(truth) - 10


def test_prism_search_needs_a_close_packed_start():
    from ase.cluster import Icosahedron

    xyz = Icosahedron("Pt", 3).get_positions()
    assert prism_search(xyz, R, _data(xyz), PARAMS) is None


@pytest.mark.parametrize("n_layers", [3, 5, 10])
def test_sequences_are_every_stacking_of_n_layers(n_layers):
    sequences = list(_sequences(n_layers))
    assert len(sequences) == 3 * 2 ** (n_layers - 1)
    assert len({tuple(s) for s in sequences}) == len(sequences)
    assert all(np.all(np.diff(s) % 3 != 0) for s in sequences)


def test_resized_sequences_cut_or_continue_the_stacking():
    hcp = [0, 1, 0, 1, 0]
    assert _resized(hcp, 3) == [[1, 0, 1], [1, 0, 1]]
    fcc, hcp_like = _resized(hcp, 7)
    assert fcc == [2, 0, 1, 0, 1, 0, 2] and hcp_like == [1, 0, 1, 0, 1, 0, 1]
    for sequence in (fcc, hcp_like):
        assert np.all(np.diff(sequence) % 3 != 0)


def test_each_prism_has_one_outline():
    from diffpy.deepstruc.prisms import _Lattice

    lattice = _Lattice(8.0)
    sequence = [0, 1, 0, 2]
    # a triangle: three edges bind, the others are released
    loose = lattice.top.copy()
    loose[[3, 7, 11]] = lattice.index(np.full(12, 1.2))[[3, 7, 11]]
    # the same sites, every edge at their extent
    tight = lattice.extent(sequence, loose)
    assert not np.array_equal(tight, loose)
    same = lattice.canonical(sequence, tight)
    assert same == lattice.canonical(sequence, loose)
    assert np.array_equal(
        lattice.build(sequence, same), lattice.build(sequence, loose)
    )
    assert sum(k < top for k, top in zip(same, lattice.top)) == 3
    # an edge one row in from the extent cuts the corners
    cut = tight.copy()
    cut[1] -= 1
    assert len(lattice.build(sequence, cut)) < len(
        lattice.build(sequence, loose)
    )
    assert lattice.canonical(sequence, cut) != same
