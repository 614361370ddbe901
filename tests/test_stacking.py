"""Tests of the close-packed stacking generator, analysis and library."""

import math
from collections import Counter

import numpy as np
import pytest
from ase.cluster import Decahedron, Icosahedron, Octahedron
from ase.lattice.cubic import BodyCenteredCubic
from ase.lattice.hexagonal import HexagonalClosedPacked
from scipy.spatial.distance import pdist
from scipy.spatial.transform import Rotation

from diffpy.deepstruc import mine_library, simulate_pdf
from diffpy.deepstruc.candidate import Candidate
from diffpy.deepstruc.clusters import build_cluster
from diffpy.deepstruc.debye import DebyeParameters
from diffpy.deepstruc.libraries import LIBRARIES, load_library
from diffpy.deepstruc.matching import nn_distance
from diffpy.deepstruc.stacking import (
    KINDS,
    LAYER_SPACING,
    MAX_ATOMS,
    MAX_LAYERS,
    MIN_ATOMS,
    MIN_LAYER_ATOMS,
    MIN_LAYERS,
    PARTICLE_COUNTS,
    SHAPES,
    LayerShape,
    Stacking,
    build_particle,
    canonical_sequence,
    hc_sequence,
    polygon,
    stacking_particles,
    stacking_sequence,
    stacking_sequences,
)

PT_D = 2.77  # Å, bulk Pt nearest-neighbour distance
NOISE = 0.03  # d, Gaussian noise per coordinate


@pytest.fixture(scope="module")
def particles():
    return stacking_particles()


def relabellings(sequence):
    """All 12 relabellings of a sequence and of its reversal."""
    tables = [
        str.maketrans("ABC", p)
        for p in ("ABC", "ACB", "BAC", "BCA", "CAB", "CBA")
    ]
    return [s.translate(t) for s in (sequence, sequence[::-1]) for t in tables]


def layers_of(xyz):
    """Layer index of each atom of a generated particle (layers along z)."""
    z = xyz[:, 2] - xyz[:, 2].min()
    index = np.rint(z / LAYER_SPACING).astype(int)
    assert np.abs(z - index * LAYER_SPACING).max() < 1e-9
    return index


def blurred(xyz, seed):
    """Rotated, shuffled, noisy copy at the Pt distance."""
    rng = np.random.default_rng(seed)
    rotated = Rotation.random(random_state=seed).apply(np.array(xyz))
    noisy = rng.permutation(rotated) + rng.normal(0, NOISE, rotated.shape)
    return noisy * PT_D


# ----------------------------------------------------------- sequences
@pytest.mark.parametrize(
    "sequence, abc, hc, kind",
    [
        # C1: fcc, expect all c
        ("ABCABC", "ABCABC", "cccc", "fcc"),
        # C2: fcc written from C backwards, expect the same label
        ("CBACBA", "ABCABC", "cccc", "fcc"),
        # C3: hcp, expect all h
        ("ABABA", "ABABA", "hhh", "hcp"),
        # C4: hcp with other letters, expect the same label
        ("CACA", "ABAB", "hh", "hcp"),
        # C5: a fault on top of fcc, expect faulted
        ("ABCB", "ABAC", "hc", "faulted"),
        # C6: a twin plane, expect faulted with one h
        ("ABCBA", "ABCBA", "chc", "faulted"),
        # C7: three layers, expect one interior label
        ("BCA", "ABC", "c", "fcc"),
        # C8: three layers, hcp
        ("CBC", "ABA", "h", "hcp"),
    ],
)
def test_known_sequences_get_their_labels(sequence, abc, hc, kind):
    stacking = Stacking.from_sequence(sequence)
    assert (stacking.abc, stacking.hc, stacking.kind) == (abc, hc, kind)
    assert stacking.n_layers == len(sequence)
    assert hc_sequence(sequence) == hc or hc_sequence(sequence) == hc[::-1]


@pytest.mark.parametrize("sequence", ["ABCB", "ABCABACB", "ABACBCAB"])
def test_labels_do_not_depend_on_letters_or_direction(sequence):
    stackings = {Stacking.from_sequence(s) for s in relabellings(sequence)}
    assert len(stackings) == 1
    for other in relabellings(sequence)[:6]:
        # relabelling keeps the h/c form, reversal reverses it
        assert hc_sequence(other) == hc_sequence(sequence)
        assert hc_sequence(other[::-1]) == hc_sequence(sequence)[::-1]
    assert canonical_sequence(sequence) == min(relabellings(sequence))


@pytest.mark.parametrize(
    "sequence",
    [
        # C1: two equal neighbours, expect ValueError
        "ABBA",
        # C2: two layers, expect ValueError
        "AB",
        # C3: a foreign letter, expect ValueError
        "ABD",
        # C4: lower case, expect ValueError
        "abc",
    ],
)
def test_bad_sequences_are_refused(sequence):
    with pytest.raises(ValueError, match="stacking sequence"):
        canonical_sequence(sequence)


def test_canonical_sequences_are_counted_by_their_hc_forms():
    total = 0
    for n in range(MIN_LAYERS, MAX_LAYERS + 1):
        found = stacking_sequences(n)
        m = n - 2
        assert len(found) == (2**m + 2 ** math.ceil(m / 2)) // 2
        assert all(canonical_sequence(s) == s for s in found)
        # one sequence per h/c form up to reversal
        forms = {min(hc_sequence(s), hc_sequence(s)[::-1]) for s in found}
        assert len(forms) == len(found)
        total += len(found)
    assert total == 285


# ----------------------------------------------------------- generator
def test_generator_is_deterministic(particles):
    from diffpy.deepstruc.stacking import _particles

    fresh = _particles.__wrapped__()
    assert len(fresh) == len(particles)
    for a, b in zip(fresh, particles):
        assert a.label == b.label and a.stacking == b.stacking
        assert np.array_equal(a.xyz, b.xyz)


def test_counts_sizes_and_labels(particles):
    assert Counter(p.kind for p in particles) == PARTICLE_COUNTS
    assert len(particles) == 2612
    n_atoms = [p.n_atoms for p in particles]
    assert MIN_ATOMS <= min(n_atoms) and max(n_atoms) <= MAX_ATOMS
    assert (min(n_atoms), max(n_atoms)) == (16, 198)
    assert {p.stacking.n_layers for p in particles} == set(
        range(MIN_LAYERS, MAX_LAYERS + 1)
    )
    assert {p.shape for p in particles} == {s.name for s in SHAPES}
    assert len({p.label for p in particles}) == len(particles)
    first = particles[0]
    assert first.label == f"stacking {first.stacking.abc} {first.shape}"


def test_particles_are_distinct(particles):
    keys = {np.round(np.sort(pdist(p.xyz)), 6).tobytes() for p in particles}
    assert len(keys) == len(particles)


def test_particles_are_unit_close_packed_stacks(particles):
    for p in particles[::7]:
        assert not p.xyz.flags.writeable
        assert nn_distance(p.xyz) == pytest.approx(1.0, abs=1e-9)
        assert np.abs(p.xyz.mean(0)).max() < 1e-9
        layer = layers_of(p.xyz)
        assert layer.max() + 1 == p.stacking.n_layers
        assert np.bincount(layer).min() >= MIN_LAYER_ATOMS
        # each layer sits on its registry: in-plane offsets between the
        # layers of registries a and b are (b - a)/3 (a1 + a2) modulo
        # the lattice
        cell = np.array([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])
        frac = p.xyz[:, :2] @ np.linalg.inv(cell)
        reference = frac[layer == 0][0]
        for k, letter in enumerate(p.stacking.abc):
            shift = ("ABC".index(letter) - "ABC".index(p.stacking.abc[0])) / 3
            offset = frac[layer == k] - reference - shift
            assert np.abs(offset - np.rint(offset)).max() < 1e-9


def test_faulted_layers_are_cut_from_their_own_lattice():
    # the outline is the same, the atoms differ: B and C layers of a
    # triangle hold different numbers of atoms
    xyz = build_particle("ABCB", "triangle-5")
    counts = np.bincount(layers_of(xyz))
    shape = polygon(5)
    assert shape.name == "triangle-5"
    assert len(set(counts)) == 3 and counts[1] == counts[3]
    same = build_particle("ABCB", shape)
    assert np.array_equal(xyz, same)


def test_build_particle_matches_the_library(particles):
    for p in particles[::300]:
        assert np.array_equal(build_particle(p.stacking.abc, p.shape), p.xyz)


@pytest.mark.parametrize(
    "args, match",
    [
        # C1: unknown shape name, expect ValueError naming the shapes
        (("ABC", "square-3"), "disc-4"),
        # C2: a shape too small for B sites, expect ValueError
        (("ABAB", LayerShape("dot", radius=0.3)), "registry B"),
        # C3: equal neighbours, expect ValueError
        (("AAB", "disc-4"), "stacking sequence"),
    ],
)
def test_build_particle_refuses_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        build_particle(*args)


def test_unbounded_shape_is_refused():
    with pytest.raises(ValueError, match="bounded"):
        LayerShape("plane")


# ------------------------------------------------------------- analysis
def test_stacking_sequence_recovers_generated_particles(particles):
    rng = np.random.default_rng(11)
    faulted = [p for p in particles if p.kind == "faulted"]
    chosen = [p for p in particles if p.kind != "faulted"]
    chosen += [faulted[i] for i in rng.choice(len(faulted), 80, False)]
    for seed, p in enumerate(chosen):
        found = stacking_sequence(blurred(p.xyz, seed))
        assert found is not None, p.label
        if p.kind == "fcc":
            # every {111} axis is ABC...; the one with fewest layers wins
            assert found.kind == "fcc" and set(found.hc) == {"c"}
            assert found.n_layers <= p.stacking.n_layers
        else:
            assert found == p.stacking, p.label
            # the stacking axis of a faulted or hcp particle is unique
            axis = Rotation.random(random_state=seed).apply([0, 0, 1])
            assert abs(np.dot(found.axis, axis)) > 0.99


def test_layers_in_frame_put_a_turned_particle_on_its_lattice():
    from diffpy.deepstruc.stacking import stacking_layers

    xyz = build_particle("ABACB", polygon(4, 6))
    turned = Rotation.random(random_state=3).apply(xyz * 2.77) + 4.0
    layers = stacking_layers(turned[::-1])
    unit_xyz, d, origin = layers.in_frame(turned[::-1])
    assert d == pytest.approx(2.77, rel=1e-6)
    # layers normal to z, LAYER_SPACING apart
    heights = unit_xyz[:, 2] - unit_xyz[:, 2].min()
    assert np.allclose(heights / LAYER_SPACING, layers.layer, atol=1e-6)
    # every atom on a site of its layer's registry from the origin
    cell = np.array([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    shift = cell.sum(0) / 3
    offset = (
        unit_xyz[:, :2]
        - origin
        - np.outer(layers.registry[layers.layer], shift)
    )
    frac = offset @ np.linalg.inv(cell)
    assert np.allclose(frac, np.round(frac), atol=1e-6)


def test_fcc_gives_the_same_answer_along_any_axis():
    xyz = Octahedron("Pt", 5, 1).get_positions()
    answers = {
        stacking_sequence(Rotation.random(random_state=s).apply(xyz))
        for s in range(4)
    }
    assert len(answers) == 1
    (found,) = answers
    assert found.kind == "fcc" and found.abc == "ABCAB"


def test_ase_fcc_and_hcp_clusters():
    octahedron = stacking_sequence(Octahedron("Pt", 6, 2))
    assert octahedron.kind == "fcc" and set(octahedron.hc) == {"c"}
    # an hcp block cut to a round cluster, c axis along z
    block = HexagonalClosedPacked("Co", size=(6, 6, 4)).get_positions()
    block -= block.mean(0)
    cluster = block[np.linalg.norm(block, axis=1) < 5.5]
    found = stacking_sequence(cluster)
    assert found.kind == "hcp" and set(found.hc) == {"h"}
    assert abs(found.axis[2]) > 0.999
    assert stacking_sequence(build_cluster("hcp", (3, 3, 3), 2.5)).kind == (
        "hcp"
    )


@pytest.mark.parametrize(
    "name",
    [
        # C1: Mackay icosahedron, expect None
        "icosahedron",
        # C2: Marks decahedron, expect None
        "decahedron",
        # C3: bcc block (its (110) planes are spaced like close-packed
        # layers but are not triangular), expect None
        "bcc",
        # C4: sc cluster, expect None
        "sc",
        # C5: random points, expect None
        "amorphous",
        # C6: two layers only, expect None
        "bilayer",
    ],
)
def test_stacking_sequence_rejects_other_structures(name):
    xyz = {
        "icosahedron": lambda: Icosahedron("Pt", 3).get_positions(),
        "decahedron": lambda: Decahedron("Pt", 3, 2, 1).get_positions(),
        "bcc": lambda: BodyCenteredCubic("Fe", size=(3, 3, 3)),
        "sc": lambda: build_cluster("sc", (3, 3, 3), 2.5),
        "amorphous": lambda: np.random.default_rng(0).uniform(0, 9, (80, 3)),
        "bilayer": lambda: Octahedron("Pt", 2, 0),
    }[name]()
    assert stacking_sequence(xyz) is None


def test_stacking_sequence_checks_its_input():
    xyz = build_particle("ABCB", "disc-9")
    with pytest.raises(ValueError, match="tolerance"):
        stacking_sequence(xyz, tolerance=0.3)
    with pytest.raises(ValueError, match="tolerance"):
        stacking_sequence(xyz, tolerance=0.0)
    with pytest.raises(ValueError, match="shape"):
        stacking_sequence(xyz[:, :2])
    assert stacking_sequence(xyz[:2]) is None
    assert stacking_sequence(np.zeros((5, 3))) is None


# ----------------------------------------------------- candidate, library
def candidate_of(xyz):
    """A candidate holding ``xyz`` (Å) with a stand-in fit."""
    params = DebyeParameters()
    r, g = simulate_pdf(xyz, params=params)
    return Candidate(
        xyz=xyz,
        element="Pt",
        rw=0.0,
        scale=1.0,
        zoom=1.0,
        uiso=params.uiso,
        latent=np.zeros(2),
        sigma=0.0,
        source="prior",
        r=r,
        gobs=g,
        gcalc=g,
        params=params,
    )


def test_candidate_stacking():
    faulted = candidate_of(blurred(build_particle("ABCBA", "disc-9"), 3))
    assert faulted.stacking == Stacking.from_sequence("ABCBA")
    assert faulted.stacking is faulted.stacking  # computed once
    icosahedron = candidate_of(Icosahedron("Pt", 3).get_positions())
    assert icosahedron.stacking is None


def test_stacking_library(particles):
    assert "stacking" in LIBRARIES
    library = load_library("stacking")
    assert load_library("stacking") is library
    assert library.name == "stacking" and len(library) == len(particles)
    assert Counter(e.type for e in library) == PARTICLE_COUNTS
    assert set(PARTICLE_COUNTS) == set(KINDS)
    for entry, particle in zip(library, particles):
        assert entry.label == particle.label and entry.size == ()
    entry = library[100]
    assert np.allclose(entry.xyz, particles[100].xyz, atol=1e-12)


def test_mining_the_stacking_library_recovers_a_sequence(particles):
    (particle,) = [p for p in particles if p.label == "stacking ABCBA disc-13"]
    r, g = simulate_pdf(particle.xyz * PT_D)
    mined = mine_library(
        (r, g),
        library="stacking",
        top=2,
        element="Pt",
        qmax=25.0,
        qdamp=0.04,
        fit_range=(2.0, 12.0),
        progress=False,
    )
    best = mined[0]
    assert best.label == particle.label
    assert best.rw < 0.02 < mined[1].rw
    assert best.stacking == particle.stacking
