"""Tests of many PDFs at once: diffpy.deepstruc.batch and its CLI.

The tests that need Dask share one LocalCluster of two single-threaded
worker processes and are skipped when Dask is not installed; the serial
path, resuming and failures are tested without it.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from diffpy.deepstruc import mining
from diffpy.deepstruc.batch import (
    BatchResult,
    mine_many,
    plot_series,
    propose_many,
    series_axis,
)
from diffpy.deepstruc.cli import EXIT_CODES, input_files, main
from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf
from diffpy.deepstruc.libraries import load_library
from diffpy.deepstruc.model import load_model
from diffpy.deepstruc.pdfdata import PDFInputError, write_pdf
from diffpy.deepstruc.report import SUMMARY_COLUMNS, example_pdf

FAST = dict(n_samples=50, top=3)
CLI_FAST = ["--samples", "50", "--top", "3"]
#: Library shape and temperature of each simulated input.
SERIES = (("sc 3-3-3", 300.0), ("hcp 1-2-7", 350.0), ("hcp 2-4-7", 400.0))


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def same_candidates(first, second, rel=0.0):
    """Equal candidates; ``rel`` allows for another BLAS thread count."""
    assert [c.n_atoms for c in first] == [c.n_atoms for c in second]
    assert [c.label for c in first] == [c.label for c in second]
    for a, b in zip(first, second):
        assert a.rw == pytest.approx(b.rw, rel=rel, abs=0)
        assert np.allclose(a.xyz, b.xyz, rtol=rel, atol=0)
        if rel == 0 or a.type_weights is None:
            assert a.type_weights == b.type_weights
        else:
            assert a.type_weights == pytest.approx(b.type_weights, rel=1e-9)


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """Three simulated Pt PDFs with a temperature in their headers."""
    folder = tmp_path_factory.mktemp("series")
    shapes = {entry.label: entry for entry in load_library("mmnp")}
    rng = np.random.default_rng(7)
    params = DebyeParameters()
    paths = []
    for label, temperature in SERIES:
        r, g = simulate_pdf(shapes[label].xyz * 2.77, params=params)
        g = g + rng.normal(0, 0.01 * np.abs(g).max(), g.size)
        path = folder / f"Pt_{temperature:.0f}K.gr"
        header = {
            "composition": "Pt",
            "qmax": params.qmax,
            "qmin": params.qmin,
            "temperature": temperature,
        }
        write_pdf(path, r, g, header)
        paths.append(path)
    bad = folder / "broken.gr"
    bad.write_text("no numbers here\n")
    return paths, bad


@pytest.fixture(scope="module")
def serial(series):
    """propose_many without a client, a bad file in the middle."""
    paths, bad = series
    return list(propose_many([paths[0], bad, paths[1]], **FAST))


@pytest.fixture(scope="module")
def client():
    """A client of two single-threaded worker processes."""
    distributed = pytest.importorskip(
        "distributed",
        reason="Dask is not installed (pip install 'diffpy.deepstruc[dask]')",
    )
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as made,
    ):
        yield made


def test_serial_results_come_in_order_and_keep_errors(serial, series):
    paths, bad = series
    assert [r.index for r in serial] == [0, 1, 2]
    assert [r.source for r in serial] == [paths[0], bad, paths[1]]
    assert [r.ok for r in serial] == [True, False, True]
    failed = serial[1]
    assert isinstance(failed.error, PDFInputError) and not failed.candidates
    for result in (serial[0], serial[2]):
        assert isinstance(result, BatchResult) and result.seconds > 0
        assert [c.rank for c in result.candidates] == [1, 2, 3]
    assert serial[0].candidates[0].label == "sc 3-3-3"


def test_unknown_keyword_fails_before_any_work(series):
    with pytest.raises(TypeError, match="n_sample"):
        propose_many(series[0], n_sample=50)
    with pytest.raises(ValueError, match="chunk_size"):
        mine_many(series[0], chunk_size=0)


def test_dask_results_equal_serial_results(client, serial, series):
    paths, bad = series
    sources = [paths[0], bad, paths[1]]
    results = list(propose_many(sources, client=client, **FAST))
    assert sorted(r.index for r in results) == [0, 1, 2]
    for result in results:
        expected = serial[result.index]
        assert result.source == expected.source
        assert type(result.error) is type(expected.error)
        # the workers' numpy runs single-threaded, which may change the
        # last digits of sums
        same_candidates(expected.candidates, result.candidates, rel=1e-12)
        assert [str(w.message) for w in result.warnings] == [
            str(w.message) for w in expected.warnings
        ]
    # each worker process loaded the model (its ONNX sessions) once
    loads = client.run(lambda: load_model.cache_info().misses)
    assert 1 in loads.values() and all(n <= 1 for n in loads.values())


def test_chunked_mining_equals_whole_library(client):
    whole = client.submit(
        mining.mine_library, example_pdf(), top=3, progress=False
    ).result()
    (result,) = mine_many([example_pdf()], client=client, chunk_size=50, top=3)
    assert result.ok
    same_candidates(whole, result.candidates)


def test_chunked_mining_with_second_screening(monkeypatch):
    # the 197 shapes get the finer second screening above 100 clusters
    monkeypatch.setattr(mining, "REFINE_MIN_CLUSTERS", 100)
    whole = mining.mine_library(example_pdf(), top=3, progress=False)
    (result,) = mine_many([example_pdf()], chunk_size=100, top=3)
    assert result.ok
    same_candidates(whole, result.candidates)


def test_batch_run_records_a_failed_input(series, tmp_path, capsys):
    paths, bad = series
    output = tmp_path / "out"
    pattern = str(paths[0].parent / "Pt_*K.gr")
    args = ["propose", pattern, str(bad), "-o", str(output), *CLI_FAST]
    assert main(args) == EXIT_CODES["error"]
    err = capsys.readouterr().err
    assert f"deepstruc: warning: {bad} failed" in err
    rows = read_csv(output / "summary.csv")
    assert tuple(rows[0]) == SUMMARY_COLUMNS
    assert [row["input"] for row in rows] == [*map(str, paths), str(bad)]
    assert [row["status"] for row in rows] == ["ok", "ok", "ok", "failed"]
    assert rows[3]["error"].startswith("PDFInputError: ")
    assert rows[3]["rw"] == "" and rows[0]["error"] == ""
    for row in rows[:3]:
        assert float(row["rw"]) < 0.3 and int(row["n_atoms"]) > 0
        assert row["nearest_type"] and row["source"]
        assert row["second_best"].count(", ") == 2
        assert float(row["type_weight"]) > 0
    assert rows[0]["nearest_type"] == "sc"
    assert rows[0]["stacking"] == ""  # simple cubic has no stacking
    assert (output / "summary.png").stat().st_size > 0
    run = json.loads((output / "run.json").read_text())
    assert run["status"] == "finished" and run["n_failed"] == 1
    assert run["inputs"][3]["error"] == rows[3]["error"]
    assert run["inputs"][0]["input"]["header"]["temperature"] == 300.0
    folders = {p.name for p in output.iterdir() if p.is_dir()}
    assert folders == {p.stem for p in paths}
    for name in folders:
        assert json.loads((output / name / "run.json").read_text())["complete"]


def test_batch_run_on_a_running_scheduler(client, series, tmp_path):
    paths, _ = series
    output = tmp_path / "mined"
    address = client.scheduler.address
    args = ["mine", *map(str, paths), "-o", str(output), "--top", "2"]
    assert main([*args, "--scheduler", address]) == 0
    rows = read_csv(output / "summary.csv")
    assert [row["status"] for row in rows] == ["ok"] * 3
    assert [row["label"] for row in rows] == [label for label, _ in SERIES]
    assert (output / "summary.png").is_file()


@pytest.mark.skipif(os.name != "posix", reason="uses SIGKILL")
def test_rerun_after_a_kill_keeps_complete_inputs(series, tmp_path):
    paths, _ = series
    output = tmp_path / "out"
    args = ["mine", *map(str, paths), "-o", str(output), "--top", "2"]
    command = [sys.executable, "-m", "diffpy.deepstruc.cli", *args]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    first = output / paths[0].stem / "run.json"
    while not first.exists() and process.poll() is None:
        assert time.monotonic() < deadline, "no results after 120 s"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert first.exists()
    missing = [p for p in paths if not (output / p.stem).exists()]
    assert missing, "the run finished before it was killed"
    done = [p for p in paths if (output / p.stem).exists()]
    # a folder without the completion mark is redone
    partial = output / missing[0].stem
    partial.mkdir()
    (partial / "run.json").write_text("{}")
    kept = first.read_text(), first.stat().st_mtime_ns

    assert main(args) == 0
    assert (first.read_text(), first.stat().st_mtime_ns) == kept
    rows = read_csv(output / "summary.csv")
    assert [row["status"] for row in rows] == ["ok"] * 3
    run = json.loads((output / "run.json").read_text())
    kept_inputs = [r.get("kept", False) for r in run["inputs"]]
    assert kept_inputs == [p in done for p in paths]
    for path in paths:
        record = json.loads((output / path.stem / "run.json").read_text())
        assert record["complete"] and record["input"]["path"] == str(path)
    assert not list(output.glob(".deepstruc-*"))

    # --force redoes every input
    assert main([*args, "--force"]) == 0
    assert first.stat().st_mtime_ns != kept[1]


def test_series_plot_follows_the_temperature(series, tmp_path):
    headers = [{"Temperature": 300.0}, None, {"temperature": 350}]
    key, values = series_axis(headers)
    assert key == "temperature"
    assert values[0] == 300.0 and np.isnan(values[1]) and values[2] == 350.0
    assert series_axis(headers, "pressure") is None
    assert series_axis([{"T": 5.0}, {"T": "hot"}]) is None
    rows = [
        {"status": "ok", "folder": "a", "nearest_type": "fcc"}
        | {"n_atoms": "55", "rw": "0.1"},
        {"status": "failed", "folder": "b"},
        {"status": "ok", "folder": "c", "nearest_type": "icosahedral"}
        | {"n_atoms": "147", "rw": "0.2"},
    ]
    for x in (None, [300.0, 325.0, 350.0]):
        fig = plot_series(rows, x, "temperature")
        fig.savefig(tmp_path / "series.png")
        assert len(fig.axes) == 3


def test_input_files_expand_patterns_and_lists(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a2.gr", "a1.gr", "b.gr"):
        (data / name).write_text("")
    listing = data / "list.txt"
    listing.write_text("# inputs\nb.gr\n\na*.gr\n")
    monkeypatch.chdir(tmp_path)
    expected = [data / "a1.gr", data / "a2.gr"]
    relative = [p.relative_to(tmp_path) for p in expected]
    assert input_files(["data/a*.gr"]) == relative
    assert input_files([], listing) == [data / "b.gr", *expected]
    with pytest.raises(ValueError, match="No file matches"):
        input_files(["data/c*.gr"])
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="names no files"):
        input_files([], tmp_path / "empty.txt")
    with pytest.raises(SystemExit) as exit_info:
        main(["mine", "-o", "out"])
    assert exit_info.value.code == EXIT_CODES["usage"]


def test_scheduler_without_dask_says_how_to_get_it(
    series, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "distributed", None)
    output = tmp_path / "out"
    args = ["mine", *map(str, series[0][:2]), "-o", str(output)]
    assert main([*args, "--scheduler", "local:2"]) == EXIT_CODES["error"]
    err = capsys.readouterr().err
    assert err.startswith("deepstruc: error: ") and "pip install" in err
    assert not output.exists()
