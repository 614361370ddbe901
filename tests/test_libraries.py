"""Tests of the cluster libraries that mining reads."""

from collections import Counter

import numpy as np
import pytest
from ase import Atoms
from ase.cluster import Decahedron, Icosahedron, Octahedron
from ase.db import connect
from ase.io import write

from diffpy.deepstruc.clusters import CLUSTER_TYPES
from diffpy.deepstruc.libraries import (
    LARGE_COUNTS,
    LARGE_MAX_ATOMS,
    LARGE_MIN_ATOMS,
    Library,
    LibraryError,
    build_large_cluster,
    load_library,
    unit_cluster,
)
from diffpy.deepstruc.matching import nn_distance


def _is_unit(entry):
    return abs(nn_distance(entry.xyz) - 1) < 1e-9 and np.allclose(
        entry.xyz.mean(0), 0, atol=1e-9
    )


def test_mmnp_library_holds_the_197_shapes_at_unit_distance():
    library = load_library("mmnp")
    assert library.name == "mmnp"
    assert len(library) == 197
    assert len({entry.label for entry in library}) == 197
    assert {entry.type for entry in library} == set(CLUSTER_TYPES)
    assert all(_is_unit(entry) for entry in library)
    assert library[0].label == f"{library[0].type} " + "-".join(
        str(s) for s in library[0].size
    )
    # the pair tables agree with the coordinates
    entry = library[100]
    assert entry.pairs.counts.sum() == entry.n_atoms * (entry.n_atoms - 1) / 2
    assert entry.pairs.distances.min() == pytest.approx(1.0, abs=0.05)
    assert load_library("mmnp") is library


def test_bcc_shapes_are_rescaled_to_their_first_shell():
    # bcc blocks are built with a = d; their first shell is sqrt(3)/2 a
    bcc = [e for e in load_library("mmnp") if e.type == "bcc"]
    assert bcc
    assert all(e.pairs.distances.min() == pytest.approx(1.0) for e in bcc)


def test_large_library_has_the_documented_counts_and_is_deterministic():
    library = load_library("large")
    assert Counter(entry.type for entry in library) == LARGE_COUNTS
    sizes = [entry.n_atoms for entry in library]
    assert LARGE_MIN_ATOMS <= min(sizes)
    assert 2000 < max(sizes) <= LARGE_MAX_ATOMS
    assert len({entry.label for entry in library}) == len(library)
    keys = {
        (e.n_atoms, tuple(np.round(e.pairs.distances, 3))) for e in library
    }
    assert len(keys) == len(library)
    # every octahedron cutoff is there, e.g. all of length 7
    labels = {entry.label for entry in library}
    assert {f"octahedral 7-{c}" for c in range(4)} <= labels
    assert "icosahedral 9" in labels  # the 2057-atom Mackay icosahedron
    # a fresh build gives the stored clusters, atom for atom
    for index in (0, 40, len(library) // 2, len(library) - 1):
        entry = library[index]
        fresh = unit_cluster(build_large_cluster(entry.type, entry.size))
        assert np.array_equal(fresh, entry.xyz)
        assert _is_unit(entry)


def test_large_octahedra_match_ase():
    xyz = build_large_cluster("octahedral", (9, 2))
    assert len(xyz) == len(Octahedron("Pt", 9, 2))


def _pt_clusters():
    return {
        "ico.xyz": Icosahedron("Pt", 3),
        "deca.xyz": Decahedron("Pt", 3, 2, 1),
        "octa.cif": Octahedron("Pt", 5, 1),
        "sub/octa2.cif": Octahedron("Pt", 6, 2),
    }


def _write_folder(folder):
    for name, atoms in _pt_clusters().items():
        path = folder / name
        path.parent.mkdir(exist_ok=True)
        if name.endswith(".cif"):
            atoms = atoms.copy()
            atoms.set_cell([40.0] * 3)
            atoms.center()
            atoms.pbc = True
        write(path, atoms)
    (folder / "README.txt").write_text("not a structure")
    return folder


def test_folder_library_reads_xyz_and_cif_files(tmp_path):
    library = load_library(_write_folder(tmp_path))
    assert library.name == str(tmp_path)
    assert [e.label for e in library] == [
        "deca.xyz",
        "ico.xyz",
        "octa.cif",
        "sub/octa2.cif",
    ]
    sizes = {e.label: e.n_atoms for e in library}
    assert sizes == {k: len(v) for k, v in _pt_clusters().items()}
    assert all(_is_unit(entry) for entry in library)
    assert all(e.type == "" and e.pairs is None for e in library)


def test_folder_library_reads_frames_stru_and_pdb(tmp_path):
    frames = [Icosahedron("Au", 2), Octahedron("Au", 3)]
    write(tmp_path / "movie.extxyz", frames)
    write(tmp_path / "core.pdb", Octahedron("Au", 4))
    from diffpy.structure import Atom, Structure

    xyz = Decahedron("Au", 2, 2, 0).get_positions()
    Structure([Atom("Au", p) for p in xyz]).write(
        str(tmp_path / "core.stru"), "pdffit"
    )
    library = load_library(tmp_path)
    labels = {e.label: e.n_atoms for e in library}
    assert labels == {
        "core.pdb": 44,
        "core.stru": len(xyz),
        "movie.extxyz@0": 13,
        "movie.extxyz@1": 19,
    }


def test_ase_database_library(tmp_path):
    path = tmp_path / "cores.db"
    with connect(path) as db:
        db.write(Icosahedron("Au", 3), name="Au55", type="icosahedral")
        db.write(Octahedron("Au", 4))
    library = load_library(path)
    assert [e.label for e in library] == ["Au55", "cores.db:2"]
    assert [e.type for e in library] == ["icosahedral", ""]
    assert [e.n_atoms for e in library] == [55, 44]
    assert all(_is_unit(entry) for entry in library)


def test_library_from_structures_rescales_and_labels():
    ico = Icosahedron("Pt", 2).get_positions() * 1.7
    library = Library.from_structures([ico, Octahedron("Pt", 4)])
    assert [e.label for e in library] == ["0", "1"]
    assert all(_is_unit(entry) for entry in library)
    with pytest.raises(LibraryError, match="single.*1 atom"):
        Library.from_structures([np.zeros((1, 3))], ["single"])


@pytest.mark.parametrize(
    "setup, match",
    [
        (lambda p: p / "missing", "Unknown library .*missing"),
        (lambda p: p, "holds no structure files"),
        (lambda p: _text(p / "notes.txt"), "neither a folder nor an ASE"),
        (lambda p: _text(p / "bad.xyz", "3\n\nAu 0 0\n") and p, "bad.xyz"),
        (lambda p: _one_atom(p) and p, "lone.xyz holds 1 atom"),
        (lambda p: _stacked(p) and p, "stacked.xyz has atoms on top"),
        (lambda p: _empty_db(p / "empty.db"), "empty.db holds no"),
    ],
)
def test_bad_libraries_give_clear_errors(tmp_path, setup, match):
    with pytest.raises(LibraryError, match=match):
        load_library(setup(tmp_path))


def _text(path, text="hello"):
    path.write_text(text)
    return path


def _one_atom(folder):
    write(folder / "lone.xyz", Atoms("Au", positions=[[0, 0, 0]]))
    return True


def _stacked(folder):
    write(folder / "stacked.xyz", Atoms("Au2", positions=np.zeros((2, 3))))
    return True


def _empty_db(path):
    connect(path).count()
    return path


def test_bad_file_error_names_the_file_among_good_ones(tmp_path):
    _write_folder(tmp_path)
    _text(tmp_path / "sub" / "broken.cif", "data_x\n_cell_length_a oops\n")
    with pytest.raises(LibraryError, match="sub/broken.cif"):
        load_library(tmp_path)
