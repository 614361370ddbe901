"""Tests of solve_structure, deepstruc solve and the solver's solve."""

import csv
import json

import numpy as np
import pytest

from diffpy.deepstruc import solve_structure
from diffpy.deepstruc.cli import main
from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf
from diffpy.deepstruc.solver import solver

A_FCC = 2.77 * np.sqrt(2)


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """A .gr file of a 52-atom icosahedron that no library holds."""
    from ase.cluster import Icosahedron

    full = Icosahedron("Pt", 3, latticeconstant=A_FCC).get_positions()
    radius = np.linalg.norm(full - full.mean(0), axis=1)
    truth = full[np.argsort(radius)[:-3]]  # three vertices gone
    params = DebyeParameters(qmax=24.0, qdamp=0.04, biso=0.4)
    r, g = simulate_pdf(truth, params=params)
    path = tmp_path_factory.mktemp("solve") / "ico52.gr"
    header = f"# qmax = 24.0\n# qmin = {params.qmin}\n# composition = Pt\n"
    path.write_text(header)
    with open(path, "a") as stream:
        np.savetxt(stream, np.column_stack([r, g]))
    return path, truth


def test_solve_finds_a_cluster_outside_the_library(outside):
    path, truth = outside
    first = solve_structure(path, n_starts=1, top=3)
    best = first[0]
    assert best.source == "solved"
    assert best.n_atoms == len(truth)
    assert best.type == "icosahedral"
    assert best.path[0].move == "start"
    assert best.path[0].n_atoms - best.n_atoms == 3
    proposals = [c for c in first if c.source != "solved"]
    assert all(best.rw < c.rw for c in proposals)
    assert best.rw < 0.01
    assert [c.rank for c in first] == list(range(1, len(first) + 1))
    # the same seed gives the same result
    again = solve_structure(path, n_starts=1, top=3)
    assert np.array_equal(again[0].xyz, best.xyz)
    assert again[0].path == best.path


def test_solve_does_not_depend_on_the_threads(monkeypatch):
    # a search that settles (at the exact structure of clean data) ends
    # those of the later starts, which are dropped, so that the threads'
    # timing cannot change the result
    from ase.cluster import Decahedron

    truth = Decahedron("Pt", 2, 3, 1, latticeconstant=A_FCC).get_positions()
    params = DebyeParameters(qmax=24.0, qdamp=0.04, biso=0.4)
    gr = simulate_pdf(truth, params=params)
    header = {"qmax": 24.0, "qmin": params.qmin, "qdamp": 0.04}
    found = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("OMP_NUM_THREADS", threads)
        found[threads] = solve_structure(gr, top=5, element="Pt", **header)
    one, two = found["1"], found["2"]
    assert one[0].n_atoms == len(truth) and one[0].rw < 1e-4
    assert [c.source for c in one].count("solved") == 1
    assert [(c.n_atoms, c.rw) for c in one] == [(c.n_atoms, c.rw) for c in two]
    assert all(np.array_equal(a.xyz, b.xyz) for a, b in zip(one, two))


def test_solve_refuses_bad_arguments(outside):
    path, _ = outside
    for bad in ({"top": 0}, {"n_starts": 0}, {"max_atoms": 0}):
        with pytest.raises(ValueError, match="Please give top, n_starts"):
            solve_structure(path, **bad)


def test_cli_solve_writes_the_search_path(outside, tmp_path):
    from ase.io import read

    from diffpy.structure import loadStructure

    path, truth = outside
    output = tmp_path / "solved"
    args = ["solve", str(path), "-o", str(output), "--starts", "1"]
    assert main([*args, "--top", "2"]) == 0
    with open(output / "candidates.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert rows[0]["source"] == "solved"
    assert int(rows[0]["n_atoms"]) == len(truth)
    with open(output / "search_path.csv", newline="") as stream:
        steps = list(csv.DictReader(stream))
    assert steps[0]["move"] == "start" and steps[0]["rank"] == "1"
    assert int(steps[-1]["n_atoms"]) == len(truth)
    removed = sum(int(s["removed"]) - int(s["added"]) for s in steps)
    assert removed == 3
    assert len(read(output / "candidate_01.xyz")) == len(truth)
    assert len(loadStructure(str(output / "candidate_01.cif"))) == len(truth)
    run = json.loads((output / "run.json").read_text())
    assert run["command"].startswith("deepstruc solve ")
    assert run["settings"]["n_starts"] == 1


@pytest.fixture(scope="module")
def strained(tmp_path_factory):
    """A .gr file of the icosahedron of ``outside`` stretched by 3 % along
    one axis; the principal strains less the zoom."""
    from ase.cluster import Icosahedron

    full = Icosahedron("Pt", 3, latticeconstant=A_FCC).get_positions()
    full -= full.mean(0)
    radius = np.linalg.norm(full, axis=1)
    truth = full[np.argsort(radius)[:-3]]  # three vertices gone
    n = np.array([1.0, 2.0, 0.5]) / np.linalg.norm([1.0, 2.0, 0.5])
    stretched = truth + 0.03 * np.outer(truth @ n, n)
    params = DebyeParameters(qmax=24.0, qdamp=0.04, biso=0.4)
    r, g = simulate_pdf(stretched, params=params)
    path = tmp_path_factory.mktemp("strained") / "strained.gr"
    header = f"# qmax = 24.0\n# qmin = {params.qmin}\n# composition = Pt\n"
    path.write_text(header)
    with open(path, "a") as stream:
        np.savetxt(stream, np.column_stack([r, g]))
    return path, truth, [-0.01, -0.01, 0.02]


@pytest.mark.parametrize(
    "option, setting", [(["--strain", "auto"], "auto"), (["--strain"], True)]
)
def test_solve_with_strain_finds_a_strained_cluster(
    strained, tmp_path, option, setting
):
    # with "auto" a start that kept a strain is searched strained
    path, truth, principal = strained
    output = tmp_path / "solved"
    args = ["solve", str(path), "-o", str(output), "--starts", "1"]
    assert main([*args, "--top", "3", *option]) == 0
    with open(output / "candidates.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert rows[0]["source"] == "solved"
    assert int(rows[0]["n_atoms"]) == len(truth)
    assert float(rows[0]["rw"]) < 0.01
    found = sorted(float(e) for e in rows[0]["strain"].split())
    assert found == pytest.approx(principal, abs=2e-3)
    # proposals refitted with a strain carry theirs too
    for row in rows[1:]:
        if row["strain"]:
            assert sum(map(float, row["strain"].split())) == pytest.approx(
                0, abs=1e-4
            )
    run = json.loads((output / "run.json").read_text())
    assert run["settings"]["strain"] == setting


def test_solve_without_strain(strained, outside):
    # without a strain the strained particle is not solved exactly; with
    # "auto" (the default) an unstrained one is not strained (a start of
    # the wrong shape may keep a strain, which its search then undoes)
    path, _, _ = strained
    plain = solve_structure(path, n_starts=1, top=1, strain=False)[0]
    assert plain.strain is None and plain.rw > 0.01
    path, truth = outside
    best = solve_structure(path, n_starts=1, top=1)[0]
    assert best.n_atoms == len(truth)
    assert best.strain is None or np.abs(best.strain).max() < 1e-3
    with pytest.raises(ValueError, match="Please give strain as one of"):
        solve_structure(path, strain="on")


def test_solve_warns_when_the_search_reaches_max_atoms():
    import warnings

    from ase.cluster import Octahedron

    from diffpy.deepstruc.solve import MaxAtomsWarning

    truth = Octahedron("Pt", 5, cutoff=1, latticeconstant=A_FCC)
    params = DebyeParameters(qmax=24.0, qdamp=0.04, biso=0.4)
    gr = simulate_pdf(truth.get_positions(), params=params)
    header = {"qmax": 24.0, "qmin": params.qmin, "qdamp": 0.04}
    options = dict(n_starts=1, top=3, element="Pt", **header)
    # the search grows the 79-atom particle's starts up to the limit
    with pytest.warns(MaxAtomsWarning, match="reached max_atoms=60"):
        capped = solve_structure(gr, max_atoms=60, **options)
    assert capped[0].source == "solved" and capped[0].n_atoms <= 60
    with warnings.catch_warnings():
        warnings.simplefilter("error", MaxAtomsWarning)
        found = solve_structure(gr, **options)
    assert found[0].n_atoms == len(truth)


def test_cli_solve_strain_options(outside, tmp_path):
    path, _ = outside
    output = tmp_path / "solved"
    args = ["solve", str(path), "-o", str(output), "--starts", "1"]
    assert main([*args, "--top", "1"]) == 0
    run = json.loads((output / "run.json").read_text())
    assert run["settings"]["strain"] == "auto"
    assert main([*args, "--top", "1", "--force", "--strain", "off"]) == 0
    run = json.loads((output / "run.json").read_text())
    assert run["settings"]["strain"] is False
    with pytest.raises(SystemExit):
        main([*args, "--force", "--strain", "both"])


def test_the_solver_entry_point_solves(outside):
    path, truth = outside
    best = solver.solve(path, n_starts=1, top=1)[0]
    assert best.source == "solved" and best.n_atoms == len(truth)
    assert len(best.structure) == len(truth)


def test_solve_grows_a_faulted_particle_that_no_library_holds():
    # ABACBAC is held out of the library that propose snaps to, as in
    # the sequence-disjoint evaluation: its six-layer neighbours are the
    # nearest proposals, and the stacked search adds the seventh layer
    from diffpy.deepstruc.libraries import Library, load_library
    from diffpy.deepstruc.stacking import build_particle

    full = load_library("stacking")
    held_out = Library(
        "stacking less ABACBAC",
        tuple(e for e in full if e.label.split()[1] != "ABACBAC"),
    )
    assert len(held_out) < len(full)
    truth = build_particle("ABACBAC", "truncated-4-6") * 2.77
    params = DebyeParameters(qmax=24.0, qdamp=0.04, biso=0.4)
    gr = simulate_pdf(truth, params=params)
    solved = solve_structure(
        gr,
        model="stacking",
        library=held_out,
        qmax=24.0,
        qdamp=0.04,
        element="Pt",
        top=3,
    )
    best = solved[0]
    assert best.source in ("solved", "restacked")
    assert best.stacking.abc == "ABACBAC"
    assert best.n_atoms == len(truth)
    assert best.rw < 0.01


def test_solve_searches_the_stacking_models_proposals_on_their_layers():
    # an hcp particle of an in-plane outline that the stacking library
    # does not use: its hcp proposals are searched on their own layers,
    # where the rim of each layer can grow or shrink
    from diffpy.deepstruc.propose import propose_structures
    from diffpy.deepstruc.sitesearch import STACKED, family_of
    from diffpy.deepstruc.solve import _family
    from diffpy.deepstruc.stacking import build_particle, polygon

    truth = build_particle("ABABAB", polygon(4, 5)) * 2.77
    params = DebyeParameters(qmax=24.0, qdamp=0.05, biso=0.4)
    gr = simulate_pdf(truth, params=params)
    header = dict(qmax=24.0, qmin=params.qmin, element="Pt")
    proposals = propose_structures(gr, model="stacking", **header)
    assert {c.type for c in proposals} & {"fcc", "hcp"}
    assert all(_family(c) == STACKED for c in proposals if c.stacking)
    mmnp = propose_structures(gr, **header)
    assert all(_family(c) == family_of(c.type) for c in mmnp)
    best = solve_structure(gr, model="stacking", **header)[0]
    assert best.source in ("solved", "restacked")
    assert best.stacking.abc == "ABABAB"
    assert best.n_atoms == len(truth)


def test_solve_rebuilds_stacking_proposals_as_prisms(monkeypatch):
    # a faulted truncated triangle of an outline and a layer count that the
    # stacking library does not hold: the prism search finds the layer
    # count, the outline and the sequence, which the site search from
    # the proposals alone does not
    from diffpy.deepstruc import solve
    from diffpy.deepstruc.stacking import build_particle, polygon

    truth = build_particle("ABACBACABC", polygon(4, 5)) * 2.77
    params = DebyeParameters(qmax=24.0, qdamp=0.04, biso=0.4)
    gr = simulate_pdf(truth, params=params)
    header = dict(model="stacking", qmax=24.0, element="Pt", top=1)
    best = solve_structure(gr, **header)[0]
    assert best.source == "solved"
    assert [step.move for step in best.path[:2]] == ["start", "prism"]
    assert best.stacking.abc == "ABACBACABC"
    assert best.n_atoms == len(truth)
    assert best.rw < 0.01
    monkeypatch.setattr(solve, "prism_search", lambda *a, **k: None)
    searched = solve_structure(gr, **header)[0]
    assert searched.n_atoms != len(truth) or searched.rw > 0.01


def test_solve_cuts_a_block_about_another_centre(monkeypatch):
    # an sc block centred in a cube of sites, which no library holds:
    # the cut scan finds its centre and sizes, which the site search from
    # the proposals alone does not
    from ase.cluster import SimpleCubic

    from diffpy.deepstruc import solve

    truth = SimpleCubic(
        "Pt",
        [(1, 0, 0), (1, 1, 0), (1, 1, 1)],
        [3, 3, 4],
        latticeconstant=2.77,
        center=[0.5, 0.5, 0.5],
    ).get_positions()
    params = DebyeParameters(qmax=24.0, qdamp=0.04, biso=0.4)
    gr = simulate_pdf(truth, params=params)
    header = dict(qmax=24.0, element="Pt", top=1)
    best = solve_structure(gr, **header)[0]
    assert best.source == "solved"
    assert [step.move for step in best.path[:2]] == ["start", "cut"]
    assert best.n_atoms == len(truth) == 80
    assert best.rw < 0.01
    monkeypatch.setattr(solve, "cut_scan", lambda *a, **k: None)
    searched = solve_structure(gr, **header)[0]
    assert searched.n_atoms != len(truth) or searched.rw > 0.01


def test_solve_searches_starts_above_one_rule_atoms_by_one_rule(
    outside, monkeypatch
):
    from diffpy.deepstruc import solve
    from diffpy.deepstruc.sitesearch import RULES

    path, _ = outside
    rules = []
    search = solve.site_search

    def recorded(*args, **kwargs):
        rules.append(kwargs["rules"])
        return search(*args, **kwargs)

    monkeypatch.setattr(solve, "site_search", recorded)
    solve_structure(path, n_starts=1, top=1, strain=False)
    assert rules == [RULES]
    rules.clear()
    monkeypatch.setattr(solve, "ONE_RULE_ATOMS", 10)
    solve_structure(path, n_starts=1, top=1, strain=False)
    assert rules == [solve.ONE_RULE] == [("in all",)]


def test_every_start_and_the_best_distinct_cut_are_searched():
    from diffpy.deepstruc.solve import CUT_STARTS, _Origin, _origins

    rng = np.random.default_rng(0)
    shapes = {n: rng.uniform(0, 3 * n ** (1 / 3), (n, 3)) for n in (23, 55)}
    shapes.update({n: rng.uniform(0, 10, (n, 3)) for n in (43, 45, 51)})

    def origin(n_atoms, rw, cut=False):
        xyz = shapes[n_atoms][rng.permutation(n_atoms)]
        return _Origin(None, xyz, None, 0.005, rw, (), cut)

    # the best cuts are one particle, and the next is a start's
    # particle fitted better: the best distinct one is searched
    starts = [origin(51, 0.3), origin(55, 0.25), origin(23, 0.4)]
    cuts = [origin(43, 0.1, True), origin(43, 0.1, True)]
    cuts += [origin(55, 0.15, True), origin(45, 0.2, True)]
    assert CUT_STARTS == 1
    kept = _origins(starts + cuts)
    assert [(len(o.xyz), o.rw) for o in kept] == [
        (43, 0.1),
        (55, 0.25),
        (51, 0.3),
        (23, 0.4),
    ]
    # without the best, the start's particle is not searched again
    kept = _origins(starts + cuts[2:])
    assert [(len(o.xyz), o.rw) for o in kept] == [
        (45, 0.2),
        (55, 0.25),
        (51, 0.3),
        (23, 0.4),
    ]


def test_solve_searches_distinct_starts(outside, monkeypatch):
    # the "large" library and the model's may hold one particle: a
    # proposal that comes twice is one start
    from diffpy.deepstruc import solve
    from diffpy.deepstruc.plausibility import distinct_geometries

    path, _ = outside
    starts = []
    search, propose = solve.site_search, solve.propose_structures

    def recorded(xyz, *args, **kwargs):
        starts.append(np.array(xyz))
        return search(xyz, *args, **kwargs)

    def doubled(*args, **kwargs):
        return [c for c in propose(*args, **kwargs) for _ in range(2)]

    monkeypatch.setattr(solve, "site_search", recorded)
    monkeypatch.setattr(solve, "propose_structures", doubled)
    solve_structure(path, n_starts=2, top=1, strain=False)
    assert len(starts) == 2
    assert distinct_geometries(starts) == [0, 1]


def test_auto_strain_picks_the_starts_by_their_unstrained_fits(
    outside, monkeypatch
):
    # a strain lowers the misfit of every shape: with "auto" the starts
    # are those of strain=False, strained where the strain gains
    # STRAIN_MARGIN, plus the proposal that fits best strained
    import dataclasses

    from diffpy.deepstruc import solve
    from diffpy.deepstruc.plausibility import distinct_geometries

    path, _ = outside
    starts, searched = {}, {}
    propose, rebuilt, search = (
        solve.propose_structures,
        solve._rebuilt,
        solve.site_search,
    )
    tiny = np.diag([2e-6, -1e-6, -1e-6])

    def proposed(*args, **kwargs):
        # as if the best proposal gained 1 % from a strain, the fourth
        # distinct one 50 %
        candidates = propose(*args, **{**kwargs, "strain": False})
        if kwargs["strain"]:
            first, _, _, fourth = distinct_geometries(
                [c.xyz for c in candidates]
            )[:4]
            for k, gain in ((first, 0.01), (fourth, 0.5)):
                candidates[k] = dataclasses.replace(
                    candidates[k],
                    rw=(1 - gain) * candidates[k].rw,
                    strain=tiny,
                )
        return candidates

    def recorded_start(start, *args):
        starts[mode].append((start.n_atoms, start.strain is None))
        return rebuilt(start, *args)

    def recorded_search(*args, **kwargs):
        searched[mode].add(kwargs["strains"])
        return search(*args, **kwargs)

    monkeypatch.setattr(solve, "propose_structures", proposed)
    monkeypatch.setattr(solve, "_rebuilt", recorded_start)
    monkeypatch.setattr(solve, "site_search", recorded_search)
    for mode in (False, "auto"):
        starts[mode], searched[mode] = [], set()
        solve_structure(path, n_starts=3, top=1, strain=mode)
    assert len(starts[False]) == 3
    # the best start's 1 % is below the margin: it is searched as it was
    plain = [start for start in starts["auto"] if start[1]]
    assert sorted(plain) == sorted(starts[False])
    assert len(starts["auto"]) == 4
    assert searched == {False: {(False,)}, "auto": {(False,), (True,)}}
