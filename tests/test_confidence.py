"""Tests of the structure-type weights (diffpy.deepstruc.confidence)."""

import csv
import json
import math
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from ase.cluster import Icosahedron

from diffpy.deepstruc import mine_library, propose_structures
from diffpy.deepstruc.confidence import (
    TEMPERATURE,
    best_rw_by_type,
    noise_level,
    noise_rw,
    type_weights,
)
from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf
from diffpy.deepstruc.libraries import Library, load_library
from diffpy.deepstruc.report import run_mine

CALIBRATION = (
    Path(__file__).resolve().parents[1]
    / "onnx_models"
    / "mmnp"
    / "type_calibration.json"
)
R = np.arange(3000) / 100
HIDDEN = DebyeParameters(qmax=24.0, qdamp=0.03, biso=0.4)


def _pdf(xyz, noise=0.0, seed=0):
    g = simulate_pdf(xyz, R, params=HIDDEN)[1]
    rng = np.random.default_rng(seed)
    return R, g + rng.normal(0.0, noise * np.abs(g).max(), g.size)


def test_weights_sum_to_one_largest_first():
    w = type_weights({"fcc": 0.12, "hcp": 0.10, "sc": 0.5}, 0.05, 200.0)
    assert list(w) == ["hcp", "fcc", "sc"]
    assert math.isclose(sum(w.values()), 1.0)
    assert type_weights({}, 0.05, 200.0) == {}


def test_equal_fits_get_equal_weights():
    w = type_weights({"fcc": 0.1, "octahedral": 0.1}, 0.01, 300.0)
    assert w == pytest.approx({"fcc": 0.5, "octahedral": 0.5})


def test_more_noise_or_temperature_makes_weights_cautious():
    rw = {"fcc": 0.10, "hcp": 0.11}

    def fcc(rw_noise, temperature):
        return type_weights(rw, rw_noise, 200.0, temperature)["fcc"]

    sharp = fcc(0.01, 1.0)
    assert sharp > 0.99
    assert fcc(0.30, 1.0) < sharp
    assert 0.5 < fcc(0.01, TEMPERATURE) < sharp
    # the noise sets the scale only once it exceeds the best fit's misfit
    assert fcc(0.05, 1.0) == fcc(0.01, 1.0)


def test_best_rw_by_type_skips_untyped_clusters():
    best = best_rw_by_type(["fcc", "", "fcc", "hcp"], [0.3, 0.01, 0.2, 0.4])
    assert best == {"fcc": 0.2, "hcp": 0.4}


def test_noise_level_is_the_residual_beyond_the_particle():
    rng = np.random.default_rng(1)
    r = np.arange(150, 3000) / 100
    gobs = np.sin(r) * np.exp(-r / 5) + rng.normal(0, 0.02, r.size)
    small = SimpleNamespace(
        r=r, gobs=gobs, gcalc=np.sin(r) * np.exp(-r / 5), xyz=R[:10, None]
    )
    assert noise_level(small) == pytest.approx(0.02, rel=0.1)
    # a particle that fills the range: the last quarter gives the level
    big = SimpleNamespace(**{**vars(small), "xyz": np.array([[-20.0], [20]])})
    assert noise_level(big) == pytest.approx(0.02, rel=0.1)
    assert noise_rw(np.ones(100), 0.1) == pytest.approx(0.1)


def test_propose_gives_confident_weights_to_the_true_type():
    truth = Icosahedron("Pt", 4).get_positions() * 1.01
    candidates = propose_structures(
        _pdf(truth, noise=0.01), qmax=24.0, element="Pt", n_samples=100
    )
    weights = candidates[0].type_weights
    assert next(iter(weights)) == "icosahedral"
    assert weights["icosahedral"] > 0.9
    assert math.isclose(sum(weights.values()), 1.0)
    assert all(c.type_weights == weights for c in candidates)
    assert candidates[0].type_rw["icosahedral"] == pytest.approx(
        candidates[0].rw
    )


def test_noisier_data_get_less_confident_weights():
    truth = load_library("mmnp")[60].xyz * 2.8
    gr = _pdf(truth, noise=0.01)
    quiet = mine_library(gr, qmax=24.0, element="Pt")[0].type_weights
    loud = mine_library(gr, qmax=24.0, element="Pt", noise=1.0)
    assert max(loud[0].type_weights.values()) < max(quiet.values())


def test_no_weights_without_typed_library_shapes():
    truth = Icosahedron("Pt", 3).get_positions()
    gr = _pdf(truth)
    untyped = Library.from_structures([truth, truth * 1.1], ["a", "b"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mined = mine_library(gr, library=untyped, qmax=24.0, element="Pt")
        decoded = propose_structures(
            gr, qmax=24.0, element="Pt", n_samples=50, snap=False
        )
    assert mined[0].type_weights is None and mined[0].type_rw is None
    assert decoded[0].type_weights is None


def test_outputs_hold_the_weights(tmp_path):
    truth = load_library("mmnp")[120].xyz * 2.9
    r, g = _pdf(truth, noise=0.01)
    data = tmp_path / "data.gr"
    np.savetxt(data, np.column_stack([r, g]), header="qmax = 24\nPt")
    run_mine([data], tmp_path / "out", element="Pt")
    with open(tmp_path / "out" / "type_weights.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # four significant digits each: the seven round off by 3.5e-4 at most
    total = sum(float(row["weight"]) for row in rows)
    assert total == pytest.approx(1.0, abs=3.5e-4)
    assert len(rows) == 7
    with open(tmp_path / "out" / "candidates.csv", newline="") as f:
        first = next(csv.DictReader(f))
    assert float(first["type_weight"]) == pytest.approx(
        float(rows[0]["weight"]), rel=1e-3
    )
    assert (tmp_path / "out" / "type_weights.png").stat().st_size > 0


@pytest.mark.skipif(
    not CALIBRATION.exists(), reason=f"{CALIBRATION} is not in this checkout"
)
def test_shipped_temperature_is_the_calibrated_one():
    fitted = json.loads(CALIBRATION.read_text())["temperature"]
    assert TEMPERATURE == float(f"{fitted:.2g}")


def test_noise_given_on_the_command_line(tmp_path, capsys):
    from diffpy.deepstruc.cli import main
    from diffpy.deepstruc.report import example_pdf

    out = tmp_path / "mined"
    args = ["mine", str(example_pdf()), "-o", str(out), "--top", "2"]
    assert main([*args, "--noise", "0.5"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["noise"] == 0.5
    with open(out / "type_weights.csv", newline="") as f:
        loud = max(float(row["weight"]) for row in csv.DictReader(f))
    quiet = mine_library(example_pdf(), top=2)[0].type_weights
    assert loud < max(quiet.values())
    capsys.readouterr()
    assert main([*args[:3], str(tmp_path / "bad"), "--noise", "-1"]) == 1
    assert "noise" in capsys.readouterr().err
    with pytest.raises(ValueError, match="noise"):
        propose_structures(example_pdf(), noise=float("nan"))
