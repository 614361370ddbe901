"""Structure and fit files of a candidate, read back by other programs."""

import warnings

import numpy as np
import pytest
from ase.io import read as ase_read
from scipy.spatial.distance import pdist

from diffpy.deepstruc.candidate import IMAGE_CLEARANCE, Candidate
from diffpy.deepstruc.cli import main
from diffpy.deepstruc.clusters import library_shapes
from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf
from diffpy.deepstruc.fitting import fit_cluster
from diffpy.deepstruc.pdfdata import load_pdf
from diffpy.structure import loadStructure

#: Extension, readers that support it, distance tolerance (Å).
FORMATS = [
    (".cif", ("diffpy", "ase"), 1e-3),
    (".stru", ("diffpy",), 1e-3),
    (".pdb", ("diffpy", "ase"), 2e-3),  # the format keeps 3 decimals
    (".xyz", ("diffpy", "ase"), 1e-3),
    (".extxyz", ("ase",), 1e-3),
]


@pytest.fixture(scope="module")
def candidate():
    """A decahedral cluster at the Pt bulk distance, fitted to its PDF."""
    shape = next(
        s
        for s in library_shapes()
        if s.type == "decahedral" and s.n_atoms > 40
    )
    params = DebyeParameters(qmax=24.0, qdamp=0.03, biso=0.5, rmin=1.5)
    xyz = shape.xyz * 2.77  # shapes come at unit first-shell distance
    r, g = simulate_pdf(xyz, params=params)
    fit = fit_cluster(xyz, r, g, params)
    return Candidate(
        xyz=(xyz - xyz.mean(0)) * fit.zoom,
        element="Pt",
        rw=fit.rw,
        scale=fit.scale,
        zoom=fit.zoom,
        uiso=fit.uiso,
        latent=np.zeros(2),
        sigma=0.0,
        source="library",
        r=r,
        gobs=g,
        gcalc=fit.gcalc,
        params=params,
        rank=1,
    )


def sorted_distances(xyz):
    return np.sort(pdist(np.asarray(xyz, float)))


def read_positions(path, reader):
    if reader == "diffpy":
        return loadStructure(str(path)).xyz_cartn
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ASE must read it without doubts
        return ase_read(path).get_positions()


@pytest.mark.parametrize(
    "suffix, reader",
    [(s, reader) for s, readers, _ in FORMATS for reader in readers],
)
def test_structure_files_round_trip(candidate, tmp_path, suffix, reader):
    tolerance = dict((s, t) for s, _, t in FORMATS)[suffix]
    path = candidate.write(tmp_path / f"candidate{suffix}")
    xyz = read_positions(path, reader)
    assert xyz.shape == candidate.xyz.shape
    assert np.abs(
        sorted_distances(xyz) - sorted_distances(candidate.xyz)
    ).max() == pytest.approx(0, abs=tolerance)


def test_cif_holds_box_fractions_title_and_uiso(candidate, tmp_path):
    path = candidate.write(tmp_path / "c.cif")
    structure = loadStructure(str(path))
    box = candidate.box
    assert structure.lattice.abcABG() == pytest.approx((box,) * 3 + (90,) * 3)
    assert (structure.xyz > 0).all() and (structure.xyz < 1).all()
    assert structure.U[:, 0, 0] == pytest.approx(candidate.uiso, rel=1e-4)
    assert "deepstruc candidate 1" in path.read_text()


def test_box_keeps_images_beyond_the_pdf_range(candidate):
    """No periodic image of any atom within 30 Å of any atom."""
    structure = candidate.structure
    xyz = structure.xyz_cartn
    box = candidate.box
    shifts = np.array(
        [(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)]
    )
    shifts = shifts[np.abs(shifts).sum(1) > 0] * box
    images = (xyz[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    closest = np.linalg.norm(xyz[:, None] - images[None], axis=-1).min()
    assert closest >= max(IMAGE_CLEARANCE, candidate.r[-1])


@pytest.mark.parametrize("suffix", [s for s, _, _ in FORMATS])
def test_simulate_of_a_written_file_equals_the_candidate_pdf(
    candidate, tmp_path, suffix
):
    path = candidate.write(tmp_path / f"c{suffix}")
    out = tmp_path / "c.gr"
    p = candidate.params
    args = ["simulate", str(path), "-o", str(out), "--rmin", "1.5"]
    for key, value in (
        ("qmin", p.qmin),
        ("qmax", p.qmax),
        ("qdamp", p.qdamp),
        ("delta2", p.delta2),
        ("biso", 8 * np.pi**2 * candidate.uiso),
        ("rmax", p.rmax),
    ):
        args += [f"--{key}", repr(float(value))]
    assert main(args) == 0
    pdf = load_pdf(out)
    g = np.interp(candidate.r, pdf.r, pdf.g)
    expected = candidate.gcalc / candidate.scale
    assert np.abs(g - expected).max() < 2e-3 * np.abs(expected).max()


def test_unknown_extension_is_refused(candidate, tmp_path):
    with pytest.raises(ValueError, match=r"\.pdb.*\.stru"):
        candidate.write(tmp_path / "c.mol2")


def test_fit_file_reads_back(candidate, tmp_path):
    from diffpy.utils.parsers import load_data

    path = candidate.write_fit(tmp_path / "c.fgr")
    table = load_data(str(path))
    assert table.shape == (len(candidate.r), 4)
    r, gobs, gcalc, gdiff = table.T
    assert r == pytest.approx(candidate.r)
    assert gobs == pytest.approx(candidate.gobs, abs=1e-6)
    assert gcalc == pytest.approx(candidate.gcalc, abs=1e-6)
    assert gdiff == pytest.approx(gobs - gcalc, abs=1e-6)
    header = load_data(str(path), headers=True)
    assert header["rw"] == pytest.approx(candidate.rw)
    assert header["qmax"] == pytest.approx(candidate.params.qmax)
    assert header["n_atoms"] == candidate.n_atoms
    pdf = load_pdf(path)
    assert pdf.qmax == pytest.approx(candidate.params.qmax)
    assert pdf.g == pytest.approx(candidate.gobs, abs=1e-6)
