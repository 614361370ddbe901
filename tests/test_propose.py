"""Tests of the proposal pipeline (propose.py) with the shipped model.

The shipped model will be replaced by better ones, so most tests check
properties of the ranking (determinism, order, distinctness, consistent
fits); one checks that a library cluster is recovered at rank 1
(``test_recovery.py`` checks more structures).
"""

import math
import warnings

import numpy as np
import pytest

from diffpy.deepstruc.candidate import Candidate
from diffpy.deepstruc.clusters import build_cluster
from diffpy.deepstruc.debye import (
    DebyeParameters,
    pair_distances,
    r_grid,
    simulate_pdf,
)
from diffpy.deepstruc.features import prior_input
from diffpy.deepstruc.matching import matched_errors, nn_distance
from diffpy.deepstruc.pdfdata import PDFData, PDFInputError, PDFInputWarning
from diffpy.deepstruc.propose import (
    FIT_RANGE,
    MERGE_TOLERANCE,
    SEARCH_POINTS,
    SIGMA_MULTIPLIERS,
    distinct_structures,
    element_of,
    instrument_parameters,
    local_points,
    merge_equivalent,
    prior_points,
    propose_structures,
    proxy_scores,
    screen,
    search_grid,
)

pytest.importorskip("onnxruntime")

#: Pt: d = 2 x metallic radius 1.30 Å.
PT_D = 2.60
INSTRUMENT = {"qmax": 25.0, "qdamp": 0.04, "qmin": 0.7}
FAST = {"n_samples": 100, "top": 4, **INSTRUMENT}


def library_pdf(cluster_type="fcc", size=(3, 3, 3), d=PT_D):
    """(r, G) of a library cluster with the training PDF parameters."""
    xyz = build_cluster(cluster_type, size, d)
    return simulate_pdf(xyz, r_grid(0.0, 30.0, 0.01))


def in_training_units(xyz):
    """A cluster in units of its shortest distance, as the decoder emits."""
    xyz = np.asarray(xyz, float)
    return (xyz - xyz.mean(0)) / pair_distances(xyz).min()


def candidate_key(c):
    return c.rank, c.rw, c.n_atoms, c.source, c.xyz.tobytes()


@pytest.fixture(scope="module")
def fcc_pdf():
    return library_pdf()


@pytest.fixture(scope="module")
def proposed(fcc_pdf):
    """Candidates for a Pt fcc 3-3-3 PDF (search on, seed 0)."""
    return propose_structures(fcc_pdf, element="Pt", seed=0, **FAST)


@pytest.fixture(scope="module")
def prior_only(fcc_pdf):
    """Candidates without search and snapping and without an element."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        candidates = propose_structures(
            fcc_pdf, search=False, snap=False, seed=1, **FAST
        )
    return candidates, caught


# --------------------------------------------------------- the ranking
def test_same_seed_gives_the_same_candidates(fcc_pdf, proposed):
    again = propose_structures(fcc_pdf, element="Pt", seed=0, **FAST)
    assert [candidate_key(c) for c in again] == [
        candidate_key(c) for c in proposed
    ]
    for a, b in zip(again, proposed):
        assert np.array_equal(a.latent, b.latent)
        assert np.array_equal(a.gcalc, b.gcalc)


@pytest.mark.parametrize(
    "fixture",
    [
        # C1: search on, expect ranks 1..n, Rw ascending, at most top
        "proposed",
        # C2: search off, expect the same
        "prior_only",
    ],
)
def test_candidates_are_ranked_by_rw(request, fixture):
    candidates = request.getfixturevalue(fixture)
    if fixture == "prior_only":
        candidates = candidates[0]
    assert 1 <= len(candidates) <= FAST["top"]
    assert all(isinstance(c, Candidate) for c in candidates)
    assert [c.rank for c in candidates] == list(range(1, len(candidates) + 1))
    rws = [c.rw for c in candidates]
    assert rws == sorted(rws)
    assert all(0 <= rw < 1 for rw in rws)


def test_candidates_are_distinct(proposed):
    # in units of their own nearest-neighbour distance, no two candidates
    # are equivalent by the merging rule
    unit = [c.xyz / nn_distance(c.xyz) for c in proposed]
    assert merge_equivalent(unit) == list(range(len(proposed)))


def test_candidate_fits_are_consistent(fcc_pdf, proposed):
    r, g = fcc_pdf
    inside = (r >= FIT_RANGE[0]) & (r <= FIT_RANGE[1])
    for c in proposed:
        assert c.gcalc.shape == c.gobs.shape == (np.count_nonzero(inside),)
        np.testing.assert_array_equal(c.r, r[inside])
        np.testing.assert_array_equal(c.gobs, g[inside])
        rw = math.sqrt(np.sum((c.gobs - c.gcalc) ** 2) / np.sum(c.gobs**2))
        assert rw == pytest.approx(c.rw, rel=1e-9)
        assert c.xyz.shape == (c.n_atoms, 3) and c.n_atoms >= 2
        np.testing.assert_allclose(c.xyz.mean(0), 0.0, atol=1e-9)
        assert 0.9 <= c.zoom <= 1.1 and c.scale > 0 and c.uiso > 0
        assert c.element == "Pt" and c.sigma >= 0
        assert c.params.qmax == INSTRUMENT["qmax"]


def test_library_cluster_is_recovered(fcc_pdf, proposed):
    # the 43-atom fcc 3-3-3 cluster behind fcc_pdf is rank 1 (measured with
    # the mmnp model: Rw 0.0053, 0.017 Å mean position error)
    best = proposed[0]
    assert best.n_atoms == 43
    assert best.nearest_reference.type == "fcc"
    assert best.nearest_reference.n_atoms == 43
    assert best.rw < 0.015
    truth = build_cluster("fcc", (3, 3, 3), PT_D)
    assert matched_errors(best.xyz, truth)[0] < 0.05


@pytest.mark.parametrize(
    "search, allowed",
    [
        # C1: no search, expect only decodes around the prior mean
        (False, {"prior"}),
        # C2: search and snapping, expect decodes and library shapes
        (True, {"prior", "search", "refined", "library"}),
    ],
)
def test_candidate_sources(request, search, allowed):
    if search:
        candidates = request.getfixturevalue("proposed")
    else:
        candidates = request.getfixturevalue("prior_only")[0]
    assert {c.source for c in candidates} <= allowed


def test_prior_mean_only(fcc_pdf):
    # C1: no draws and no search, expect at most the prior mean's decode,
    # fitted on the requested r range
    candidates = propose_structures(
        fcc_pdf,
        n_samples=0,
        top=3,
        search=False,
        snap=False,
        element="Pt",
        fit_range=(2.0, 20.0),
        **INSTRUMENT,
    )
    assert len(candidates) <= 1
    for c in candidates:
        assert c.sigma == 0.0 and c.source == "prior"
        assert c.r[0] >= 2.0 and c.r[-1] <= 20.0
        assert c.gcalc.size == np.count_nonzero(
            (fcc_pdf[0] >= 2.0) & (fcc_pdf[0] <= 20.0)
        )


# ---------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "kwargs",
    [
        # C1: negative number of samples, expect ValueError
        {"n_samples": -1},
        # C2: top 0, expect ValueError
        {"top": 0},
        # C3: negative top, expect ValueError
        {"top": -3, "n_samples": 10},
    ],
)
def test_bad_arguments_raise(fcc_pdf, kwargs):
    with pytest.raises(ValueError, match="n_samples >= 0 and top >= 1"):
        propose_structures(fcc_pdf, element="Pt", **kwargs)


@pytest.mark.parametrize(
    "gr",
    [
        # C1: a file that does not exist, expect PDFInputError
        "no_such_file.gr",
        # C2: an object that is no PDF, expect PDFInputError
        object(),
        # C3: G with a NaN, expect PDFInputError
        (np.arange(3000) / 100, np.r_[np.nan, np.ones(2999)]),
        # C4: G all zero, expect PDFInputError
        (np.arange(3000) / 100, np.zeros(3000)),
        # C5: r in nm, expect PDFInputError
        (np.arange(300) / 100, np.sin(np.arange(300))),
        # C6: too few points, expect PDFInputError
        ([1.0, 2.0, 3.0], [0.1, -0.2, 0.3]),
    ],
)
def test_garbage_input_raises_pdf_input_error(gr):
    with pytest.raises(PDFInputError):
        propose_structures(gr, element="Pt", **FAST)


def test_garbage_file_raises_pdf_input_error(tmp_path):
    path = tmp_path / "garbage.gr"
    path.write_text("this is not\na PDF at all\n")
    with pytest.raises(PDFInputError):
        propose_structures(path, element="Pt", **FAST)


# ------------------------------------------------------------- element
def test_missing_element_warns_and_labels_au(prior_only):
    candidates, caught = prior_only
    messages = [
        str(w.message)
        for w in caught
        if issubclass(w.category, PDFInputWarning)
    ]
    assert any("element=" in m for m in messages), messages
    assert candidates and all(c.element == "Au" for c in candidates)
    assert set(candidates[0].atoms.get_chemical_symbols()) == {"Au"}


def test_element_labels_the_atoms(proposed):
    for c in proposed:
        assert c.element == "Pt"
        assert set(c.atoms.get_chemical_symbols()) == {"Pt"}
        assert {a.element for a in c.structure} == {"Pt"}


@pytest.mark.parametrize(
    "composition, element, expected",
    [
        # C1: element given, expect it whatever the header says
        ("Au", "Pd", "Pd"),
        # C2: single-element composition, expect it
        ("Pt", None, "Pt"),
        # C3: composition with spaces, expect it stripped
        ("  Ni ", None, "Ni"),
    ],
)
def test_element_of_without_warning(composition, element, expected):
    pdf = PDFData(*library_pdf(), composition=composition)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert element_of(pdf, element) == expected


@pytest.mark.parametrize(
    "composition",
    [
        # C1: no composition, expect a warning and Au
        None,
        # C2: two elements, expect a warning and Au
        "PtNi",
        # C3: a formula with a count, expect a warning and Au
        "Pt3",
        # C4: lower-case, expect a warning and Au
        "pt",
    ],
)
def test_element_of_warns_and_falls_back_to_au(composition):
    pdf = PDFData(*library_pdf(), composition=composition)
    with pytest.warns(PDFInputWarning, match="element="):
        assert element_of(pdf, None) == "Au"


@pytest.mark.parametrize(
    "header, expected",
    [
        # C1: nothing known, expect the model's values
        ({}, (0.7, 25.0, 0.04)),
        # C2: data values, expect them
        ({"qmax": 20.0, "qmin": 1.0, "qdamp": 0.03}, (1.0, 20.0, 0.03)),
        # C3: qmin above the model's qmax, expect qmin reset to 0
        ({"qmin": 26.0}, (0.0, 25.0, 0.04)),
    ],
)
def test_instrument_parameters(header, expected):
    r = r_grid(0.0, 40.0, 0.01)
    pdf = PDFData(r, np.sin(r), **header)
    model = {**vars(DebyeParameters())}
    params = instrument_parameters(pdf, model)
    assert (params.qmin, params.qmax, params.qdamp) == expected
    assert params.biso == DebyeParameters().biso
    # the calculation grid reaches the end of the data
    assert params.rmax > r[-1]


# ------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def latent_map():
    generator = np.random.default_rng(4)
    return {"z": generator.normal([1.0, -2.0], [3.0, 0.5], (300, 2))}


def test_search_grid_covers_the_training_structures(latent_map):
    grid, step = search_grid(latent_map)
    known = np.asarray(latent_map["z"])
    assert grid.shape == (SEARCH_POINTS**2, 2)
    span = known.max(0) - known.min(0)
    np.testing.assert_allclose(grid.min(0), known.min(0) - 0.05 * span)
    np.testing.assert_allclose(grid.max(0), known.max(0) + 0.05 * span)
    np.testing.assert_allclose(step, 1.1 * span / (SEARCH_POINTS - 1))
    for axis in range(2):
        values = np.unique(grid[:, axis])
        assert values.size == SEARCH_POINTS
        np.testing.assert_allclose(np.diff(values), step[axis])


@pytest.mark.parametrize(
    "n_samples, expected_rows",
    [
        # C1: no draws, expect only the mean
        (0, 1),
        # C2: one draw, expect the mean and one point
        (1, 2),
        # C3: not a multiple of three, expect mean + all draws
        (100, 101),
    ],
)
def test_prior_points_count(n_samples, expected_rows):
    mean, sigma = np.array([0.5, -1.0]), np.array([0.2, 0.1])
    points = prior_points(mean, sigma, n_samples, np.random.default_rng(0))
    assert points.shape == (expected_rows, 2)
    np.testing.assert_array_equal(points[0], mean)


def test_prior_points_spread_grows_with_the_multiplier():
    mean, sigma = np.array([0.5, -1.0]), np.array([0.2, 0.1])
    n = 3000
    points = prior_points(mean, sigma, n, np.random.default_rng(0))[1:]
    parts = np.array_split(points, len(SIGMA_MULTIPLIERS))
    spreads = [((p - mean) / sigma).std(0) for p in parts]
    for k, spread in zip(SIGMA_MULTIPLIERS, spreads):
        np.testing.assert_allclose(spread, k, rtol=0.1)
    assert np.all(spreads[-1] > spreads[0])  # 7 sigma wider than 3 sigma
    # each group is centred on the prior mean
    for part in parts:
        np.testing.assert_allclose(
            ((part - mean) / sigma).mean(0), 0, atol=0.5
        )


def test_prior_points_depend_on_the_generator():
    mean, sigma = np.zeros(2), np.ones(2)

    def draw(seed):
        return prior_points(mean, sigma, 30, np.random.default_rng(seed))

    assert np.array_equal(draw(3), draw(3))
    assert not np.allclose(draw(3), draw(4))


@pytest.mark.parametrize(
    "centres",
    [
        # C1: one centre, expect a 5 x 5 patch around it
        np.array([[0.3, -0.7]]),
        # C2: three centres, expect three patches in order
        np.array([[0.0, 0.0], [5.0, 1.0], [-2.0, 3.0]]),
    ],
)
def test_local_points_patches(centres):
    step = np.array([0.3, 0.6])
    points = local_points(centres, step)
    assert points.shape == (25 * len(centres), 2)
    for centre, patch in zip(centres, points.reshape(-1, 25, 2)):
        np.testing.assert_allclose(patch.mean(0), centre, atol=1e-12)
        offsets = patch - centre
        np.testing.assert_allclose(np.abs(offsets).max(0), 2 * step / 3)
        assert any(np.allclose(o, 0) for o in offsets)  # the centre itself
        for axis in range(2):
            values = np.unique(np.round(offsets[:, axis] / step[axis], 9))
            np.testing.assert_allclose(values, (np.arange(5) - 2) / 3)


def unit_cluster(cluster_type="fcc", size=(2, 2, 2)):
    return in_training_units(build_cluster(cluster_type, size, 1.0))


@pytest.mark.parametrize(
    "make, expected",
    [
        # C1: three near-identical copies, expect the first one only
        (
            lambda a, b, noise: [a, a + noise, a - noise],
            [0],
        ),
        # C2: copies around a different cluster, expect one of each
        (
            lambda a, b, noise: [a, b, a + noise, b + noise],
            [0, 1],
        ),
        # C3: a copy shifted by 2 x the tolerance, expect both kept
        (
            lambda a, b, noise: [a, a + [2 * MERGE_TOLERANCE, 0, 0]],
            [0, 1],
        ),
        # C4: a copy with one atom removed, expect both kept
        (
            lambda a, b, noise: [a, a[:-1]],
            [0, 1],
        ),
        # C5: empty and one-atom decodes, expect them dropped
        (
            lambda a, b, noise: [np.zeros((0, 3)), a[:1], a, b[:1]],
            [2],
        ),
        # C6: nothing decoded, expect nothing
        (lambda a, b, noise: [], []),
    ],
)
def test_merge_equivalent(make, expected):
    a = unit_cluster("fcc", (2, 2, 2))
    b = unit_cluster("sc", (2, 2, 2))[: len(a)]
    noise = 0.01 * np.random.default_rng(0).standard_normal(a.shape)
    assert merge_equivalent(make(a, b, noise)) == expected


def test_merge_equivalent_keeps_the_first_of_each_group():
    a = unit_cluster("icosahedral", (2,))
    b = unit_cluster("hcp", (2, 2, 2))
    rng = np.random.default_rng(1)
    decoded = [b[:5], a + 0.01 * rng.standard_normal(a.shape), a, b, a]
    assert merge_equivalent(decoded) == [0, 1, 3]


@pytest.mark.parametrize(
    "true, other",
    [
        # C1: fcc data, expect fcc above sc
        (("fcc", (3, 3, 3)), ("sc", (3, 3, 3))),
        # C2: sc data, expect sc above fcc
        (("sc", (3, 3, 3)), ("fcc", (3, 3, 3))),
        # C3: hcp data, expect hcp above bcc
        (("hcp", (3, 3, 3)), ("bcc", (3, 3, 3))),
        # C4: octahedral data, expect octahedral above sc
        (("octahedral", (5,)), ("sc", (4, 4, 3))),
    ],
)
def test_proxy_prefers_the_true_cluster(true, other):
    features, _ = prior_input(*library_pdf(*true))
    truth = unit_cluster(*true)
    copy = truth + 0.02 * np.random.default_rng(0).standard_normal(truth.shape)
    scores = proxy_scores([copy, unit_cluster(*other)], features)
    assert scores.shape == (2,)
    assert np.all(np.abs(scores) <= 1 + 1e-12)
    assert scores[0] > scores[1] + 0.1


class FixedDecoder:
    """Stand-in for the network: every latent point decodes to a list."""

    def __init__(self, clusters):
        self.clusters = clusters

    def decode(self, z):
        return [self.clusters[i % len(self.clusters)] for i in range(len(z))]


def screen_clusters(data_type, data_size, clusters):
    r, g = library_pdf(data_type, data_size)
    features, d = prior_input(r, g)
    inside = r >= FIT_RANGE[0]
    z = np.arange(2 * len(clusters), dtype=float).reshape(-1, 2)
    source = [f"s{i}" for i in range(len(z))]
    return screen(
        FixedDecoder(clusters),
        z,
        source,
        features,
        d,
        (r[inside], g[inside]),
        DebyeParameters(),
    )


def test_screen_merges_and_scores_decodes():
    truth = unit_cluster("fcc", (3, 3, 3))
    other = unit_cluster("sc", (3, 3, 3))
    pool = screen_clusters("fcc", (3, 3, 3), [truth, truth, other])
    # the duplicate decode is merged away
    assert [entry.source for entry in pool] == ["s0", "s2"]
    by_source = {entry.source: entry for entry in pool}
    assert by_source["s0"].rw < 0.05
    assert by_source["s2"].rw > 0.3
    np.testing.assert_array_equal(by_source["s0"].z, [0.0, 1.0])
    np.testing.assert_array_equal(by_source["s0"].xyz, truth)


def test_screen_of_nothing_decodable_is_empty():
    single = np.zeros((1, 3))
    assert screen_clusters("fcc", (3, 3, 3), [single]) == []


@pytest.mark.parametrize(
    "cluster_type, size",
    [
        # C1: icosahedron of 55 atoms (first peak 4 % above its shortest
        # distance), expect its exact decode to screen well (Rw < 0.3)
        ("icosahedral", (3,)),
        # C2: decahedron, expect the same
        ("decahedral", (2, 2, 1)),
    ],
)
def test_exact_decode_screens_well(cluster_type, size):
    truth = unit_cluster(cluster_type, size)
    (entry,) = screen_clusters(cluster_type, size, [truth])
    assert entry.rw < 0.3


def test_distinct_structures_ignores_order_and_orientation():
    fcc = build_cluster("fcc", (2, 3, 2), 1.0)
    turned = fcc[::-1] @ np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
    octa = build_cluster("octahedral", (4,), 1.0)
    shapes = [fcc, turned, octa, fcc[:-1]]
    # C1: the reversed, rotated copy is merged; another shape and a
    # cluster with one atom less are kept
    assert distinct_structures(shapes) == [0, 2, 3]


def strained_library_pdf(label, strain=0.04, noise=0.01, seed=0):
    """(r, G) of a library shape at d = 2.77 Å stretched along one axis."""
    from diffpy.deepstruc.libraries import load_library

    (entry,) = [e for e in load_library("mmnp") if e.label == label]
    axis = np.array([1.0, 2.0, 0.5]) / np.linalg.norm([1.0, 2.0, 0.5])
    xyz = entry.xyz * 2.77
    xyz = xyz + strain * np.outer(xyz @ axis, axis)
    params = DebyeParameters(qmax=24.0, qdamp=0.04, biso=0.4)
    r, g = simulate_pdf(xyz, r_grid(0.0, 30.0, 0.01), params=params)
    rng = np.random.default_rng(seed)
    return r, g + rng.normal(0, noise * np.abs(g).max(), r.size)


@pytest.mark.parametrize("strain", [False, True])
def test_propose_never_fits_worse_than_mining(strain):
    # with strain=True, propose once ranked a 165-atom octahedral decode
    # (Rw 0.091) above the true fcc 4-5-5 shape that mining found (0.088)
    from diffpy.deepstruc import mine_library

    gr = strained_library_pdf("fcc 4-5-5")
    header = {"qmax": 24.0, "qmin": 0.7, "element": "Pt", "strain": strain}
    mined = mine_library(gr, **header)
    proposed = propose_structures(gr, n_samples=100, **header)
    assert proposed[0].rw <= mined[0].rw + 1e-12
    if strain:
        assert proposed[0].n_atoms == mined[0].n_atoms == 165
        assert proposed[0].type == "fcc"
    mined_rw = {round(c.rw, 12) for c in mined}
    from_library = [c for c in proposed if c.source == "library"]
    assert {round(c.rw, 12) for c in from_library} <= mined_rw
