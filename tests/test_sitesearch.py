"""Tests of the site search: templates, alignment and the search."""

import itertools

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf
from diffpy.deepstruc.sitesearch import (
    DEFAULT_NEIGHBOUR_CUTOFF,
    FAMILIES,
    GROUP_PARAMETERS,
    NEIGHBOUR_CUTOFF,
    STACKED,
    _rim_changes,
    _Search,
    _steepest,
    align,
    facet_normals,
    facet_orbits,
    family_of,
    site_search,
    template,
)

D = 2.77  # Pt nearest-neighbour distance, Å
A_FCC = D * np.sqrt(2)
PARAMS = DebyeParameters(qmax=24.0, qdamp=0.03, biso=0.5)
R = np.arange(1.5, 30.0, 0.01)


def _shape(xyz):
    """Sorted pair distances in units of the shortest one."""
    d = np.sort(pdist(xyz))
    return d / d[0]


def _same_shape(a, b):
    return len(a) == len(b) and np.allclose(_shape(a), _shape(b), atol=0.02)


def _rotated(xyz, seed):
    """xyz rotated, shifted and shuffled."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    turned = Rotation.random(random_state=seed).apply(xyz) + rng.normal(
        0, 5, 3
    )
    return turned[rng.permutation(len(xyz))]


def _data(xyz, noise=0.0, seed=0):
    g = 1.3 * simulate_pdf(xyz, R, params=PARAMS)[1]
    if noise:
        g += np.random.default_rng(seed).normal(0, noise, g.shape)
    return g


@pytest.mark.parametrize(
    "family, coordination",
    [
        ("fcc", 12),
        ("hcp", 12),
        ("bcc", 8),
        ("sc", 6),
        ("icosahedral", 12),
        ("decahedral", 12),
    ],
)
def test_template_centre_has_its_family_coordination(family, coordination):
    sites = template(family, 4.0)
    centre = np.argmin(np.linalg.norm(sites, axis=1))
    distance = np.linalg.norm(sites - sites[centre], axis=1)
    assert np.linalg.norm(sites[centre]) < 1e-9
    assert np.median(np.sort(distance)[1 : coordination + 1]) == (
        pytest.approx(1.0, abs=0.03)
    )
    cutoff = NEIGHBOUR_CUTOFF.get(family, DEFAULT_NEIGHBOUR_CUTOFF)
    assert np.sum((distance > 0.5) & (distance < cutoff)) == coordination
    assert np.linalg.norm(sites, axis=1).max() >= 4.0 - 1e-9


def test_every_mmnp_type_has_a_family():
    from diffpy.deepstruc.clusters import CLUSTER_TYPES

    assert {family_of(t) for t in CLUSTER_TYPES} == set(FAMILIES) - {STACKED}
    assert family_of("faulted") == STACKED
    assert family_of("amorphous") is None
    with pytest.raises(ValueError, match="Unknown structure family"):
        template("amorphous", 3.0)


@pytest.mark.parametrize(
    "family, size",
    [
        ("fcc", (2, 3, 2)),
        ("bcc", (2, 2, 3)),
        ("sc", (2, 3, 3)),
        ("hcp", (2, 2, 3)),
        ("icosahedral", (3,)),
        ("decahedral", (3, 2, 1)),
        ("octahedral", (5,)),
    ],
)
def test_align_puts_every_atom_of_a_rotated_cluster_on_a_site(family, size):
    from diffpy.deepstruc.clusters import build_cluster

    xyz = _rotated(build_cluster(family, size, D), seed=len(size))
    sites, occupied, unit, matched = align(xyz, family_of(family))
    assert matched == 1.0
    assert len(occupied) == len(xyz)
    nearest = np.sort(pdist(xyz))[0]  # the library's bcc has it below D
    assert unit == pytest.approx(nearest, rel=0.02)
    assert _same_shape(sites[occupied] * unit, xyz)
    # the pool reaches beyond the cluster
    assert len(sites) > 2 * len(xyz)


def _faulted(sequence="ABACBAC", outline="truncated-4-6"):
    from diffpy.deepstruc.stacking import build_particle

    return build_particle(sequence, outline) * D


def test_align_puts_a_rotated_faulted_particle_on_its_own_layers():
    from diffpy.deepstruc.stacking import stacking_sequence

    xyz = _rotated(_faulted(), seed=5)
    sites, occupied, unit, matched = align(xyz, STACKED)
    assert matched == 1.0
    assert len(occupied) == len(xyz)
    assert unit == pytest.approx(D)
    assert _same_shape(sites[occupied] * unit, xyz)
    # the layers are normal to z, at least three more (the pool's 3 d)
    # on each side of the seven
    levels = np.round(sites[:, 2] / np.sqrt(2 / 3), 6)
    heights = np.unique(levels)
    assert np.allclose(np.diff(heights), 1.0)
    inside = np.unique(levels[occupied])
    assert len(inside) == 7
    assert heights[0] <= inside[0] - 3 and heights[-1] >= inside[-1] + 3
    assert stacking_sequence(sites[occupied]).abc == "ABACBAC"
    # not close-packed: nothing placed
    cube = np.array(list(itertools.product(range(3), repeat=3))) * D
    assert align(cube, STACKED)[3] == 0.0


def test_search_adds_the_missing_layer_of_a_faulted_particle():
    from diffpy.deepstruc.stacking import stacking_layers, stacking_sequence

    truth = _rotated(_faulted(), seed=2)
    layers = stacking_layers(truth)
    start = truth[layers.layer > 0]  # less the h layer at one end
    assert stacking_sequence(start).abc == "ABACBA"
    result = site_search(start, STACKED, R, _data(truth), PARAMS)
    assert _same_shape(result.xyz, truth)
    assert stacking_sequence(result.xyz).abc == "ABACBAC"
    assert result.added == len(truth) - len(start)


def _without_rim(xyz, level):
    """A close-packed cluster less the atoms of one layer that have fewer
    than six neighbours in it."""
    from scipy.spatial import cKDTree

    from diffpy.deepstruc.stacking import stacking_layers

    layer = stacking_layers(xyz).layer
    here = np.flatnonzero(layer == level)
    counts = cKDTree(xyz[here]).query_ball_point(
        xyz[here], 1.2 * D, return_length=True
    )
    return np.delete(xyz, here[counts < 7], axis=0)


def test_a_group_change_costs_group_parameters():
    truth = _faulted("ABAC", "hexagon-6")
    start = _without_rim(truth, 0)
    sites, occupied, unit, _ = align(start, STACKED)
    search = _Search(
        sites, occupied, unit, STACKED, (R, _data(truth)), PARAMS, 0.005, False
    )
    grow = [c for c in _rim_changes(search, np.inf) if c[0] == "grow layer"]
    move, added, removed = max(grow, key=lambda c: len(c[1]))
    assert len(added) > 1
    assert search.group_change(added, removed) == GROUP_PARAMETERS
    search.apply(move, added, removed)
    assert search.changes == GROUP_PARAMETERS
    # single changes count against the group's sites as it left them
    assert search.change(added[:1], False).tolist() == [1]
    search.apply("remove", [], added[:1])
    assert search.changes == GROUP_PARAMETERS + 1
    # a group change that undoes singles takes them back
    assert search.group_change(added[:1], []) == GROUP_PARAMETERS - 1


def test_search_grows_the_rim_of_one_layer_on_noisy_data(monkeypatch):
    from diffpy.deepstruc import sitesearch

    truth = _rotated(_faulted("ABAC", "hexagon-9"), seed=4)
    start = _without_rim(truth, 1)
    assert len(truth) - len(start) == 18
    g = _data(truth, noise=0.02, seed=3)
    result = site_search(start, STACKED, R, g, PARAMS, noise=0.02)
    assert _same_shape(result.xyz, truth)
    assert "grow layer" in [step.move for step in result.path]
    # one atom at a time, the data do not support the rim
    monkeypatch.setattr(sitesearch, "_rim_changes", lambda *args: [])
    single = site_search(start, STACKED, R, g, PARAMS, noise=0.02)
    assert not _same_shape(single.xyz, truth)


@pytest.mark.parametrize(
    "family, sizes",
    [
        ("fcc", [8, 12, 6]),
        ("sc", [8, 12, 6]),
        ("hcp", [6, 6, 2]),
        ("icosahedral", [12, 20]),
        ("decahedral", [10, 5, 5, 2]),
    ],
)
def test_facet_orbits_are_the_sets_of_alike_facets(family, sizes):
    normals = facet_normals(family)
    orbits = facet_orbits(family)
    assert [len(orbit) for orbit in orbits] == sizes
    for orbit in orbits:
        # alike facets: the same angles to all the others
        angles = np.sort(normals[orbit] @ normals.T, axis=1)
        assert np.allclose(angles, angles[0], atol=1e-3)


def test_search_grows_every_facet_of_a_block_at_once(monkeypatch):
    from ase.cluster import FaceCenteredCubic

    from diffpy.deepstruc import sitesearch

    surfaces = [(1, 0, 0), (1, 1, 0), (1, 1, 1)]
    truth = FaceCenteredCubic("Pt", surfaces, [3, 4, 4], A_FCC)
    start = FaceCenteredCubic("Pt", surfaces, [2, 3, 3], A_FCC)
    truth = _rotated(truth.get_positions(), seed=5)
    g = _data(truth, noise=0.02, seed=1)
    result = site_search(
        start.get_positions(), "fcc", R, g, PARAMS, noise=0.02
    )
    assert (len(start), len(truth)) == (43, 87)
    assert _same_shape(result.xyz, truth)
    assert "grow facets" in [step.move for step in result.path]
    # one facet at a time, the search ends in a local minimum
    monkeypatch.setattr(sitesearch, "_orbit_changes", lambda *args: [])
    single = site_search(
        start.get_positions(), "fcc", R, g, PARAMS, noise=0.02
    )
    assert not _same_shape(single.xyz, truth)


def test_search_recovers_a_truncated_octahedron_from_the_full_one():
    from ase.cluster import Octahedron

    truth = Octahedron("Pt", 6, cutoff=1, latticeconstant=A_FCC)
    start = Octahedron("Pt", 6, cutoff=0, latticeconstant=A_FCC)
    xyz = _rotated(start.get_positions() * 1.01, seed=3)
    result = site_search(xyz, "fcc", R, _data(truth.get_positions()), PARAMS)
    assert _same_shape(result.xyz, truth.get_positions())
    assert result.removed - result.added == 6
    assert result.path[0].move == "start"
    assert result.path[0].n_atoms == len(start)
    assert result.path[-1].rw < 1e-3 < result.path[0].rw


def test_search_recovers_an_icosahedron_without_vertices():
    from ase.cluster import Icosahedron

    full = Icosahedron("Pt", 3, latticeconstant=A_FCC).get_positions()
    # the 12 vertices are the atoms furthest from the centre
    radius = np.linalg.norm(full - full.mean(0), axis=1)
    truth = full[np.argsort(radius)[:-12]]
    result = site_search(full, "icosahedral", R, _data(truth), PARAMS)
    assert _same_shape(result.xyz, truth)


@pytest.mark.parametrize(
    "family, count",
    [
        ("fcc", 26),
        ("bcc", 26),
        ("sc", 26),
        ("hcp", 14),
        ("icosahedral", 32),
        ("decahedral", 22),
    ],
)
def test_facet_normals_are_distinct_unit_vectors(family, count):
    normals = facet_normals(family)
    assert normals.shape == (count, 3)
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0)
    assert (normals @ normals.T - np.eye(count)).max() < 0.999
    # planes of these normals bound a closed polyhedron: every direction
    # is within 60 degrees of one of them
    directions = np.random.default_rng(0).normal(size=(2000, 3))
    directions /= np.linalg.norm(directions, axis=1)[:, None]
    assert (directions @ normals.T).max(axis=1).min() > 0.5
    with pytest.raises(ValueError, match="Unknown structure family"):
        facet_normals("rocksalt")


def test_search_cuts_a_vertex_that_no_facet_of_the_start_bounds():
    from ase.cluster import Octahedron

    # the two (100) layers nearest one vertex of an octahedron, whose
    # facets are all (111): planes of the family's normals, not the hull
    full = Octahedron("Pt", 6, cutoff=0, latticeconstant=A_FCC)
    xyz = full.get_positions() - full.get_positions().mean(0)
    top = xyz[:, 2] > xyz[:, 2].max() - 1.5 * D / np.sqrt(2)
    truth = xyz[~top]
    result = site_search(xyz, "fcc", R, _data(truth), PARAMS, kicks=0)
    assert _same_shape(result.xyz, truth)


def test_search_refines_an_unknown_qdamp_from_zero():
    from ase.cluster import Octahedron

    truth = Octahedron("Pt", 6, cutoff=1, latticeconstant=A_FCC)
    start = Octahedron("Pt", 6, cutoff=0, latticeconstant=A_FCC)
    guess = DebyeParameters(qmax=24.0, qdamp=0.0, biso=0.5)
    result = site_search(
        start.get_positions(),
        "fcc",
        R,
        _data(truth.get_positions()),
        guess,
        fit_qdamp=True,
    )
    assert _same_shape(result.xyz, truth.get_positions())
    assert result.params.qdamp == pytest.approx(PARAMS.qdamp, abs=2e-3)


def test_search_trims_a_bcc_cluster_to_its_cube():
    # the 8 corners of the 9-atom bcc cube have one first neighbour each
    # (the centre) and three second ones: they hold, and the 6 atoms of
    # the second shell of the 15-atom cluster go
    a = 2.0 * D / np.sqrt(3)
    corners = np.array(list(itertools.product((-0.5, 0.5), repeat=3)))
    faces = np.vstack([np.eye(3), -np.eye(3)])
    cube = np.vstack([np.zeros((1, 3)), corners]) * a
    start = np.vstack([cube, faces * a])
    result = site_search(start, "bcc", R, _data(cube), PARAMS)
    assert _same_shape(result.xyz, cube)


def _stretched(xyz, size=0.03, axis=(1.0, 2.0, 0.5)):
    """xyz stretched by ``size`` along axis; and the traceless strain."""
    n = np.array(axis) / np.linalg.norm(axis)
    strain = size * (np.outer(n, n) - np.eye(3) / 3) / (1 + size / 3)
    return xyz + size * np.outer(xyz @ n, n), strain


def test_search_with_strain_keeps_a_strained_particle():
    from ase.cluster import Octahedron

    truth = Octahedron("Pt", 5, cutoff=1, latticeconstant=A_FCC)
    xyz = truth.get_positions() - truth.get_positions().mean(0)
    strained, strain = _stretched(xyz)
    g = _data(strained)
    start = _rotated(xyz, seed=2)
    plain = site_search(start, "fcc", R, g, PARAMS)
    for strains in [(True,), (False, True)]:
        result = site_search(start, "fcc", R, g, PARAMS, strains=strains)
        assert _same_shape(result.xyz, strained)
        assert result.path[-1].rw < 1e-3
        assert np.allclose(
            np.linalg.eigvalsh(result.strain),
            np.linalg.eigvalsh(strain),
            atol=1e-3,
        )
    # a search that cannot strain its sites trades atoms for the misfit
    assert not _same_shape(plain.xyz, strained)
    assert plain.path[-1].rw > 10 * result.path[-1].rw
    assert plain.strain is None


def test_search_with_strain_leaves_an_unstrained_particle_unstrained():
    from ase.cluster import Octahedron

    truth = Octahedron("Pt", 5, cutoff=1, latticeconstant=A_FCC)
    start = Octahedron("Pt", 5, cutoff=0, latticeconstant=A_FCC)
    g = _data(truth.get_positions())
    result = site_search(
        start.get_positions(), "fcc", R, g, PARAMS, strains=(False, True)
    )
    assert _same_shape(result.xyz, truth.get_positions())
    assert result.strain is None or np.abs(result.strain).max() < 1e-3


def test_a_search_below_the_noise_is_settled():
    from ase.cluster import Octahedron

    truth = Octahedron("Pt", 5, cutoff=1, latticeconstant=A_FCC)
    start = Octahedron("Pt", 5, cutoff=0, latticeconstant=A_FCC)
    clean = site_search(
        start.get_positions(), "fcc", R, _data(truth.get_positions()), PARAMS
    )
    assert clean.settled
    assert _same_shape(clean.xyz, truth.get_positions())
    # with 1 % noise the truth's misfit is the noise's, not below it
    g = _data(truth.get_positions(), noise=0.01, seed=2)
    noisy = site_search(start.get_positions(), "fcc", R, g, PARAMS, noise=0.01)
    assert _same_shape(noisy.xyz, truth.get_positions())
    assert not noisy.settled
    # a search that is stopped ends before its first move
    other = site_search(
        start.get_positions(), "fcc", R, g, PARAMS, stop=lambda: True
    )
    assert [step.move for step in other.path] == ["start"]
    assert len(other.xyz) == len(start) and not other.settled


def test_steepest_per_atom_or_in_all():
    # (score, move, added, removed): a layer of 6 atoms lowers the score
    # most in all, a single atom most per atom changed
    layer = (4.0, "remove layer", [], list(range(6)))
    single = (8.5, "remove", [], [7])
    worse = (11.0, "add", [3], [])
    options = [layer, single, worse]
    assert _steepest(options, 10.0, per_atom=False) is layer
    assert _steepest(options, 10.0, per_atom=True) is single
    assert _steepest([worse], 10.0, per_atom=False) is None


def test_search_is_deterministic():
    from ase.cluster import Octahedron

    truth = Octahedron("Pt", 5, cutoff=1, latticeconstant=A_FCC)
    start = Octahedron("Pt", 5, cutoff=0, latticeconstant=A_FCC)
    g = _data(truth.get_positions(), noise=0.01, seed=1)
    first, second = (
        site_search(start.get_positions(), "fcc", R, g, PARAMS)
        for _ in range(2)
    )
    assert np.array_equal(first.xyz, second.xyz)
    assert first.path == second.path


def test_noise_sets_which_changes_the_data_support():
    from ase.cluster import Octahedron

    truth = Octahedron("Pt", 5, cutoff=1, latticeconstant=A_FCC)
    start = Octahedron("Pt", 5, cutoff=0, latticeconstant=A_FCC)
    g = _data(truth.get_positions())
    clean = site_search(start.get_positions(), "fcc", R, g, PARAMS)
    assert clean.removed - clean.added == 6
    # noise far above the signal supports no change at all
    loud = site_search(
        start.get_positions(), "fcc", R, g, PARAMS, noise=np.abs(g).max()
    )
    assert loud.added == loud.removed == 0
    assert len(loud.xyz) == len(start)


def test_search_keeps_within_max_atoms_and_max_moves():
    from ase.cluster import Octahedron

    truth = Octahedron("Pt", 7, cutoff=0, latticeconstant=A_FCC)
    start = Octahedron("Pt", 5, cutoff=0, latticeconstant=A_FCC)
    g = _data(truth.get_positions())
    capped = site_search(start.get_positions(), "fcc", R, g, max_atoms=60)
    assert len(capped.xyz) <= 60
    short = site_search(start.get_positions(), "fcc", R, g, max_moves=3)
    assert len([s for s in short.path if s.move != "refit"]) <= 4


def test_search_refuses_a_start_off_the_family_sites():
    rng = np.random.default_rng(0)
    blob = rng.uniform(-6, 6, (40, 3))
    with pytest.raises(ValueError, match="lie on fcc sites"):
        site_search(blob, "fcc", R, _data(blob))


@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_search_completes_what_the_data_cannot_see(monkeypatch, noise):
    from diffpy.deepstruc import sitesearch

    # the 5-atom square pyramid has the G(r) of the 6-atom octahedron
    octahedron = np.array(
        [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]
    ) * (A_FCC / 2)
    pyramid = octahedron[:5]
    g = _data(_rotated(octahedron, seed=2), noise=noise, seed=3)
    result = site_search(pyramid, "fcc", R, g, PARAMS, noise=noise)
    assert _same_shape(result.xyz, octahedron)
    assert result.path[-1].move == "complete"
    monkeypatch.setattr(sitesearch, "_complete", lambda *args: None)
    blind = site_search(pyramid, "fcc", R, g, PARAMS, noise=noise)
    assert _same_shape(blind.xyz, pyramid)


def test_search_descends_by_the_rules_given(monkeypatch):
    from ase.cluster import Octahedron

    from diffpy.deepstruc import sitesearch

    start = Octahedron("Pt", 4, cutoff=0, latticeconstant=A_FCC)
    xyz = start.get_positions()
    g = _data(xyz, noise=0.02)
    search = sitesearch._search
    descents = []

    def recorded(*args):
        descents.append(args[6])  # per_atom
        return search(*args)

    monkeypatch.setattr(sitesearch, "_search", recorded)
    site_search(xyz, "fcc", R, g, PARAMS, noise=0.02)
    assert descents == [False, True]
    descents.clear()
    site_search(xyz, "fcc", R, g, PARAMS, noise=0.02, rules=("in all",))
    assert descents == [False]
    # each rule once unstrained and once strained
    descents.clear()
    site_search(xyz, "fcc", R, g, PARAMS, noise=0.02, strains=(False, True))
    assert sorted(descents) == [False, False, True, True]
    for rules in [(), ("by layer",)]:
        with pytest.raises(ValueError, match="rules among"):
            site_search(xyz, "fcc", R, g, PARAMS, rules=rules)
    for strains in [(), ("yes",)]:
        with pytest.raises(ValueError, match="strains among"):
            site_search(xyz, "fcc", R, g, PARAMS, strains=strains)
