"""Tests of the MMNP cluster library (diffpy.deepstruc.clusters)."""

import io
import math
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from diffpy.deepstruc import clusters
from diffpy.deepstruc.clusters import (
    CLUSTER_TYPES,
    LIBRARY_COLUMNS,
    METALLIC_RADII,
    build_cluster,
    enumerate_library,
    library_shapes,
    library_table,
    write_library_csv,
)

N_RADII = 19
HCP_CHAIN_NN = math.sqrt(1 / 3 + (clusters.HCP_C_OVER_A / 2) ** 2)


@pytest.fixture(scope="module")
def library():
    return enumerate_library()


def fingerprint(xyz):
    """Sorted pair distances rounded to 1e-3 Å, as bytes."""
    return np.rint(np.sort(pdist(xyz)) * 1000).astype(np.int64).tobytes()


def expected_nn(record):
    """Shortest distance expected in a record, from its nn_distance."""
    if record.type == "bcc":  # a = d, so the bcc neighbours are closer
        return math.sqrt(3) / 2 * record.nn_distance
    if record.type == "hcp" and record.size[:2] == (1, 1):
        return HCP_CHAIN_NN * record.nn_distance
    return record.nn_distance


def test_metals_and_types():
    assert len(METALLIC_RADII) == 28
    assert len(set(METALLIC_RADII.values())) == N_RADII
    assert CLUSTER_TYPES == (
        "sc",
        "fcc",
        "bcc",
        "hcp",
        "icosahedral",
        "decahedral",
        "octahedral",
    )


@pytest.mark.parametrize(
    "cluster_type, total, per_d",
    [
        # C1: sc, expect 361 records, 19 shapes
        ("sc", 361, 19),
        # C2: fcc, expect 171 records, 9 shapes
        ("fcc", 171, 9),
        # C3: bcc, expect 361 records, 19 shapes
        ("bcc", 361, 19),
        # C4: hcp, expect 2014 records, 106 shapes
        ("hcp", 2014, 106),
        # C5: icosahedral, expect 57 records, 3 shapes
        ("icosahedral", 57, 3),
        # C6: decahedral, expect 703 records, 37 shapes
        ("decahedral", 703, 37),
        # C7: octahedral, expect 76 records, 4 shapes
        ("octahedral", 76, 4),
    ],
)
def test_counts_per_type(library, cluster_type, total, per_d):
    records = enumerate_library(types=[cluster_type])
    assert len(records) == total
    assert all(r.type == cluster_type for r in records)
    assert Counter(r.type for r in library)[cluster_type] == total
    shapes = [s for s in library_shapes() if s.type == cluster_type]
    assert len(shapes) == per_d


def test_total_and_per_distance(library):
    assert len(library) == 3743
    by_d = Counter(r.nn_distance for r in library)
    assert len(by_d) == N_RADII
    assert set(by_d.values()) == {197}
    shapes_by_d = {}
    for r in library:
        shapes_by_d.setdefault(r.nn_distance, []).append(r.shape_id)
    for shape_ids in shapes_by_d.values():
        assert shape_ids == list(range(197))


def test_elements_stand_for_their_radius(library):
    first = {}
    for element, radius in METALLIC_RADII.items():
        first.setdefault(radius, element)
    for r in library:
        assert r.element == first[r.nn_distance / 2]
        assert r.element == r.elements[0]
        assert {METALLIC_RADII[e] for e in r.elements} == {r.nn_distance / 2}
    pt = [r for r in library if "Pt" in r.elements]
    assert len(pt) == 197 and {r.element for r in pt} == {"W"}


def test_ids_deterministic_and_unique(library):
    assert [r.id for r in library] == list(range(len(library)))
    metal_rank = {e: i for i, e in enumerate(METALLIC_RADII)}
    keys = [
        (metal_rank[r.element], CLUSTER_TYPES.index(r.type)) for r in library
    ]
    assert keys == sorted(keys)
    assert (library[0].type, library[0].size, library[0].element) == (
        "sc",
        (1, 1, 1),
        "Sc",
    )
    clusters._library.cache_clear()
    rebuilt = enumerate_library()
    assert rebuilt == library
    assert all(np.array_equal(a.xyz, b.xyz) for a, b in zip(rebuilt, library))


def test_no_duplicate_fingerprints(library):
    prints = {fingerprint(r.xyz) for r in library}
    assert len(prints) == len(library)


def test_sizes_within_limits(library):
    assert all(5 <= r.n_atoms <= 200 for r in library)


@pytest.mark.parametrize(
    "n_atoms, kept, duplicate",
    [
        # C1: 7-atom sc (1,1,1) = bcc (2,2,2), expect labelled sc
        (7, ("sc", (1, 1, 1)), ("bcc", (2, 2, 2))),
        # C2: 19-atom fcc (2,2,2) = octahedral length 3, expect fcc
        (19, ("fcc", (2, 2, 2)), ("octahedral", (3,))),
    ],
)
def test_shared_cluster_labels(library, n_atoms, kept, duplicate):
    d = 2 * METALLIC_RADII["Pt"]
    twin = build_cluster(*duplicate, d)
    assert len(twin) == n_atoms
    matches = [
        r
        for r in library
        if r.nn_distance == d
        and r.n_atoms == n_atoms
        and fingerprint(r.xyz) == fingerprint(twin)
    ]
    assert [(r.type, r.size) for r in matches] == [kept]
    assert all((r.type, r.size) != duplicate for r in library)


@pytest.mark.parametrize(
    "cluster_type",
    # C1-C7: each type, expect min distance = d (bcc: sqrt(3)/2 d;
    # hcp 1x1 columns: 1.0000028 d)
    CLUSTER_TYPES,
)
def test_nearest_neighbour_distance(library, cluster_type):
    records = [r for r in library if r.type == cluster_type]
    sample = records[:: max(1, len(records) // 40)] + records[-1:]
    for r in sample:
        assert pdist(r.xyz).min() == pytest.approx(expected_nn(r), abs=1e-6)


def test_hcp_column_distance():
    xyz = build_cluster("hcp", (1, 1, 3), 1.0)
    assert pdist(xyz).min() == pytest.approx(1.0000028, abs=1e-7)


def test_lattice_constants(library):
    factor = {"sc": 1, "bcc": 1, "hcp": 1}
    for r in library[:197]:
        expected = factor.get(r.type, math.sqrt(2)) * r.nn_distance
        assert r.lattice_constant == pytest.approx(expected)


def test_records_match_build_cluster(library):
    for r in library[::97]:
        xyz = build_cluster(r.type, r.size, r.nn_distance)
        np.testing.assert_allclose(r.xyz, xyz, atol=1e-12)


def test_records_are_read_only(library):
    record = library[5]
    assert not record.xyz.flags.writeable
    with pytest.raises(ValueError):
        record.xyz[0, 0] = 1.0
    with pytest.raises(AttributeError):
        record.id = 7


@pytest.mark.parametrize(
    "cluster_type, size",
    [
        # C1: fcc layers on the grid, expect centred, canonical order
        ("fcc", (2, 3, 4)),
        # C2: octahedral off the grid (344 atoms), expect same
        ("octahedral", 8),
        # C3: decahedral with re-entrance r, expect same
        ("decahedral", (2, 2, 1)),
    ],
)
def test_build_cluster_canonical(cluster_type, size):
    xyz = build_cluster(cluster_type, size, 2.6)
    np.testing.assert_allclose(xyz.mean(axis=0), 0.0, atol=1e-12)
    r = np.round(np.linalg.norm(xyz, axis=1) / 2.6, 6)
    assert np.all(np.diff(r) >= 0)
    unit = build_cluster(cluster_type, size, 1.0)
    np.testing.assert_allclose(unit * 2.6, xyz, atol=1e-12)


@pytest.mark.parametrize(
    "cluster_type, size, nn_distance, match",
    [
        # C1: unknown type, expect error listing valid types
        ("diamond", (1, 1, 1), 2.5, "valid types: sc, fcc"),
        # C2: two layers for fcc, expect size error
        ("fcc", (1, 2), 2.5, "fcc size"),
        # C3: zero layers, expect size error
        ("sc", (0, 1, 1), 2.5, "sc size"),
        # C4: decahedral with p = 0, expect size error
        ("decahedral", (0, 1, 1), 2.5, "decahedral size"),
        # C5: negative r, expect size error
        ("decahedral", (1, 1, -1), 2.5, "decahedral size"),
        # C6: float shells, expect size error
        ("icosahedral", 2.5, 2.5, "icosahedral size"),
        # C7: zero distance, expect distance error
        ("hcp", (1, 2, 3), 0.0, "nn_distance"),
        # C8: NaN distance, expect distance error
        ("octahedral", 3, float("nan"), "nn_distance"),
    ],
)
def test_build_cluster_errors(cluster_type, size, nn_distance, match):
    with pytest.raises(ValueError, match=match):
        build_cluster(cluster_type, size, nn_distance)


@pytest.mark.parametrize(
    "types",
    [
        # C1: unknown type name, expect error listing valid types
        ["fcc", "diamond"],
        # C2: a plain wrong string, expect the same error
        "cubic",
    ],
)
def test_enumerate_library_bad_type(types):
    with pytest.raises(ValueError, match="valid types: sc, fcc, bcc"):
        enumerate_library(types=types)


def test_enumerate_library_string_type():
    assert len(enumerate_library(types="fcc")) == 171


def test_library_shapes(library):
    shapes = library_shapes()
    assert len(shapes) == 197
    assert [s.id for s in shapes] == list(range(197))
    assert all(s.shape_id == s.id for s in shapes)
    assert all(s.element == "" and s.elements == () for s in shapes)
    assert all(s.nn_distance == 1.0 for s in shapes)
    for r in library[-197:]:
        np.testing.assert_allclose(
            r.xyz, shapes[r.shape_id].xyz * r.nn_distance, atol=1e-12
        )
    assert shapes[0].to_atoms().get_chemical_symbols() == ["X"] * 7


def test_to_atoms(library):
    atoms = library[0].to_atoms()
    assert atoms.get_chemical_formula() == "Sc7"
    np.testing.assert_allclose(atoms.positions, library[0].xyz)
    assert library[0].to_atoms("Hf").get_chemical_formula() == "Hf7"


def test_library_table(library):
    rows = library_table(library[:3])
    assert [tuple(row) for row in rows] == [LIBRARY_COLUMNS] * 3
    decahedral = enumerate_library(types=["decahedral"])[0]
    row = library_table([decahedral])[0]
    assert row["size"] == "-".join(map(str, decahedral.size))
    assert row["n_atoms"] == decahedral.n_atoms


@pytest.mark.parametrize(
    "use_path",
    [
        # C1: a file path, expect header + 171 rows
        True,
        # C2: an open text stream, expect header + 171 rows
        False,
    ],
)
def test_write_library_csv(tmp_path, use_path):
    records = enumerate_library(types=["fcc"])
    if use_path:
        path = tmp_path / "library.csv"
        write_library_csv(records, path)
        text = path.read_text()
    else:
        stream = io.StringIO()
        write_library_csv(records, stream)
        text = stream.getvalue()
    lines = text.splitlines()
    assert lines[0] == ",".join(LIBRARY_COLUMNS)
    assert len(lines) == 1 + 171
    assert lines[1].split(",")[:4] == ["19", "fcc", "1-2-2", "Sc"]


def test_import_is_light():
    code = (
        "import sys, diffpy.deepstruc.clusters; "
        "assert 'ase' not in sys.modules and 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_grid_cache_round_trip(tmp_path, monkeypatch):
    # the disk cache must give back exactly the clusters ASE built
    monkeypatch.setattr(clusters, "_GRID_CACHE", tmp_path / "grid.npz")
    assert clusters._load_grid() is None
    built = clusters._build_grid()
    clusters._save_grid(built)
    loaded = clusters._load_grid()
    assert len(loaded) == len(built)
    for (t1, s1, x1), (t2, s2, x2) in zip(built, loaded):
        assert (t1, s1) == (t2, s2)
        np.testing.assert_array_equal(x1, x2)


def test_unreadable_grid_cache_is_ignored(tmp_path, monkeypatch):
    broken = tmp_path / "grid.npz"
    broken.write_bytes(b"not a numpy file")
    monkeypatch.setattr(clusters, "_GRID_CACHE", broken)
    assert clusters._load_grid() is None
