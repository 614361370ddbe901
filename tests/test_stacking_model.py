"""Tests of the stacking-fault model in the plugin: ``model="stacking"``,
``model="auto"``, snapping to a given library and the candidate types."""

import csv
import warnings

import numpy as np
import pytest

from diffpy.deepstruc.cli import main
from diffpy.deepstruc.debye import r_grid, simulate_pdf
from diffpy.deepstruc.libraries import load_library
from diffpy.deepstruc.mining import mine_library
from diffpy.deepstruc.model import available_models, load_model
from diffpy.deepstruc.plausibility import FitQualityWarning
from diffpy.deepstruc.propose import (
    decode_type,
    model_library,
    propose_structures,
)
from diffpy.deepstruc.stacking import KINDS, stacking_sequence

pytest.importorskip("onnxruntime")

#: Pt: d = 2 x metallic radius 1.39 Å (off the training d of 2.54 Å).
PT_D = 2.77
INSTRUMENT = {"qmax": 25.0, "qdamp": 0.04, "qmin": 0.7}
FAST = {"n_samples": 100, "top": 4, "element": "Pt", **INSTRUMENT}
#: A faulted particle of the stacking library (58 atoms, a twin: ccchccc).
FAULTED = "stacking ABCABACBA disc-4"


def library_particle(label):
    """Coordinates (Å, at the Pt d) of a stacking-library particle."""
    for entry in load_library("stacking"):
        if entry.label == label:
            return entry.xyz * PT_D
    raise KeyError(label)


def poor_pdf():
    """A PDF that no candidate fits well: a noisy damped sine."""
    r = r_grid(0.0, 30.0, 0.01)
    rng = np.random.default_rng(0)
    g = np.sin(2.6 * r) * np.exp(-r / 20) + 0.1 * rng.standard_normal(r.size)
    return r, g


def hc_up_to_reversal(hc):
    return min(hc, hc[::-1])


@pytest.fixture(scope="module")
def faulted():
    """The faulted particle and its PDF."""
    xyz = library_particle(FAULTED)
    return xyz, simulate_pdf(xyz, r_grid(0.0, 30.0, 0.01))


@pytest.fixture(scope="module")
def stacking_run(faulted):
    return propose_structures(faulted[1], model="stacking", **FAST)


def test_the_stacking_model_is_shipped_with_its_library():
    assert {"mmnp", "stacking"} <= set(available_models())
    net = load_model("stacking")
    assert model_library(net) == "stacking"
    assert net.metadata["types"] == list(KINDS)
    assert model_library(load_model("mmnp")) == "mmnp"


def test_stacking_model_finds_the_faulted_sequence(faulted, stacking_run):
    xyz, _ = faulted
    truth = stacking_sequence(xyz)
    assert truth.kind == "faulted"
    best = stacking_run[0]
    assert best.n_atoms == len(xyz)
    assert best.stacking is not None
    assert hc_up_to_reversal(best.stacking.hc) == hc_up_to_reversal(truth.hc)
    assert best.rw < 0.05


def test_stacking_candidates_carry_model_and_class(stacking_run):
    assert [c.rank for c in stacking_run] == list(
        range(1, len(stacking_run) + 1)
    )
    for candidate in stacking_run:
        assert candidate.model == "stacking"
        expected = (
            "" if candidate.stacking is None else candidate.stacking.kind
        )
        assert candidate.type == expected
    weights = stacking_run[0].type_weights
    assert set(weights) <= set(KINDS)
    assert sum(weights.values()) == pytest.approx(1.0)
    # the weights follow the least Rw per class
    rw = stacking_run[0].type_rw
    assert max(weights, key=weights.get) == min(rw, key=rw.get)


def test_auto_ranks_the_candidates_of_both_models(faulted, stacking_run):
    _, gr = faulted
    mmnp = propose_structures(gr, model="mmnp", **FAST)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # each model fits it poorly; the warning comes once, not per model
        propose_structures(poor_pdf(), model="auto", **FAST)
    assert len([w for w in caught if w.category is FitQualityWarning]) == 1
    both = propose_structures(gr, model="auto", **FAST)
    assert [c.rank for c in both] == list(range(1, len(both) + 1))
    assert all(a.rw <= b.rw for a, b in zip(both, both[1:]))
    assert {c.model for c in both} <= {"mmnp", "stacking"}
    assert both[0].rw == pytest.approx(min(mmnp[0].rw, stacking_run[0].rw))
    # one set of weights over the types of both libraries
    weights = both[0].type_weights
    assert "faulted" in weights and "icosahedral" in weights
    assert all(c.type_weights == weights for c in both)


def test_snapping_to_a_given_library(faulted):
    _, gr = faulted
    candidates = propose_structures(
        gr, model="mmnp", library="stacking", **FAST
    )
    snapped = [c for c in candidates if c.source == "library"]
    assert snapped
    for candidate in snapped:
        assert candidate.label.startswith("stacking ")
        assert candidate.type in KINDS
        # not a shape of the MMNP training set: no latent point
        assert np.isnan(candidate.latent).all()
    assert candidates[0].label == FAULTED


def test_decode_type_follows_the_library(stacking_run):
    candidate = stacking_run[0]
    assert decode_type(candidate, "stacking") == candidate.stacking.kind
    assert decode_type(candidate, "mmnp") == candidate.nearest_reference.type


def test_mined_candidates_have_their_library_types(faulted):
    _, gr = faulted
    mined = mine_library(
        gr, library="stacking", top=3, element="Pt", **INSTRUMENT
    )
    assert mined[0].label == FAULTED
    assert mined[0].type == "faulted"
    assert all(c.type in KINDS and c.model == "" for c in mined)


def test_cli_auto_writes_a_latent_map_per_model(faulted, tmp_path):
    xyz, _ = faulted
    data = tmp_path / "faulted.gr"
    structure = tmp_path / "faulted.xyz"
    with open(structure, "w") as stream:
        stream.write(f"{len(xyz)}\nfaulted\n")
        stream.writelines(f"Pt {x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in xyz)
    assert main(["simulate", str(structure), "-o", str(data)]) == 0
    out = tmp_path / "out"
    argv = ["propose", str(data), "-o", str(out), "--model", "auto"]
    assert main(argv + ["--samples", "50", "--top", "3"]) == 0
    assert (out / "latent_map_mmnp.png").stat().st_size > 0
    assert (out / "latent_map_stacking.png").stat().st_size > 0
    assert not (out / "latent_map.png").exists()
    with open(out / "candidates.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert {row["model"] for row in rows} <= {"mmnp", "stacking"}
    best = rows[0]
    assert best["type_weight"] != ""
    with open(out / "type_weights.csv", newline="") as stream:
        rows = csv.DictReader(stream)
        weights = {row["type"]: float(row["weight"]) for row in rows}
    assert float(best["type_weight"]) == pytest.approx(
        weights[best["type"]], rel=1e-3
    )
