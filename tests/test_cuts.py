"""Tests of the cut scan: lattice particles cut about a centre."""

import numpy as np
import pytest
from ase.cluster import SimpleCubic
from scipy.spatial.distance import pdist

from diffpy.deepstruc.cuts import CUT_FAMILIES, cut_scan
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
