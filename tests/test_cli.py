"""Tests of the ``deepstruc`` command, run in-process through ``main``."""

import csv
import hashlib
import json
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest

from diffpy.deepstruc.cli import EXIT_CODES, command_line_words, main
from diffpy.deepstruc.debye import simulate_pdf
from diffpy.deepstruc.model import load_model
from diffpy.deepstruc.pdfdata import load_pdf
from diffpy.deepstruc.report import CANDIDATE_COLUMNS, example_pdf
from diffpy.deepstruc.version import __version__
from diffpy.utils.parsers import load_data

FAST = ["--samples", "50", "--top", "3"]


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def expected_files(top=3):
    names = {"candidates.csv", "latent_map.png", "run.json"}
    names |= {"type_weights.csv", "type_weights.png"}
    for k in range(1, top + 1):
        names |= {f"candidate_{k:02d}{s}" for s in (".xyz", ".cif", ".fgr")}
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
    assert rw == sorted(rw)
    assert all(row["element"] == "Pt" for row in rows)
    for row in rows:
        # the Rw in the table is the Rw of the fit in the .fgr file
        fit = load_data(str(example_run / f"candidate_{row['rank']:0>2}.fgr"))
        _, gobs, gcalc, gdiff = fit.T
        assert np.sqrt(gdiff @ gdiff / (gobs @ gobs)) == pytest.approx(
            float(row["rw"]), rel=1e-4
        )
        assert gdiff == pytest.approx(gobs - gcalc, abs=1e-6)
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
    assert "Qmax:  22.00 Å⁻¹ (header)" in text
    assert "qdamp: 0.0400 Å⁻¹ (model default; not in the file" in text
    assert "'~' and the nearest library geometry" in text
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
    top_level = {"summary.csv", "summary.png", "run.json"}
    assert {p.name for p in output.iterdir()} == folders | top_level
    run = json.loads((output / "run.json").read_text())
    assert [i["folder"] for i in run["inputs"]] == [stem, f"{stem}-2"]
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
    assert main(args) == 1
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
    assert main(args) == 130
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (output / "notes.txt").read_text() == "old results"


def test_bad_input_fails_before_writing(tmp_path, capsys):
    # one input; several go on past a bad one (tests/test_batch.py)
    bad = tmp_path / "garbage.gr"
    bad.write_text("this is\nnot a PDF\n")
    output = tmp_path / "out"
    args = ["propose", str(bad), "-o", str(output)]
    assert main(args) == 1
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


def test_library_csv_of_the_stacking_set(tmp_path, capsys):
    from diffpy.deepstruc.stacking import stacking_particles

    table = tmp_path / "stacking.csv"
    assert main(["library", "--set", "stacking", "-o", str(table)]) == 0
    rows = read_csv(table)
    particles = stacking_particles()
    assert len(rows) == len(particles)
    assert {row["kind"] for row in rows} == {"fcc", "hcp", "faulted"}
    for row, particle in zip(rows[::97], particles[::97]):
        assert row["sequence"] == particle.stacking.abc
        assert row["hc"] == particle.stacking.hc
        assert int(row["n_atoms"]) == particle.n_atoms
    capsys.readouterr()
    assert main(["library", "--set", "stacking", "--type", "fcc"]) == 1
    assert "'kind' column" in capsys.readouterr().err


def test_run_json_says_how_the_results_were_made(example_run):
    run = json.loads((example_run / "run.json").read_text())
    assert run["command"].startswith("deepstruc propose ")
    assert run["version"] == __version__
    assert run["input"]["path"] == str(example_pdf())
    digest = hashlib.sha256(example_pdf().read_bytes()).hexdigest()
    assert run["input"]["sha256"] == digest
    assert run["input"]["qmax"] == {"value": 21.998245281, "source": "header"}
    assert run["input"]["qmin"] == {"value": 1.0, "source": "header"}
    assert run["input"]["qdamp"]["source"] == "model default"
    assert run["element"] == {"value": "Pt", "source": "header"}
    model = load_model("mmnp")
    for entry in model.metadata["files"].values():
        onnx = model.folder / entry["path"]
        assert run["model"]["sha256"][entry["path"]] == (
            hashlib.sha256(onnx.read_bytes()).hexdigest()
        )
    assert run["settings"]["seed"] == 0 and run["settings"]["n_samples"] == 50
    assert run["timings_s"]["solve"] > 0


def test_propose_options_reach_the_run(tmp_path):
    output = tmp_path / "out"
    args = [
        "propose",
        str(example_pdf()),
        "-o",
        str(output),
        *FAST,
        *("--qmin", "0.9", "--qdamp", "0.035", "--element", "Au"),
        *("--rmin", "2.5", "--rmax", "20", "--no-search", "--no-snap"),
    ]
    assert main(args) == 0
    run = json.loads((output / "run.json").read_text())
    assert run["input"]["qmin"] == {"value": 0.9, "source": "user"}
    assert run["input"]["qdamp"] == {"value": 0.035, "source": "user"}
    assert run["element"] == {"value": "Au", "source": "user"}
    assert run["settings"]["search"] is False
    assert run["settings"]["snap"] is False
    rows = read_csv(output / "candidates.csv")
    assert {row["element"] for row in rows} == {"Au"}
    assert {row["source"] for row in rows} == {"prior"}
    r = load_data(str(output / "candidate_01.fgr"))[:, 0]
    assert r[0] >= 2.5 and r[-1] <= 20
    header = load_data(str(output / "candidate_01.fgr"), headers=True)
    assert (header["qmin"], header["qdamp"]) == (0.9, 0.035)


def test_example_runs_again_in_a_fresh_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["example", *FAST]) == 0
    assert main(["example", *FAST]) == 0
    assert "writing to deepstruc-example-2" in capsys.readouterr().out
    first = (tmp_path / "deepstruc-example" / "candidates.csv").read_text()
    second = tmp_path / "deepstruc-example-2" / "candidates.csv"
    assert second.read_text() == first


@pytest.mark.parametrize(
    "args, message",
    [
        (["simulate", "missing.xyz", "-o", "x.gr"], "Cannot read"),
        (["propose", "missing.gr", "-o", "out"], "does not exist"),
        (["propose", "-o", "out", "x.gr", "--model", "nope"], "No model"),
    ],
)
def test_errors_share_one_format_and_exit_code(
    tmp_path, monkeypatch, capsys, args, message
):
    monkeypatch.chdir(tmp_path)
    if "x.gr" in args:
        shutil.copy(example_pdf(), tmp_path / "x.gr")
    assert main(args) == EXIT_CODES["error"]
    err = capsys.readouterr().err
    assert err.startswith("deepstruc: error: ") and message in err
    assert "Traceback" not in err


def test_usage_errors_exit_with_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["propose"])
    assert exit_info.value.code == EXIT_CODES["usage"]


def test_warnings_use_command_line_words(tmp_path, capsys):
    data = tmp_path / "no-header.gr"
    pdf = load_pdf(example_pdf())
    np.savetxt(data, np.column_stack([pdf.r, pdf.g]))
    assert main(["propose", str(data), "-o", str(tmp_path / "o"), *FAST]) == 0
    err = capsys.readouterr().err
    assert "deepstruc: warning: " in err
    assert "--element Pt" in err and "--qmax ..." in err
    assert "element='" not in err and "qmax=" not in err


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Please pass element='Pt' (or", "Please pass --element Pt (or"),
        ("pass qmax=... (the Qmax", "pass --qmax ... (the Qmax"),
        ("qdamp=0.04, then", "--qdamp 0.04, then"),
        ("Using qmax = 25 as passed", "Using qmax = 25 as passed"),
        ("xtype='d'", "xtype='d'"),
    ],
)
def test_command_line_words(text, expected):
    assert command_line_words(text) == expected


def test_help_shows_units_and_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["propose", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--seed", "--qmin", "--qdamp", "--element", "--no-search"):
        assert option in text
    assert "(default: 0)" in text and "(default: 1.5)" in text
    assert "Qmax in Å⁻¹" in text and "fit up to r in Å" in text


def test_closed_pipe_ends_quietly(tmp_path):
    script = (
        "import sys; from diffpy.deepstruc.cli import main; "
        "sys.exit(main(['library']))"
    )
    shell = f"{shlex.quote(sys.executable)} -c {shlex.quote(script)} | head -3"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", shell],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert len(result.stdout.splitlines()) == 3
    assert result.stderr == ""
    assert result.returncode == EXIT_CODES["broken pipe"]


def test_mine_writes_the_propose_outputs_for_a_user_folder(tmp_path):
    from ase.cluster import Icosahedron, Octahedron
    from ase.io import write

    folder = tmp_path / "cores"
    folder.mkdir()
    truth = Icosahedron("Pt", 3)
    write(folder / "ico55.xyz", truth)
    write(folder / "octa.cif", Octahedron("Pt", 5, cutoff=1))
    r, g = simulate_pdf(truth)
    data = tmp_path / "ico.gr"
    np.savetxt(data, np.column_stack([r, g]))
    output = tmp_path / "mined"
    args = ["mine", str(data), "-o", str(output), "--library", str(folder)]
    assert main([*args, "--top", "2", "--element", "Pt"]) == 0
    names = {p.name for p in output.iterdir()}
    assert "latent_map.png" not in names
    assert {"run.json", "candidates.csv", "candidate_01.fgr"} <= names
    rows = read_csv(output / "candidates.csv")
    assert [row["label"] for row in rows] == ["ico55.xyz", "octa.cif"]
    assert {row["source"] for row in rows} == {"library"}
    assert float(rows[0]["rw"]) < 0.02
    run = json.loads((output / "run.json").read_text())
    assert run["library"] == {"name": str(folder), "n_clusters": 2}
    assert run["command"].startswith("deepstruc mine ")
