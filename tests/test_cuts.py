"""Tests of the cut scan: lattice particles cut about a centre."""

import itertools

import numpy as np
import pytest
from ase.cluster import SimpleCubic
from scipy.spatial.distance import pdist

from diffpy.deepstruc import cuts
from diffpy.deepstruc.clusters import build_cluster
from diffpy.deepstruc.cuts import CUT_FAMILIES, _hcp_blocks, cut_scan
from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf

D = 2.77
PARAMS = DebyeParameters(qmax=24.0, qdamp=0.03, biso=0.5)
R = np.arange(1.5, 30.0, 0.01)
SURFACES = [(1, 0, 0), (1, 1, 0), (1, 1, 1)]


def _same_shape(a, b):
    da, db = np.sort(pdist(a)), np.sort(pdist(b))
    return len(a) == len(b) and np.allclose(da / da[0], db / db[0], atol=0.02)


def _block(layers, centre=None):
    return SimpleCubic(
        "Pt", SURFACES, list(layers), latticeconstant=D, center=centre
    ).get_positions()


@pytest.fixture(scope="module")
def centred():
    """An sc block centred in a cube of sites, its data, and an
    atom-centred start that a site search does not grow into it."""
    truth = _block((3, 3, 4), [0.5, 0.5, 0.5])
    start = _block((2, 3, 3))
    g = 1.3 * simulate_pdf(truth, R, params=PARAMS)[1]
    return truth, start, g


def test_scan_finds_a_block_cut_about_another_centre(centred):
    truth, start, g = centred
    assert (len(start), len(truth)) == (57, 80)
    cut = cut_scan(start * 1.01, "sc", R, g, PARAMS)
    assert _same_shape(cut.xyz, truth)
    assert cut.rw < 1e-3
    assert cut.n_atoms == 80
    # the centre of a cube of sites, half a site from a site each way
    assert np.allclose(np.abs(cut.centre) % 1, 0.5, atol=0.05)
    assert cut.scanned > 1
    again = cut_scan(start * 1.01, "sc", R, g, PARAMS)
    assert np.array_equal(again.xyz, cut.xyz)


def test_scan_keeps_within_max_atoms(centred):
    truth, start, g = centred
    cut = cut_scan(start, "sc", R, g, PARAMS, max_atoms=70)
    assert cut.n_atoms <= 70


def test_scan_refuses_other_families_and_off_site_starts(centred):
    _, start, g = centred
    assert set(CUT_FAMILIES) == {"fcc", "bcc", "sc", "hcp"}
    with pytest.raises(ValueError, match="family among"):
        cut_scan(start, "icosahedral", R, g, PARAMS)
    scattered = np.random.default_rng(0).uniform(0, 12, (30, 3))
    assert cut_scan(scattered, "sc", R, g, PARAMS) is None


def _hcp(size):
    """An ASE hcp block of whole cells (``HexagonalClosedPacked``)."""
    return np.array(build_cluster("hcp", size, D))


def test_hcp_blocks_are_every_block_of_whole_cells():
    # every ASE block with 24-60 atoms, in each order of its sizes, is
    # one of the scan's blocks
    blocks = _hcp_blocks(np.zeros(3), (24, 60))
    assert all(24 <= len(b) <= 60 for b in blocks)
    for size in itertools.product(range(1, 7), repeat=3):
        if 24 <= 2 * np.prod(size) <= 60:
            truth = _hcp(size) / D
            assert any(_same_shape(b, truth) for b in blocks), size


def test_scan_finds_an_hcp_block_of_other_cell_counts():
    # 4 x 2 x 3 cells from the library's order 2 x 3 x 4: the facet cuts
    # alone cannot make it (each orbit of facets at one distance)
    truth, start = _hcp((4, 2, 3)), _hcp((2, 3, 4))
    g = simulate_pdf(truth, R, params=PARAMS)[1]
    cut = cut_scan(start, "hcp", R, g, PARAMS)
    assert _same_shape(cut.xyz, truth)
    assert cut.rw < 1e-3


def test_without_blocks_the_hcp_block_is_missed(monkeypatch):
    truth, start = _hcp((4, 2, 3)), _hcp((2, 3, 4))
    g = simulate_pdf(truth, R, params=PARAMS)[1]
    monkeypatch.setattr(cuts, "_hcp_blocks", lambda middle, counts: [])
    cut = cut_scan(start, "hcp", R, g, PARAMS)
    assert cut is None or not _same_shape(cut.xyz, truth)
