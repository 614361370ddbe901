"""The shipped model recovers library clusters it was not shown as such.

Two clusters of each of the seven types, the shapes at one and two thirds
of the type's range of atom counts, each scaled to a nearest-neighbour
parameter ``d`` half-way between two of the library's 19 values (so at
least 0.01 Å from all of them) and simulated with other instrument
parameters than the library's clean PDFs (Qmax 22 instead of 25 Å⁻¹,
Biso 0.5 instead of 0.3 Å², both inside the training augmentation).
`propose_structures` runs with its defaults (1000 samples, latent search,
seed 0) and its top candidate is compared with the truth.

Measured with the mmnp model, whose ``propose`` ranks the best-fitting
shapes of its training library with the decodes (``snap=True``, the
default): the top candidate has the true type, the true shape and
exactly the true atom count 14 times out of 14, with the true positions.
The decodes alone (``snap=False``) got the count 11 times (sc 2-4-6 with
125 atoms came out with 122, hcp 3-3-3 with 54 with 56, hcp 1-6-10 with
120 with 84).  The thresholds below leave a margin of one case.
"""

import numpy as np
import pytest

from diffpy.deepstruc import propose_structures, simulate_pdf
from diffpy.deepstruc.clusters import (
    CLUSTER_TYPES,
    METALLIC_RADII,
    library_shapes,
)
from diffpy.deepstruc.debye import DebyeParameters
from diffpy.deepstruc.matching import matched_errors

#: Instrument parameters of the simulated data (qdamp, qmin: defaults).
INSTRUMENT = DebyeParameters(qmax=22.0, biso=0.5)
#: Positions, as fractions of a type's shapes sorted by atom count.
SIZE_QUANTILES = (1 / 3, 2 / 3)


def library_distances():
    """The library's nearest-neighbour parameters d = 2 x radius (Å)."""
    return np.unique([2 * radius for radius in METALLIC_RADII.values()])


def off_library_distances(n):
    """``n`` midpoints of the gaps between library d, spread over them."""
    d = library_distances()
    midpoints = (d[:-1] + d[1:]) / 2
    return midpoints[np.linspace(0, midpoints.size - 1, n).round().astype(int)]


def recovery_cases():
    """(type, size, n_atoms, d, xyz) of every cluster to recover."""
    shapes = library_shapes()
    picked = []
    for cluster_type in CLUSTER_TYPES:
        of_type = sorted(
            (s for s in shapes if s.type == cluster_type),
            key=lambda s: (s.n_atoms, s.size),
        )
        picked += [of_type[int(q * len(of_type))] for q in SIZE_QUANTILES]
    distances = off_library_distances(len(picked))
    return [
        (s.type, s.size, s.n_atoms, d, s.xyz * d)
        for s, d in zip(picked, distances)
    ]


@pytest.fixture(scope="module")
def recovered():
    """Each case of `recovery_cases` with its top candidate."""
    results = []
    for case in recovery_cases():
        r, g = simulate_pdf(case[4], params=INSTRUMENT)
        best = propose_structures(
            (r, g),
            top=1,
            seed=0,
            qmax=INSTRUMENT.qmax,
            qdamp=INSTRUMENT.qdamp,
            qmin=INSTRUMENT.qmin,
            element="Pt",
        )[0]
        results.append((case, best))
    return results


def describe(cases):
    """One line per (case, candidate) pair, for the failure message."""
    return "; ".join(
        f"{t} {'-'.join(map(str, size))} ({n} atoms, d={d:.3f} Å) -> "
        f"{best.n_atoms} atoms, nearest {best.nearest_reference}, "
        f"Rw={best.rw:.3f}"
        for (t, size, n, d, _), best in cases
    )


def test_cases_are_off_the_library():
    cases = recovery_cases()
    assert library_distances().size == 19
    assert len(cases) == 2 * len(CLUSTER_TYPES)
    assert {case[0] for case in cases} == set(CLUSTER_TYPES)
    d = np.array([case[3] for case in cases])
    assert np.unique(d).size == d.size
    assert np.abs(d[:, None] - library_distances()).min() >= 0.01 - 1e-12


def test_top_candidate_has_the_true_type(recovered):
    # measured: 14 of 14
    wrong = [
        (case, best)
        for case, best in recovered
        if best.nearest_reference.type != case[0]
    ]
    assert not wrong, describe(wrong)


def test_top_candidate_is_nearest_the_true_shape(recovered):
    # measured: 14 of 14
    wrong = [
        (case, best)
        for case, best in recovered
        if best.nearest_reference.size != case[1]
    ]
    assert len(wrong) <= 1, describe(wrong)


def test_top_candidate_has_the_true_atom_count(recovered):
    # measured: 14 of 14; the issue asks for 8 of 10
    wrong = [
        (case, best) for case, best in recovered if best.n_atoms != case[2]
    ]
    assert len(wrong) <= 1, describe(wrong)


def test_recovered_positions(recovered):
    # the candidates with the true atom count, expect the true positions
    # to 0.1 Å per atom on average
    errors = [
        matched_errors(best.xyz, case[4])[0]
        for case, best in recovered
        if best.n_atoms == case[2]
    ]
    assert len(errors) >= 13
    assert max(errors) < 0.1
