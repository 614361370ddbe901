"""Snapping: the training library's shapes ranked with the decodes."""

import warnings

import numpy as np
import pytest

from diffpy.deepstruc import propose_structures, simulate_pdf
from diffpy.deepstruc.clusters import library_shapes
from diffpy.deepstruc.debye import DebyeParameters
from diffpy.deepstruc.mining import mine_library

pytest.importorskip("onnxruntime")


def shape(cluster_type, size):
    return next(
        s
        for s in library_shapes()
        if s.type == cluster_type and tuple(s.size) == size
    )


@pytest.fixture(scope="module")
def hcp_1510():
    """hcp 1-5-10 (100 atoms) at d = 2.33 Å, Qmax 22, Biso 0.5 Å²."""
    truth = shape("hcp", (1, 5, 10))
    params = DebyeParameters(qmax=22.0, biso=0.5)
    r, g = simulate_pdf(truth.xyz * 2.33, params=params)
    keywords = dict(top=3, qmax=22.0, qdamp=0.04, element="Pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        decodes = propose_structures((r, g), snap=False, seed=0, **keywords)
        snapped = propose_structures((r, g), seed=0, **keywords)
        mined = mine_library((r, g), **keywords)
    return truth, decodes, snapped, mined


def test_snapping_recovers_a_shape_the_decodes_miss(hcp_1510):
    # measured: the decodes alone give 90 atoms
    truth, decodes, snapped, _ = hcp_1510
    assert decodes[0].n_atoms != truth.n_atoms
    best = snapped[0]
    assert (best.source, best.label) == ("library", "hcp 1-5-10")
    assert best.n_atoms == truth.n_atoms and best.rw < 0.01
    assert best.rw < decodes[0].rw


def test_snapped_candidates_are_never_worse_than_mining(hcp_1510):
    _, _, snapped, mined = hcp_1510
    assert snapped[0].rw <= mined[0].rw + 1e-9
    assert snapped[0].label == mined[0].label


def test_snapped_library_candidates_sit_on_the_latent_map(hcp_1510):
    _, _, snapped, _ = hcp_1510
    library = [c for c in snapped if c.source == "library"]
    assert library
    for c in library:
        assert c.latent.shape == (2,)
        assert np.isnan(c.sigma) == np.isnan(c.latent).any()
