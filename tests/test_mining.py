"""Tests of library mining: fitting every cluster of a library to a PDF."""

import functools
import math

import numpy as np
import pytest
from ase.cluster import Decahedron, Icosahedron, Octahedron
from ase.db import connect
from ase.io import write

from diffpy.deepstruc import mine_library
from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf
from diffpy.deepstruc.libraries import Library, LibraryError, load_library
from diffpy.deepstruc.matching import nn_distance
from diffpy.deepstruc.mining import ShapeFit, fit_shapes
from diffpy.deepstruc.pdfdata import PDFInputWarning
from diffpy.deepstruc.plausibility import FitQualityWarning

R = np.arange(3000) / 100
#: Settings of the test data, unknown to the miner unless a test says.
HIDDEN = DebyeParameters(qmax=23.0, qdamp=0.03, biso=0.45)


def _pdf(xyz, params=HIDDEN):
    return R, simulate_pdf(xyz, R, params=params)[1]


@pytest.mark.parametrize(
    "label", ["icosahedral 4", "decahedral 2-3-1", "fcc 3-4-4", "bcc 4-4-7"]
)
def test_library_cluster_at_a_new_lattice_constant_is_recovered(label):
    library = load_library("mmnp")
    (truth,) = [e for e in library if e.label == label]
    gr = _pdf(truth.xyz * 2.83)
    with pytest.warns(PDFInputWarning, match="qmax is not known"):
        candidates = mine_library(gr, element="Pt")
    best = candidates[0]
    assert best.label == label
    assert best.n_atoms == truth.n_atoms
    assert best.nearest_reference.type == truth.type
    assert best.rank == 1 and best.rw < 0.1
    assert nn_distance(best.xyz) == pytest.approx(2.83, rel=0.01)
    assert len(candidates) == 10
    assert [c.rank for c in candidates] == list(range(1, 11))
    assert all(a.rw <= b.rw for a, b in zip(candidates, candidates[1:]))
    assert len({c.label for c in candidates}) == 10
    for candidate in candidates:
        assert candidate.source == "library"
        assert candidate.element == "Pt"
        assert candidate.latent.shape == (2,)
        assert np.isnan(candidate.latent).all() and math.isnan(candidate.sigma)
        assert isinstance(candidate.flags, tuple)
        assert candidate.gcalc.shape == candidate.gobs.shape


def test_instrument_parameters_from_the_caller_are_used():
    # with qdamp unknown, a long hcp rod is confused with longer ones (the
    # damping looks like a size effect); given qdamp, it fits exactly
    (truth,) = [e for e in load_library("mmnp") if e.label == "hcp 2-4-7"]
    gr = _pdf(truth.xyz * 2.75)
    blind = mine_library(gr, element="Pt", top=3, qmax=23.0)
    told = mine_library(gr, element="Pt", top=3, qmax=23.0, qdamp=0.03)
    assert told[0].label == "hcp 2-4-7"
    assert told[0].params.qdamp == 0.03 and told[0].params.qmax == 23.0
    assert blind[0].params.qdamp == DebyeParameters().qdamp
    assert told[0].rw < 1e-3 < blind[0].rw


def _rotated(atoms, angle):
    atoms = atoms.copy()
    atoms.rotate(angle, (1, 2, 3), center="COP")
    return atoms


def _user_clusters():
    return {
        "ico55.xyz": Icosahedron("Au", 3),
        "deca.xyz": _rotated(Decahedron("Au", 3, 2, 1), 31),
        "octa.cif": _rotated(Octahedron("Au", 5, 1), 17),
        "octa_big.cif": Octahedron("Au", 6, 2),
        "deca_ino.xyz": Decahedron("Au", 3, 3, 0),
    }


def test_user_folder_of_xyz_and_cif_files(tmp_path):
    for name, atoms in _user_clusters().items():
        if name.endswith(".cif"):
            atoms = atoms.copy()
            atoms.set_cell([40.0] * 3)
            atoms.center()
            atoms.pbc = True
        write(tmp_path / name, atoms)
    truth = _user_clusters()["octa.cif"].get_positions() * 1.021
    for library in (tmp_path, load_library(tmp_path)):
        candidates = mine_library(
            _pdf(truth), library=library, element="Au", top=3, qmax=23.0
        )
        assert [c.label for c in candidates][0] == "octa.cif"
        assert candidates[0].n_atoms == len(truth)
        assert len(candidates) == 3


def test_ase_database_library(tmp_path):
    path = tmp_path / "cores.db"
    with connect(path) as db:
        for name, atoms in _user_clusters().items():
            db.write(atoms, name=name.split(".")[0])
    truth = _user_clusters()["deca.xyz"].get_positions() * 0.97
    params = DebyeParameters(qmax=26.0, qdamp=0.045, biso=0.7)
    best = mine_library(
        _pdf(truth, params), library=path, element="Au", qmax=26.0
    )[0]
    assert best.label == "deca"
    assert best.n_atoms == len(truth)


def test_large_library_finds_a_large_octahedron():
    library = load_library("large")
    (truth,) = [e for e in library if e.label == "octahedral 11-3"]
    assert truth.n_atoms > 500
    params = DebyeParameters(qmax=25.0, qdamp=0.04, biso=0.5)
    best = mine_library(
        _pdf(truth.xyz * 2.77, params), library="large", element="Pt", qmax=25
    )[0]
    assert best.label == "octahedral 11-3"


def test_progress_reports_blocks(monkeypatch, capsys):
    calls = []
    library = load_library("mmnp")
    gr = _pdf(library[50].xyz * 2.8)
    mine = functools.partial(mine_library, gr, element="Pt", top=2, qmax=23.0)
    mine(progress=lambda *a: calls.append(a))
    assert calls[-1] == (197, 197)
    assert all(done <= total == 197 for done, total in calls)
    assert capsys.readouterr().err == ""
    mine(progress=True)
    assert (
        "mining mmnp: 197/197 clusters screened\n" in capsys.readouterr().err
    )
    monkeypatch.setattr("diffpy.deepstruc.mining.PROGRESS_MIN_CLUSTERS", 100)
    mine()
    assert "197/197" in capsys.readouterr().err
    mine(progress=False)
    assert capsys.readouterr().err == ""


def test_fit_shapes_ranks_plain_coordinates():
    shapes = [
        Octahedron("Pt", 4).get_positions(),
        Icosahedron("Pt", 3).get_positions(),
        Decahedron("Pt", 2, 2, 1).get_positions(),
    ]
    r, g = _pdf(shapes[1] * 1.01)
    d = nn_distance(shapes[1]) * 1.01
    mined = fit_shapes(shapes, r, g, DebyeParameters(qmax=23.0), d, top=2)
    fits = mined.fits
    assert mined.type_rw == {}  # plain coordinates have no type
    assert [type(f) for f in fits] == [ShapeFit, ShapeFit]
    assert fits[0].index == 1 and fits[0].rw < fits[1].rw
    assert fits[0].xyz.shape == (55, 3)
    assert np.allclose(fits[0].xyz.mean(0), 0, atol=1e-9)
    assert fits[0].screen_rw < 0.2


def test_poor_fits_warn():
    tiny = Library.from_structures([Icosahedron("Pt", 2)], ["Pt13"])
    gr = _pdf(Octahedron("Pt", 7).get_positions())
    with pytest.warns(FitQualityWarning):
        candidates = mine_library(gr, library=tiny, element="Pt", qmax=23)
    assert [c.label for c in candidates] == ["Pt13"]


def test_bad_arguments():
    gr = _pdf(load_library("mmnp")[10].xyz * 2.8)
    with pytest.raises(ValueError, match="top >= 1"):
        mine_library(gr, top=0, qmax=23.0)
    with pytest.raises(LibraryError, match="Unknown library 'nope'"):
        mine_library(gr, library="nope", element="Pt", qmax=23.0)


def test_least_rw_lies_between_grid_points():
    from diffpy.deepstruc.mining import SCREEN_UISOS, SCREEN_ZOOMS, _least_rw

    i, j = np.meshgrid(
        np.arange(len(SCREEN_ZOOMS)),
        np.arange(len(SCREEN_UISOS)),
        indexing="ij",
    )
    squares = 0.02 * (i - 3.4) ** 2 + 0.01 * (j - 1.7) ** 2 + 0.0009
    rw = np.sqrt(np.stack([squares.ravel(), squares.ravel() + 0.01]))
    least, zoom, uiso, best = _least_rw(rw, SCREEN_ZOOMS, SCREEN_UISOS)
    assert [list(b) for b in best] == [[3, 3], [2, 2]]
    assert least == pytest.approx([0.03, math.sqrt(0.0109)], rel=1e-3)
    step = SCREEN_ZOOMS[1] - SCREEN_ZOOMS[0]
    assert zoom == pytest.approx(SCREEN_ZOOMS[3] + 0.4 * step, abs=1e-4)
    ratio = SCREEN_UISOS[1] / SCREEN_UISOS[0]
    assert uiso == pytest.approx(SCREEN_UISOS[1] * ratio**0.7, rel=0.01)


def test_large_libraries_are_screened_twice(monkeypatch):
    from diffpy.deepstruc import mining

    calls = []

    def spy(*args):
        calls.append(len(args[2]))
        return refine(*args)

    refine = mining._refine
    monkeypatch.setattr(mining, "_refine", spy)
    monkeypatch.setattr(mining, "REFINE_MIN_CLUSTERS", 100)
    monkeypatch.setattr(mining, "N_REFINE", 16)
    (truth,) = [e for e in load_library("mmnp") if e.label == "hcp 2-4-7"]
    gr = _pdf(truth.xyz * 2.75)
    best = mine_library(gr, element="Pt", qmax=23.0, qdamp=0.03)[0]
    assert calls == [197]
    assert best.label == "hcp 2-4-7" and best.rw < 1e-3
