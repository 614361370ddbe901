"""Tests of the diffpy.structure_solvers entry point."""

import entrypoints

from diffpy.deepstruc.candidate import Candidate
from diffpy.deepstruc.clusters import build_cluster
from diffpy.deepstruc.debye import DebyeParameters, r_grid, simulate_pdf
from diffpy.deepstruc.solver import DeepStrucSolver, solver


def test_entry_point_loads_the_solver():
    group = entrypoints.get_group_named("diffpy.structure_solvers")
    assert group["deepstruc"].load() is solver
    assert isinstance(solver, DeepStrucSolver)
    assert solver.name == "deepstruc"
    assert solver.description and "\n" not in solver.description


def test_propose_ranks_candidates_by_rw():
    xyz = build_cluster("fcc", (2, 3, 2), 2.77)
    params = DebyeParameters(qmin=0.7, qmax=25.0, qdamp=0.04)
    r, g = simulate_pdf(xyz, r_grid(0.0, 30.0, 0.01), params=params)
    candidates = solver.propose(
        (r, g),
        top=2,
        n_samples=50,
        qmax=25,
        qdamp=0.04,
        qmin=0.7,
        element="Pt",
    )
    assert 1 <= len(candidates) <= 2
    assert all(isinstance(c, Candidate) for c in candidates)
    assert [c.rank for c in candidates] == list(range(1, len(candidates) + 1))
    rws = [c.rw for c in candidates]
    assert rws == sorted(rws)
    assert candidates[0].element == "Pt"
