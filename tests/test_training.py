"""Tests of the training code (``training/``): split, model, export, eval.

The training extra (torch, PyYAML, tqdm) is optional, and ``training/`` is
only in a clone of the repository; without them every test here is
skipped.  Nothing here builds the real training library.
"""

import json
import math
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT

EXTRA = "the training extra is not installed; pip install '.[training]'"
torch = pytest.importorskip("torch", reason=f"torch: {EXTRA}")
pytest.importorskip("yaml", reason=f"PyYAML: {EXTRA}")
pytest.importorskip("tqdm", reason=f"tqdm: {EXTRA}")
if not (REPO_ROOT / "training" / "model.py").is_file():
    pytest.skip(
        "training/ is not here; it is only in a clone of the repository",
        allow_module_level=True,
    )
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from diffpy.deepstruc.clusters import build_cluster  # noqa: E402
from diffpy.deepstruc.debye import simulate_pdf  # noqa: E402
from diffpy.deepstruc.features import (  # noqa: E402
    INPUT_R_GRID,
    U_GRID,
    prior_input,
)
from training.dataset import (  # noqa: E402
    augmentation_parameters,
    layer_order,
    split_indices,
)
from training.model import (  # noqa: E402
    GraphCVAE,
    GraphEncoder,
    adjacency_matrix,
    gaussian_kl,
)
from training.train import (  # noqa: E402
    batch_loss,
    build_model,
    learning_rate,
    load_config,
    polish_decoder,
    train,
)

CONFIG_PATH = REPO_ROOT / "training" / "configs" / "mmnp.yaml"
N_PDF = U_GRID.size
MAX_ATOMS = 200


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Run torch on one thread (much faster next to a training run)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------- helpers
def synthetic_labels(shapes_per_type=(4, 9, 13, 20, 27, 31, 50), radii=19):
    """Labels like the library's: each shape repeated at ``radii`` sizes.

    Shape ids are unique over all types; the clusters are shuffled so
    that no part of the code can rely on them being grouped.
    """
    type_index, shape_id = [], []
    next_id = 0
    for t, n_shapes in enumerate(shapes_per_type):
        for _ in range(n_shapes):
            type_index += [t] * radii
            shape_id += [next_id] * radii
            next_id += 1
    order = np.random.default_rng(123).permutation(len(type_index))
    return np.array(type_index)[order], np.array(shape_id)[order]


def padded(clusters, cutoffs):
    """Padded xyz, mask and cutoff tensors of clusters in units of d."""
    xyz = torch.zeros(len(clusters), MAX_ATOMS, 3)
    mask = torch.zeros(len(clusters), MAX_ATOMS)
    for i, c in enumerate(clusters):
        xyz[i, : len(c)] = torch.as_tensor(c, dtype=torch.float32)
        mask[i, : len(c)] = 1.0
    return xyz, mask, torch.as_tensor(cutoffs, dtype=torch.float32)


def real_example():
    """A library cluster (fcc 2-2-2, Pt) as model inputs."""
    d = 2.6
    xyz = build_cluster("fcc", (2, 2, 2), d)
    g = simulate_pdf(xyz, INPUT_R_GRID)[1]
    features, d_est = prior_input(INPUT_R_GRID, g)
    assert d_est == pytest.approx(d, abs=0.02)
    unit_xyz, mask, cutoff = padded([xyz / d], [1.02 * math.sqrt(2.0)])
    return unit_xyz, mask, cutoff, torch.as_tensor(features)[None]


@pytest.fixture(scope="module")
def config():
    return load_config(CONFIG_PATH)


@pytest.fixture
def model(config):
    return build_model(config, N_PDF)


# ------------------------------------------------------------ data split
SPLIT_FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


@pytest.mark.parametrize(
    "mode",
    [
        # C1: clusters split one by one, expect 60/20/20 clusters per type
        "random",
        # C2: whole shapes split, expect 60/20/20 shapes per type
        "geometry",
    ],
)
def test_split_is_a_stratified_partition(mode):
    type_index, shape_id = synthetic_labels()
    split = split_indices(type_index, shape_id, seed=0, mode=mode)
    assert set(split) == {"train", "val", "test"}
    everything = np.concatenate(list(split.values()))
    assert np.array_equal(np.sort(everything), np.arange(type_index.size))
    for name, idx in split.items():
        assert np.all(np.diff(idx) > 0), f"{name} is not sorted and unique"

    def n_units(idx):
        return idx.size if mode == "random" else np.unique(shape_id[idx]).size

    for t in np.unique(type_index):
        total = n_units(np.flatnonzero(type_index == t))
        for name, fraction in SPLIT_FRACTIONS.items():
            part = split[name][type_index[split[name]] == t]
            assert abs(n_units(part) - fraction * total) <= 1.0, (t, name)


def test_geometry_split_keeps_every_shape_in_one_part():
    type_index, shape_id = synthetic_labels()
    split = split_indices(type_index, shape_id, seed=3, mode="geometry")
    shapes = {name: set(shape_id[idx]) for name, idx in split.items()}
    assert not shapes["train"] & shapes["val"]
    assert not shapes["train"] & shapes["test"]
    assert not shapes["val"] & shapes["test"]
    for idx in split.values():
        # every shape present in a part brings all its 19 sizes along
        _, counts = np.unique(shape_id[idx], return_counts=True)
        assert np.all(counts == 19)


def test_random_split_separates_sizes_of_a_shape():
    # the random split is the one that does not hold whole shapes out
    type_index, shape_id = synthetic_labels()
    split = split_indices(type_index, shape_id, seed=0, mode="random")
    train, test = set(shape_id[split["train"]]), set(shape_id[split["test"]])
    assert train & test


@pytest.mark.parametrize(
    "mode",
    [
        # C1: random split, expect same parts for a seed, others for another
        "random",
        # C2: geometry split, expect the same
        "geometry",
    ],
)
def test_split_is_deterministic_per_seed(mode):
    type_index, shape_id = synthetic_labels()
    first = split_indices(type_index, shape_id, 7, mode)
    again = split_indices(type_index, shape_id, 7, mode)
    other = split_indices(type_index, shape_id, 8, mode)
    for name in first:
        assert np.array_equal(first[name], again[name])
    assert not np.array_equal(first["train"], other["train"])


@pytest.mark.parametrize(
    "mode",
    [
        # C1: misspelt mode, expect ValueError
        "geometric",
        # C2: empty mode, expect ValueError
        "",
        # C3: capitalised mode, expect ValueError
        "Random",
    ],
)
def test_split_rejects_unknown_mode(mode):
    type_index, shape_id = synthetic_labels()
    with pytest.raises(ValueError, match="split mode"):
        split_indices(type_index, shape_id, 0, mode)


# ----------------------------------------------------------- augmentation
RANGES = {
    "biso": [0.1, 0.8],
    "qdamp": [0.02, 0.06],
    "qmax": [18.0, 28.0],
    "strain": 0.03,
}


@pytest.mark.parametrize(
    "n",
    [
        # C1: many draws, expect every column inside its range
        2000,
        # C2: one draw, expect shape (1, 4)
        1,
        # C3: no draws, expect shape (0, 4)
        0,
    ],
)
def test_augmentation_parameters_stay_in_range(n):
    values = augmentation_parameters(np.random.default_rng(0), n, RANGES)
    assert values.shape == (n, 4)
    bounds = [RANGES["biso"], RANGES["qdamp"], RANGES["qmax"], [0.97, 1.03]]
    for column, (lo, hi) in zip(values.T, bounds):
        assert np.all((column >= lo) & (column <= hi))
        if n >= 1000:
            # uniform draws fill the range (not a constant or a sub-range)
            assert column.min() < lo + 0.05 * (hi - lo)
            assert column.max() > hi - 0.05 * (hi - lo)


def test_augmentation_parameters_are_deterministic():
    def draw(seed):
        return augmentation_parameters(np.random.default_rng(seed), 16, RANGES)

    assert np.array_equal(draw(5), draw(5))
    assert not np.allclose(draw(5), draw(6))
    # columns are drawn independently, not one value reused
    values = draw(5)
    assert len(np.unique(values[:, 0])) == 16


# ------------------------------------------------------------------ model
def test_cvae_forward_shapes():
    torch.manual_seed(0)
    model = GraphCVAE(N_PDF, latent_dim=2, max_atoms=MAX_ATOMS)
    clusters = [torch.randn(n, 3).numpy() for n in (5, 60, MAX_ATOMS)]
    xyz, mask, cutoff = padded(clusters, [1.5, 1.5, 1.5])
    pdf = torch.rand(3, N_PDF)
    out, (q_mean, q_logvar), (p_mean, p_logvar) = model(xyz, mask, cutoff, pdf)
    assert out.shape == (3, MAX_ATOMS, 4)
    for tensor in (q_mean, q_logvar, p_mean, p_logvar):
        assert tensor.shape == (3, 2)
        assert torch.isfinite(tensor).all()
    assert torch.isfinite(out).all()
    # the posterior does not depend on what sits in the padding slots
    encoder = GraphEncoder(model.encoder).eval()
    junk = xyz.clone()
    junk[0, 5:] = torch.randn(MAX_ATOMS - 5, 3)
    with torch.no_grad():
        clean = encoder(xyz, mask, cutoff, pdf)
        dirty = encoder(junk, mask, cutoff, pdf)
    for a, b in zip(clean, dirty):
        assert torch.allclose(a, b, atol=1e-5)


def test_adjacency_rows_are_normalised():
    # a square of side 1 with a far atom, then padding at the origin
    square = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [9, 9, 9]]
    xyz, mask, cutoff = padded([np.array(square, float)], [1.2])
    adjacency = adjacency_matrix(xyz, mask, cutoff)[0]
    sums = adjacency.sum(-1)
    assert torch.allclose(sums[:4], torch.ones(4))
    # the isolated atom and every padding slot have empty rows
    assert torch.all(sums[4:] == 0)
    # padding slots sit at the origin, next to atom 0, and get no edge
    assert torch.all(adjacency[:, 5:] == 0)
    # the diagonal (d = sqrt 2) is beyond the cutoff; no self loops
    assert adjacency[0, 3] == 0 and adjacency[0, 0] == 0
    assert adjacency[0, 1] == pytest.approx(0.5)
    assert adjacency[0, 2] == pytest.approx(0.5)


def test_adjacency_weights_are_inverse_distances():
    # atom 0 has neighbours at 1 and 2 (cutoff 3): weights 1 : 1/2
    line = np.array([[0, 0, 0], [1, 0, 0], [-2, 0, 0]], float)
    xyz, mask, cutoff = padded([line, line], [3.0, 1.5])
    adjacency = adjacency_matrix(xyz, mask, cutoff)
    assert adjacency[0, 0, 1] == pytest.approx(2 / 3)
    assert adjacency[0, 0, 2] == pytest.approx(1 / 3)
    # the per-cluster cutoff of the second cluster drops the long edges
    assert adjacency[1, 0, 1] == pytest.approx(1.0)
    assert adjacency[1, 2].sum() == 0


@pytest.mark.parametrize(
    "q, p, expected",
    [
        # C1: equal Gaussians, expect KL 0
        ((0.3, -0.2), (0.3, -0.2), 0.0),
        # C2: means 1 apart, unit variances, expect 1/2
        ((1.0, 0.0), (0.0, 0.0), 0.5),
        # C3: q twice as wide, same mean, expect log(1/2) + 2 - 1/2
        ((0.0, math.log(4.0)), (0.0, 0.0), 1.5 - math.log(2.0)),
        # C4: q narrower than p, expect the closed form, > 0
        (
            (0.5, math.log(0.25)),
            (-0.5, 0.0),
            math.log(2.0) + (0.25 + 1.0) / 2 - 0.5,
        ),
    ],
)
def test_gaussian_kl_matches_closed_form(q, p, expected):
    # (mean, logvar) in each of two latent dimensions, KL summed
    mean_q = torch.tensor([[q[0], q[0]]])
    logvar_q = torch.tensor([[q[1], q[1]]])
    mean_p = torch.tensor([[p[0], p[0]]])
    logvar_p = torch.tensor([[p[1], p[1]]])
    kl = gaussian_kl(mean_q, logvar_q, mean_p, logvar_p)
    assert kl.shape == (1,)
    assert float(kl) == pytest.approx(2 * expected, abs=1e-6)
    if expected > 0:
        assert float(kl) > 0


def test_gaussian_kl_is_non_negative_on_random_gaussians():
    generator = torch.Generator().manual_seed(1)
    args = [torch.randn(64, 2, generator=generator) for _ in range(4)]
    kl = gaussian_kl(*args)
    assert kl.shape == (64,)
    assert torch.all(kl > 0)
    assert torch.allclose(gaussian_kl(args[0], args[1], *args[:2]), 0 * kl)


def tiny_batch(n=4, n_variants=2, seed=0):
    """Tensors like ``prepare``'s for ``n`` small library clusters."""
    shapes = [("fcc", (2, 2, 2)), ("icosahedral", (2,)), ("sc", (3, 3, 2))]
    shapes += [("bcc", (2, 2, 2)), ("decahedral", (2, 2, 0))]
    clusters = [build_cluster(t, s, 1.0) for t, s in shapes[:n]]
    xyz, mask, cutoff = padded(clusters, [1.5] * n)
    generator = torch.Generator().manual_seed(seed)
    features = torch.rand(n, n_variants, N_PDF, generator=generator)
    return {"xyz": xyz, "mask": mask, "cutoff": cutoff, "features": features}


def test_batch_loss_terms_and_descent(config, model):
    settings = config["train"]
    tensors = tiny_batch()
    idx = torch.arange(4)
    variants = torch.tensor([0, 1, 0, 1])
    noise = torch.zeros(4, N_PDF)
    terms = batch_loss(model, tensors, idx, variants, noise, 0.0, settings)
    assert set(terms) == {"loss", "recon", "occupancy", "kl"}
    for value in terms.values():
        assert value.ndim == 0 and torch.isfinite(value)
    assert terms["recon"] > 0 and terms["kl"] >= 0
    # the total is at least its non-negative parts (beta = 0)
    floor = (
        terms["recon"]
        + settings["occupancy_weight"] * terms["occupancy"]
        + terms["kl"]
    )
    assert float(terms["loss"].detach()) >= float(floor.detach()) - 1e-6

    torch.manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = []
    for _ in range(10):
        terms = batch_loss(model, tensors, idx, variants, noise, 0.0, settings)
        optimiser.zero_grad()
        terms["loss"].backward()
        optimiser.step()
        history.append({k: float(v.detach()) for k, v in terms.items()})
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["recon"] < 0.5 * history[0]["recon"]


def test_prior_kl_does_not_train_the_encoder(config, model):
    # KL balancing: the prior's KL term reaches the prior only
    tensors = tiny_batch()
    terms = batch_loss(
        model,
        tensors,
        torch.arange(4),
        torch.zeros(4, dtype=torch.long),
        torch.zeros(4, N_PDF),
        0.0,
        config["train"],
    )
    terms["kl"].backward()
    encoder_grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is None or torch.all(g == 0) for g in encoder_grads)
    assert all(p.grad is None for p in model.decoder.parameters())
    prior_grads = [p.grad for p in model.prior.parameters()]
    assert any(g is not None and torch.any(g != 0) for g in prior_grads)


@pytest.mark.parametrize(
    "settings",
    [
        # C1: the mmnp schedule, expect lr at 0 and ~lr_min at the end
        {"epochs": 1000, "lr": 1e-3, "lr_min": 1e-5},
        # C2: a short schedule, expect the same shape
        {"epochs": 7, "lr": 3e-4, "lr_min": 0.0},
    ],
)
def test_learning_rate_cosine_decay(settings):
    epochs = settings["epochs"]
    rates = np.array([learning_rate(settings, e) for e in range(epochs)])
    assert rates[0] == pytest.approx(settings["lr"])
    assert np.all(np.diff(rates) < 0)
    span = settings["lr"] - settings["lr_min"]
    assert rates[-1] - settings["lr_min"] < 0.1 * span
    assert rates[-1] >= settings["lr_min"]
    assert learning_rate(settings, epochs) == pytest.approx(
        settings["lr_min"], abs=1e-12
    )
    # half way, the cosine is at the mid point
    assert learning_rate(settings, epochs / 2) == pytest.approx(
        settings["lr_min"] + span / 2
    )


# ---------------------------------------------------------------- export
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A seeded model exported to ONNX; (model, paths, sessions)."""
    import onnxruntime

    pytest.importorskip("onnx", reason=f"onnx: {EXTRA}")
    from training.export import export_networks

    config = load_config(CONFIG_PATH)
    model = build_model(config, N_PDF)
    # move the untrained weights away from their initialisation pattern
    with torch.no_grad():
        generator = torch.Generator().manual_seed(2)
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=generator))
    out = tmp_path_factory.mktemp("onnx")
    paths = export_networks(model, out, N_PDF, MAX_ATOMS)
    sessions = {
        name: onnxruntime.InferenceSession(
            str(path), providers=["CPUExecutionProvider"]
        )
        for name, path in paths.items()
    }
    return model.eval(), paths, sessions


def run_both(exported, name, feeds):
    """Outputs of torch and onnxruntime for one network."""
    model, _, sessions = exported
    module = {
        "prior": model.prior,
        "decoder": model.decoder,
        "encoder": GraphEncoder(model.encoder),
    }[name]
    with torch.no_grad():
        expected = module(*feeds.values())
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = sessions[name].run(None, {k: v.numpy() for k, v in feeds.items()})
    return [e.numpy() for e in expected], got


def random_feeds(name, batch, seed=0):
    generator = torch.Generator().manual_seed(seed)
    if name == "prior":
        return {"pdf": torch.rand(batch, N_PDF, generator=generator)}
    if name == "decoder":
        return {"z": 3 * torch.randn(batch, 2, generator=generator)}
    sizes = [13, 55, 200, 5, 147][:batch]
    clusters = [
        torch.randn(n, 3, generator=generator).numpy() * 2 for n in sizes
    ]
    xyz, mask, cutoff = padded(clusters, [1.45] * batch)
    pdf = torch.rand(batch, N_PDF, generator=generator)
    return {"xyz": xyz, "mask": mask, "cutoff": cutoff, "pdf": pdf}


def test_export_writes_three_networks(exported):
    import onnx

    _, paths, _ = exported
    assert set(paths) == {"encoder", "prior", "decoder"}
    for path in paths.values():
        assert path.is_file()
        proto = onnx.load(str(path))
        versions = [
            op.version
            for op in proto.opset_import
            if op.domain in ("", "ai.onnx")
        ]
        assert versions and versions[0] >= 17


@pytest.mark.parametrize("name", ["prior", "decoder", "encoder"])
@pytest.mark.parametrize(
    "batch",
    [
        # C1: one structure, expect the batch axis to shrink to 1
        1,
        # C2: five structures (exported with 2), expect it to grow
        5,
    ],
)
def test_onnx_matches_torch_on_random_inputs(exported, name, batch):
    expected, got = run_both(exported, name, random_feeds(name, batch))
    assert len(expected) == len(got)
    for e, g in zip(expected, got):
        assert g.shape == e.shape and g.shape[0] == batch
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-4)


def test_onnx_matches_torch_on_a_real_cluster(exported):
    xyz, mask, cutoff, features = real_example()
    feeds = {
        "prior": {"pdf": features},
        "encoder": {
            "xyz": xyz,
            "mask": mask,
            "cutoff": cutoff,
            "pdf": features,
        },
    }
    for name, feed in feeds.items():
        expected, got = run_both(exported, name, feed)
        for e, g in zip(expected, got):
            np.testing.assert_allclose(g, e, rtol=0, atol=1e-4)
    model, _, _ = exported
    with torch.no_grad():
        mean, _ = model.prior(features)
    expected, got = run_both(exported, "decoder", {"z": mean})
    np.testing.assert_allclose(got[0], expected[0], rtol=0, atol=1e-4)


def test_onnx_parity_reports_a_small_difference(exported):
    from training.export import onnx_parity

    model, paths, _ = exported
    xyz, mask, cutoff, features = real_example()
    worst = onnx_parity(model, paths, features, xyz, mask, cutoff)
    assert 0 <= worst < 1e-4


# ---------------------------------------------------------------- polish
def decoder_error(model, tensors):
    """Masked squared error of decoding the posterior means (units d²)."""
    xyz, mask = tensors["xyz"], tensors["mask"]
    with torch.no_grad():
        adjacency = adjacency_matrix(xyz, mask, tensors["cutoff"])
        z, _ = model.encoder(xyz, adjacency, mask, tensors["features"][:, 0])
        out = model.decoder(z)
    squared = ((out[..., :3] - xyz) ** 2).sum(-1)
    return float((squared * mask).sum() / mask.sum())


def test_polish_decoder_fits_the_posterior_means(config, model):
    tensors = tiny_batch(n=4)
    settings = {
        **config["train"],
        "polish_epochs": 15,
        "polish_lr": 1e-3,
        "batch_size": 2,
    }
    frozen = {
        k: v.clone()
        for k, v in model.state_dict().items()
        if not k.startswith("decoder.")
    }
    before = decoder_error(model, tensors)
    polish_decoder(model, tensors, torch.arange(4), settings, seed=0)
    after = decoder_error(model, tensors)
    assert after < 0.5 * before
    state = model.state_dict()
    for k, v in frozen.items():
        assert torch.equal(state[k], v), f"{k} changed"
    assert not model.training


# -------------------------------------------------------------- evaluate
def test_evaluate_runs_end_to_end(tmp_path, capsys):
    # the shipped model (20 samples) on one sc test PDF per split and a
    # robustness table over strain alone; expect the report, the plot,
    # the summary in a copy of the metadata and a printed summary, all
    # consistent with the per-PDF results
    from diffpy.deepstruc.clusters import CLUSTER_TYPES, enumerate_library
    from diffpy.deepstruc.model import models_dir
    from training import evaluate

    model_dir = models_dir() / "mmnp"
    metadata = json.loads((model_dir / "metadata.json").read_text())
    copy = tmp_path / "metadata.json"
    copy.write_text(json.dumps(metadata))
    out = tmp_path / "report"
    argv = ["--model", str(model_dir), "--samples", "20", "--types", "sc"]
    argv += ["--per-type", "1", "--robust-per-type", "1"]
    argv += ["--calibration-per-type", "1"]
    evaluate.main(
        argv
        + ["--factors", "strain", "--out", str(out)]
        + ["--write-metadata", str(copy)]
    )

    report = json.loads((out / "evaluation_blind.json").read_text())
    assert (out / "evaluation_blind_confusion.png").stat().st_size > 0
    cases = report.pop("cases")
    updated = json.loads(copy.read_text())["metrics"]
    assert updated.pop("blind") == report
    metadata["metrics"].pop("blind", None)
    assert updated == metadata["metrics"]
    assert report["model"]["training_commit"] == (
        metadata["training"]["git_commit"]
    )
    assert report["settings"]["n_samples"] == 20

    records = enumerate_library()
    library_d = np.array([rec.nn_distance for rec in records])
    shape_id = np.array([rec.shape_id for rec in records])
    geometry = split_indices(
        np.array([CLUSTER_TYPES.index(rec.type) for rec in records]),
        shape_id,
        metadata["split"]["seed"],
        "geometry",
    )
    test_shapes = {
        "random": set(shape_id[metadata["split"]["test"]]),
        "geometry": set(shape_id[geometry["test"]]),
    }
    test_shapes["robustness"] = test_shapes["random"]
    test_shapes["calibration"] = test_shapes["random"]
    test_shapes["calibration_geometry"] = test_shapes["geometry"]
    methods = {
        "random": evaluate.METHODS,
        "robustness": evaluate.ROBUST_METHODS,
        "calibration": evaluate.WEIGHTED_METHODS,
        "geometry": evaluate.GEOMETRY_METHODS,
        "calibration_geometry": ("mine",),
    }
    parts = [case["part"] for case in cases]
    assert parts == ["random"] + 3 * ["robustness"] + [
        "calibration",
        "geometry",
        "calibration_geometry",
    ]
    for case in cases:
        assert case["type"] == "sc"
        assert 2.3 <= case["d"] <= 3.2
        assert np.abs(library_d - case["d"]).min() >= 0.01
        assert case["shape_id"] in test_shapes[case["part"]]
        assert tuple(case["methods"]) == methods[case["part"]]
        assert case["rw_true_qdamp"] <= case["rw_true"] + 1e-9
        for name, answer in case["methods"].items():
            truth = case[
                (
                    "rw_true_qdamp"
                    if name in evaluate.QDAMP_METHODS
                    else "rw_true"
                )
            ]
            assert answer["delta_rw"] == pytest.approx(answer["rw"] - truth)
            assert ("mae" in answer) == (answer["n_atoms"] == case["n_atoms"])
            assert answer["seconds"] > 0
        for name in set(evaluate.WEIGHTED_METHODS) & set(case["methods"]):
            answer = case["methods"][name]
            assert answer["type_rw"][answer["type"]] <= answer["rw"] + 1e-9
            assert answer["rw_noise"] > 0
        assert case["n_points"] > 100
    first, *robust, _, _, _ = cases
    assert [(c["factor"], c["value"]) for c in robust] == [
        ("central", None),
        ("strain", -0.05),
        ("strain", 0.05),
    ]
    for c in robust:
        assert (c["shape_id"], c["d"]) == (first["shape_id"], first["d"])
        expected = dict(evaluate.CENTRAL, strain=c["value"] or 0.0)
        assert {k: c[k] for k in expected} == expected

    for part in ("random", "geometry"):
        (case,) = [c for c in cases if c["part"] == part]
        assert report[part]["n_pdfs"] == report[part]["n_shapes"] == 1
        for name, scores in report[part]["methods"].items():
            answer = case["methods"][name]
            assert scores["per_type"]["sc"] == scores["overall"]
            assert scores["overall"]["count"] == (
                answer["n_atoms"] == case["n_atoms"]
            )
            assert scores["overall"]["delta_rw"]["median"] == pytest.approx(
                answer["delta_rw"]
            )
            assert scores["sources"] == {answer["source"]: 1}
    assert "not run" in report["geometry"]["note"]
    strain = report["robustness"]["factors"]["strain"]
    assert [level["value"] for level in strain] == [-0.05, 0.0, 0.05]
    for level, case in zip(strain, [robust[1], robust[0], robust[2]]):
        for name, scores in level["methods"].items():
            assert scores["shape"] == (
                case["methods"][name]["shape_id"] == case["shape_id"]
            )

    # the type weights calibrate on the calibration part, are checked on
    # every part with weights
    from training.calibrate import TEMPERATURES, calibrate

    calibration = calibrate({**report, "cases": cases})
    assert calibration["fitted_on"] == 2
    assert TEMPERATURES[0] <= calibration["temperature"] <= TEMPERATURES[-1]
    assert set(calibration["reliability"]) == {
        "random",
        "robustness",
        "calibration",
        "geometry",
        "calibration_geometry",
    }
    table = calibration["reliability"]["random"]["propose"]
    assert table["n"] == sum(b["n"] for b in table["bins"]) == 1

    printed = capsys.readouterr().out
    assert "random split: 1 PDFs" in printed
    assert "strain -0.05 count: propose=" in printed


def test_methods_per_split_and_model():
    # the shipped model keeps its methods; a geometry-split model runs all
    # of them and solve on its split and refuses the random split
    from training import evaluate

    assert evaluate.split_names("random", "random") == evaluate.METHODS
    assert evaluate.split_names("geometry", "random") == (
        evaluate.GEOMETRY_METHODS
    )
    assert evaluate.split_names("random", "random", solve=True) == (
        *evaluate.METHODS,
        "solve",
    )
    names = evaluate.split_names("geometry", "geometry")
    assert "propose" in names and "solve" in names
    assert set(evaluate.METHODS) < set(names)
    with pytest.raises(ValueError, match="--splits geometry"):
        evaluate.split_names("random", "geometry")


def _geometry_metadata():
    """The shipped model's metadata with a geometry split instead."""
    from diffpy.deepstruc.clusters import CLUSTER_TYPES, enumerate_library
    from diffpy.deepstruc.model import models_dir

    path = models_dir() / "mmnp" / "metadata.json"
    metadata = json.loads(path.read_text())
    records = enumerate_library()
    parts = split_indices(
        np.array([CLUSTER_TYPES.index(r.type) for r in records]),
        np.array([r.shape_id for r in records]),
        0,
        "geometry",
    )
    metadata["name"] = "mmnp_geometry"
    metadata["split"] = {
        "mode": "geometry",
        "seed": 0,
        **{k: np.asarray(v).tolist() for k, v in parts.items()},
    }
    metadata["metrics"] = {}
    return metadata


def test_geometry_model_snaps_to_its_training_shapes():
    # the library of every method on the geometry split holds the
    # training shapes of the model's split only, the same shapes as the
    # split that the shipped model is scored on there
    from diffpy.deepstruc.clusters import enumerate_library
    from diffpy.deepstruc.libraries import load_library
    from training import evaluate

    metadata = _geometry_metadata()
    records = enumerate_library()
    features = np.zeros((len(records), 1))
    test, methods = evaluate.split_methods(
        "geometry", metadata, "m", 10, 0, features
    )
    train = {records[i].shape_id for i in metadata["split"]["train"]}
    mmnp = load_library("mmnp")
    assert {e.label for e in methods.library} == {mmnp[i].label for i in train}
    assert not train & set(test)
    assert set(methods.shape_ids) == train
    random = json.loads(
        (evaluate.REPO_ROOT / "onnx_models/mmnp/metadata.json").read_text()
    )
    shipped_test, shipped = evaluate.split_methods(
        "geometry", random, "m", 10, 0, features
    )
    assert set(shipped_test) == set(test)
    assert len(shipped.library) == len(methods.library)
    _, own = evaluate.split_methods("random", random, "m", 10, 0, features)
    assert len(own.library) == 197


@pytest.mark.parametrize("method", ["propose", "propose_nosnap", "solve"])
def test_top_answer_passes_the_split_library(monkeypatch, method):
    # propose and solve get the split's library (and solve its settings)
    from types import SimpleNamespace

    from training import evaluate

    calls = []

    def stand_in(gr, **kwargs):
        calls.append(kwargs)
        reference = SimpleNamespace(type="fcc", shape_id=7)
        return [
            SimpleNamespace(
                nearest_reference=reference,
                n_atoms=13,
                rw=0.1,
                source="solved",
                type_rw=None,
                xyz=np.zeros((13, 3)),
            )
        ]

    monkeypatch.setattr(evaluate, "propose_structures", stand_in)
    monkeypatch.setattr(evaluate, "solve_structure", stand_in)
    library = object()
    methods = evaluate.Methods("model", 20, 3, library, None, None)
    answer, xyz = evaluate.top_answer(
        method, ("r", "g"), 25.0, methods, None, None
    )
    (kwargs,) = calls
    assert kwargs["library"] is library
    assert kwargs["model"] == "model" and kwargs["seed"] == 3
    assert (kwargs["qmax"], kwargs["qmin"]) == (25.0, evaluate.QMIN)
    assert kwargs["element"] == evaluate.ELEMENT
    if method == "solve":
        assert kwargs["max_atoms"] == evaluate.SOLVE_MAX_ATOMS == 200
    else:
        assert kwargs["snap"] == (method == "propose")
        assert kwargs["n_samples"] == 20
    assert answer == {
        "type": "fcc",
        "n_atoms": 13,
        "shape_id": 7,
        "rw": 0.1,
        "source": "solved",
    }


def test_geometry_model_summary_goes_to_blind_geometry(tmp_path, monkeypatch):
    # with the methods faked: the geometry split alone, every method and
    # solve, the summary under metrics["blind_geometry"] of the metadata
    # file named, whose "blind" stays; the random split is refused
    from training import evaluate

    model = tmp_path / "mmnp_geometry"
    model.mkdir()
    (model / "metadata.json").write_text(json.dumps(_geometry_metadata()))
    shipped = tmp_path / "metadata.json"
    shipped.write_text(json.dumps({"metrics": {"blind": {"kept": 1}}}))
    seen = []

    def fake_case(case, methods, names):
        seen.append((tuple(names), methods.library))
        answer = {"type": case.shape.type, "n_atoms": case.shape.n_atoms}
        answer.update(shape_id=case.shape.shape_id, rw=0.1, source="prior")
        answer.update(seconds=1.0, delta_rw=0.0)
        return {
            "type": case.shape.type,
            "n_atoms": case.shape.n_atoms,
            "shape_id": case.shape.shape_id,
            "methods": {name: dict(answer) for name in names},
        }

    monkeypatch.setattr(
        evaluate, "prior_inputs", lambda records: np.zeros((len(records), 1))
    )
    monkeypatch.setattr(evaluate, "evaluate_case", fake_case)
    monkeypatch.setattr(evaluate, "plot_confusion", lambda *args: None)
    options = dict(per_type=1, robust_per_type=0, calibration_per_type=0)
    with pytest.raises(ValueError, match="geometry split"):
        evaluate.evaluate(model, splits=("random",), **options)
    assert not seen
    report = evaluate.evaluate(
        model, types=("fcc",), metadata_path=shipped, **options
    )
    ((names, library),) = seen
    assert names == (*evaluate.METHODS, "solve")
    assert len(library) < 197
    assert "random" not in report and "robustness" not in report
    assert list(report["geometry"]["methods"]) == list(names)
    assert report["model"]["split"] == "geometry"
    assert report["settings"]["solve_max_atoms"] == 200
    saved = json.loads((model / "evaluation_blind.json").read_text())
    assert [case["part"] for case in saved.pop("cases")] == ["geometry"]
    metrics = json.loads(shipped.read_text())["metrics"]
    assert metrics == {"blind": {"kept": 1}, "blind_geometry": saved}


def test_stacking_model_trains_and_exports_with_its_classes(
    tmp_path, monkeypatch
):
    # a tiny run on 40 stacking clusters, one epoch and one polishing
    # epoch, exported: the metadata names the stacking classes
    from training import dataset
    from training.export import export

    monkeypatch.setattr(dataset, "CACHE_DIR", tmp_path / "cache")
    config = load_config(REPO_ROOT / "training" / "configs" / "stacking.yaml")
    config["out_dir"] = str(tmp_path / "run")
    config["data"].update(subset=40, n_augment=1)
    config["train"].update(
        epochs=1, polish_epochs=1, validate_every=1, checkpoint_every=1
    )
    train(config)
    out = export(config, out_dir=tmp_path / "model")
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["types"] == ["fcc", "hcp", "faulted"]
    assert metadata["library"] == "stacking"
    wall = metadata["training"]["wall_time_s"]
    assert wall is not None and wall >= 0
    assert set(metadata["latent_map"]["type"]) <= set(metadata["types"])
    assert {p.name for p in out.glob("*.onnx")} == {
        "encoder.onnx",
        "prior.onnx",
        "decoder.onnx",
    }


def test_layer_order_puts_the_atoms_layer_by_layer():
    # a two-layer patch, shuffled: ordered by z, then y, then x
    rng = np.random.default_rng(0)
    grid = np.array(
        [[x, y, z] for z in (0, 1) for y in (0, 1) for x in (0, 1)]
    )
    xyz = grid[rng.permutation(len(grid))] + 1e-6 * rng.standard_normal(
        grid.shape
    )
    ordered = layer_order(xyz)
    assert np.allclose(ordered, grid, atol=1e-5)
    assert sorted(map(tuple, ordered)) == sorted(map(tuple, xyz))
