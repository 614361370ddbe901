"""Tests of the ``deepstruc`` command, run in-process through ``main``."""

import csv
import shutil

import numpy as np
import pytest

from diffpy.deepstruc.cli import main
from diffpy.deepstruc.pdfdata import load_pdf
from diffpy.deepstruc.report import CANDIDATE_COLUMNS, example_pdf

FAST = ["--samples", "50", "--top", "3"]


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def expected_files(top=3):
    names = {"candidates.csv", "latent_map.png"}
    for k in range(1, top + 1):
        names |= {f"candidate_{k:02d}.xyz", f"candidate_{k:02d}.cif"}
        names.add(f"fit_{k:02d}.png")
    return names


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    """The output folder of ``propose`` on the bundled example."""
    output = tmp_path_factory.mktemp("propose") / "out"
    assert main(["propose", str(example_pdf()), "-o", str(output), *FAST]) == 0
    return output


def test_propose_writes_results(example_run):
    assert {p.name for p in example_run.iterdir()} == expected_files()
    rows = read_csv(example_run / "candidates.csv")
    assert tuple(rows[0]) == CANDIDATE_COLUMNS
    assert [row["rank"] for row in rows] == ["1", "2", "3"]
    rw = [float(row["rw"]) for row in rows]
    assert rw == sorted(rw) and rw[0] < 0.6
    assert all(row["element"] == "Pt" for row in rows)
    xyz = (example_run / "candidate_01.xyz").read_text().splitlines()
    assert int(xyz[0]) == int(rows[0]["n_atoms"])
    assert not list(example_run.parent.glob(".deepstruc-*"))


def test_example_repeats_propose_and_prints_summary(
    example_run, tmp_path, capsys
):
    output = tmp_path / "again"
    assert main(["example", "-o", str(output), *FAST]) == 0
    first = (example_run / "candidates.csv").read_text()
    assert (output / "candidates.csv").read_text() == first
    text = capsys.readouterr().out
    assert f"input: {example_pdf()}" in text
    assert "Qmax:  22.00 Å⁻¹" in text
    assert "nearest reference" in text
    assert str(output) in text


def test_two_inputs_get_subfolders_and_summary(tmp_path):
    twin = tmp_path / "twin" / example_pdf().name
    twin.parent.mkdir()
    shutil.copy(example_pdf(), twin)
    output = tmp_path / "out"
    args = ["propose", str(example_pdf()), str(twin), "-o", str(output)]
    assert main([*args, *FAST]) == 0
    stem = example_pdf().stem
    folders = {stem, f"{stem}-2"}
    assert {p.name for p in output.iterdir()} == folders | {"summary.csv"}
    for name in folders:
        assert {p.name for p in (output / name).iterdir()} == expected_files()
    summary = read_csv(output / "summary.csv")
    assert [row["folder"] for row in summary] == [stem, f"{stem}-2"]
    assert summary[1]["input"] == str(twin)
    assert summary[0]["rw"] == summary[1]["rw"]


def test_existing_output_is_kept_without_force(tmp_path, capsys):
    output = tmp_path / "out"
    output.mkdir()
    (output / "notes.txt").write_text("keep me")
    args = ["propose", str(example_pdf()), "-o", str(output), *FAST]
    assert main(args) == 2
    assert "Please choose another folder or pass --force" in (
        capsys.readouterr().err
    )
    assert [p.name for p in output.iterdir()] == ["notes.txt"]
    assert (output / "notes.txt").read_text() == "keep me"


def test_force_replaces_output(tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "notes.txt").write_text("old results")
    args = ["propose", str(example_pdf()), "-o", str(output), *FAST]
    assert main([*args, "--force"]) == 0
    assert {p.name for p in output.iterdir()} == expected_files()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_interruption_keeps_old_output(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(
        "diffpy.deepstruc.report.propose_structures", interrupt
    )
    output = tmp_path / "out"
    output.mkdir()
    (output / "notes.txt").write_text("old results")
    args = ["propose", str(example_pdf()), "-o", str(output), "--force"]
    with pytest.raises(KeyboardInterrupt):
        main(args)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (output / "notes.txt").read_text() == "old results"


def test_bad_input_fails_before_writing(tmp_path, capsys):
    bad = tmp_path / "garbage.gr"
    bad.write_text("this is\nnot a PDF\n")
    output = tmp_path / "out"
    args = ["propose", str(example_pdf()), str(bad), "-o", str(output)]
    assert main(args) == 2
    assert str(bad) in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["garbage.gr"]


def test_simulate_header_round_trip(tmp_path):
    from ase.cluster import Icosahedron
    from ase.io import write

    cluster = tmp_path / "ico.xyz"
    write(cluster, Icosahedron("Pt", 2))
    gr = tmp_path / "ico.gr"
    params = {
        "qmin": 0.5,
        "qmax": 20.0,
        "qdamp": 0.03,
        "delta2": 1.5,
        "biso": 0.4,
        "rmin": 1.0,
        "rmax": 25.0,
        "rstep": 0.02,
    }
    options = [f"--{key}={value}" for key, value in params.items()]
    assert main(["simulate", str(cluster), "-o", str(gr), *options]) == 0
    pdf = load_pdf(gr)
    for key, value in params.items():
        assert pdf.metadata[key] == value
    assert (pdf.qmax, pdf.qmin, pdf.qdamp) == (20.0, 0.5, 0.03)
    assert pdf.r[0] == 1.0 and pdf.r[-1] < 25.0
    assert np.allclose(np.diff(pdf.r), 0.02)


def test_library_csv(tmp_path):
    table = tmp_path / "x.csv"
    assert main(["library", "--type", "fcc", "-o", str(table)]) == 0
    lines = table.read_text().splitlines()
    assert len(lines) == 172
    assert all(row["type"] == "fcc" for row in read_csv(table))
