"""Tests of the blind stacking evaluation (``training/evaluate_stacking``).

A tiny stacking model (40 particles, one epoch) is trained and exported
in a temporary folder, as in ``test_training.py``; the methods run on
three test PDFs against a small library.  Skipped without the training
extra or outside a clone of the repository.
"""

import itertools
import json
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT

EXTRA = "the training extra is not installed; pip install '.[training]'"
torch = pytest.importorskip("torch", reason=f"torch: {EXTRA}")
pytest.importorskip("yaml", reason=f"PyYAML: {EXTRA}")
pytest.importorskip("tqdm", reason=f"tqdm: {EXTRA}")
if not (REPO_ROOT / "training" / "evaluate_stacking.py").is_file():
    pytest.skip(
        "training/ is not here; it is only in a clone of the repository",
        allow_module_level=True,
    )
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from diffpy.deepstruc.libraries import Library, load_library  # noqa: E402
from diffpy.deepstruc.stacking import (  # noqa: E402
    KINDS,
    stacking_particles,
    stacking_sequence,
)
from training import evaluate_stacking as ev  # noqa: E402
from training.metrics_page import render  # noqa: E402

# the tiny model fits poorly, which is scored, not warned about
pytestmark = pytest.mark.filterwarnings(
    "ignore::diffpy.deepstruc.plausibility.FitQualityWarning"
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """Folder of a stacking model trained on 40 particles for one epoch."""
    from training import dataset
    from training.export import export
    from training.train import load_config, train

    root = tmp_path_factory.mktemp("stacking")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dataset, "CACHE_DIR", root / "cache")
        path = REPO_ROOT / "training" / "configs" / "stacking.yaml"
        config = load_config(path)
        config["out_dir"] = str(root / "run")
        config["data"].update(subset=40, n_augment=1)
        config["train"].update(
            epochs=1, polish_epochs=1, validate_every=1, checkpoint_every=1
        )
        train(config)
        out = export(config, out_dir=root / "model")
    yield out
    torch.set_num_threads(threads)


def test_varied_particles_are_new_and_of_their_class():
    # every class, 5-200 atoms, layers of 3 or more, pair distances
    # unlike the library's and each other's, the class found again
    particles = ev.varied_particles(2, np.random.default_rng(1))
    assert [p.kind for p in particles] == [k for k in KINDS for _ in "ab"]
    library = {ev.pair_key(p.xyz) for p in stacking_particles()}
    keys = {ev.pair_key(p.xyz) for p in particles}
    assert len(keys) == len(particles) and not keys & library
    for p in particles:
        assert 5 <= len(p.xyz) <= 200
        assert ev.layer_counts(p.xyz).min() >= 3
        assert p.index is None
        assert stacking_sequence(p.xyz).kind == p.kind
        assert p.label.split()[2] in {s.name for s in ev.VARIED_SHAPES}


def test_core_on_three_cases(tiny_model, tmp_path):
    # a random-split test particle, the same particle in a library that
    # holds it (mine must find it exactly), and a varied particle
    metadata = json.loads((tiny_model / "metadata.json").read_text())
    test = ev.split_particles(metadata, "test")
    train = ev.split_particles(metadata, "train")
    assert not set(test) & set(train)
    assert set(test) <= set(metadata["split"]["test"])  # one radius
    rng = np.random.default_rng(0)
    (first, *_) = ev.per_class(test, 1, rng)
    varied = ev.varied_particles(1, rng)[1]
    cases = ev.draw_cases([first, first, varied], rng)
    assert [c.conditions["noise"] for c in cases] == [0.0, ev.NOISE, 0.0]
    for case in cases:
        metal_d = ev.METAL_D[case.conditions["metal"]]
        assert abs(case.d / metal_d - 1) <= ev.D_SPREAD
        for key, (low, high) in ev.RANGES.items():
            assert low <= case.conditions[key] <= high

    stacking = load_library("stacking")
    small = Library("tiny", tuple(stacking[i] for i in [*train, first.index]))
    setup = ev.Setup(tiny_model, small, 20, 0)
    rows = [ev.evaluate_case(case, setup) for case in cases]
    for row, case in zip(rows, cases):
        assert row["n_atoms"] == len(case.shape.xyz)
        assert row["abc"] == stacking_sequence(case.structure()).abc
        assert tuple(row["methods"]) == ev.METHODS
        for answer in row["methods"].values():
            assert answer["delta_rw"] == pytest.approx(
                answer["rw"] - row["rw_true"]
            )
            assert answer["sequence"] == answer["hc"]
            assert answer["count"] == (answer["n_atoms"] == row["n_atoms"])
            assert ("mae" in answer) == answer["count"]
            assert answer["class"] == (answer["kind"] == row["kind"])
            assert answer["seconds"] > 0
    mined = rows[0]["methods"]["mine"]
    assert mined["label"] == first.label
    assert mined["sequence"] and mined["class"] and mined["count"]
    assert mined["mae"] < 0.01
    assert rows[2]["methods"]["mine"]["label"] != varied.label

    report = ev.part_report(rows)
    assert report["n_pdfs"] == 3 and report["n_noisy"] == 1
    for name in ev.METHODS:
        scores = report["methods"][name]
        overall = scores["overall"]
        assert overall["n_mae"] == sum(
            r["methods"][name]["count"] for r in rows
        )
        assert sum(s["n"] for s in scores["per_class"].values()) == 3
        assert sum(scores["sources"].values()) == 3
    assert report["methods"]["mine"]["sources"] == {"library": 3}

    figure = tmp_path / "latent.png"
    ev.plot_latent(metadata, figure)
    assert figure.stat().st_size > 0
    mmnp = json.loads(
        (REPO_ROOT / "onnx_models" / "mmnp" / "metadata.json").read_text()
    )
    stacking_report = {
        "model": ev._model_info(metadata),
        "evaluated_commit": "abc",
        "protocol": {
            "metal_d": ev.METAL_D,
            "d_spread": ev.D_SPREAD,
            "qmin": ev.QMIN,
            "ranges": ev.RANGES,
            "noise": ev.NOISE,
            "noisy": "every other PDF of a class",
            "varied_shapes": [s.name for s in ev.VARIED_SHAPES],
        },
        "settings": {
            "n_samples": 20,
            "seed": 0,
            "per_class": 1,
            "parts": ["random"],
            "sequence_model": None,
        },
        "random": report,
        "seconds": 60.0,
    }
    page = render(mmnp, stacking=stacking_report, stacking_figure="x.png")
    assert "Stacking model" in page and ".. figure:: x.png" in page
    assert "--parts random" in page
    assert "Stacking model" not in render(mmnp)


def test_aligned_mae_matches_a_turned_particle():
    from scipy.spatial.transform import Rotation

    from diffpy.deepstruc.matching import matched_errors
    from diffpy.deepstruc.stacking import build_particle

    truth = build_particle("ABACBAC", "truncated-4-6") * 2.77
    turned = Rotation.random(random_state=1)
    rng = np.random.default_rng(0)
    xyz = turned.apply(truth)[rng.permutation(len(truth))] + 4.0
    assert ev.aligned_mae(xyz, truth) < 1e-6
    assert matched_errors(xyz, truth)[0] > 0.5
    cube = np.array(list(itertools.product(range(3), repeat=3))) * 2.77
    assert ev.aligned_mae(cube, cube) < 1e-9
