"""Tests of loading the shipped ONNX model and checking its files.

The shipped model will be retrained, so these tests check properties of
its outputs (shapes, finiteness, units), never exact values.
"""

import hashlib
import json
import shutil

import numpy as np
import pytest

from diffpy.deepstruc.clusters import build_cluster
from diffpy.deepstruc.debye import simulate_pdf
from diffpy.deepstruc.features import INPUT_R_GRID, U_GRID, prior_input
from diffpy.deepstruc.matching import nn_distance
from diffpy.deepstruc.model import (
    DeepStrucModel,
    ModelFileError,
    available_models,
    load_model,
    models_dir,
)

NETWORKS = ("encoder", "prior", "decoder")


@pytest.fixture(scope="module")
def model():
    return load_model("mmnp")


@pytest.fixture(scope="module")
def features():
    """Prior inputs of an fcc block and a 55-atom icosahedron."""
    rows = []
    for cluster_type, size in (("fcc", (2, 3, 3)), ("icosahedral", (3,))):
        xyz = build_cluster(cluster_type, size, 2.77)
        r, g = simulate_pdf(xyz, INPUT_R_GRID)
        rows.append(prior_input(r, g)[0])
    return np.array(rows)


@pytest.fixture
def model_copy(tmp_path):
    """A private copy of the shipped model folder."""
    return shutil.copytree(models_dir() / "mmnp", tmp_path / "mmnp")


def test_shipped_models():
    assert "mmnp" in available_models()
    assert (models_dir() / "mmnp" / "metadata.json").is_file()


def test_load_model(model):
    assert isinstance(model, DeepStrucModel)
    assert model.name == "mmnp"
    assert load_model("mmnp") is model


def test_metadata_checksums_match_shipped_files(model):
    files = model.metadata["files"]
    assert set(files) == set(NETWORKS)
    for network in NETWORKS:
        path = model.folder / files[network]["path"]
        assert path.name == f"{network}.onnx"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert files[network]["sha256"] == digest


def test_metadata_prior_input_matches_features(model):
    # the model was trained on the input that features.py builds now
    meta = model.metadata["prior_input"]
    assert meta["n_points"] == len(U_GRID)
    assert meta["u_min"] == pytest.approx(U_GRID[0])
    assert meta["u_step"] == pytest.approx(U_GRID[1] - U_GRID[0])


def test_prior_on_real_input(model, features):
    mean, sigma = model.prior(features[0])
    latent_dim = model.metadata["latent_dim"]
    assert mean.shape == (1, latent_dim) == (1, 2)
    assert sigma.shape == (1, latent_dim)
    assert np.isfinite(mean).all() and np.isfinite(sigma).all()
    assert (sigma > 0).all()


def test_prior_batch_equals_single(model, features):
    mean, sigma = model.prior(features)
    assert mean.shape == sigma.shape == (len(features), 2)
    for k, row in enumerate(features):
        mean_k, sigma_k = model.prior(row[None, :])
        np.testing.assert_allclose(mean[k], mean_k[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(sigma[k], sigma_k[0], rtol=1e-5)
    # different geometries are told apart
    assert not np.allclose(mean[0], mean[1], atol=1e-4)


def test_decode_returns_clusters(model, features):
    mean, _ = model.prior(features)
    z = np.vstack([mean, np.zeros((1, 2)), [[1.0, -1.0]]])
    clusters = model.decode(z)
    assert isinstance(clusters, list) and len(clusters) == len(z)
    for xyz in clusters:
        assert isinstance(xyz, np.ndarray)
        assert xyz.ndim == 2 and xyz.shape[1] == 3
        assert xyz.dtype == np.float64
        assert np.isfinite(xyz).all()
        assert len(xyz) <= model.metadata["decoder"]["max_atoms"]
    # at the prior mean of a real cluster: a cluster in units of d
    for xyz in clusters[: len(mean)]:
        assert len(xyz) >= 5
        assert 0.7 < nn_distance(xyz) < 1.3


def test_altered_decoder_raises(model_copy):
    path = model_copy / "decoder.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    net = DeepStrucModel(model_copy)
    with pytest.raises(ModelFileError, match=r"decoder\.onnx") as info:
        net.decode(np.zeros((1, 2)))
    assert "sha256" in str(info.value)
    # files are checked at first use: the intact prior still works
    mean, sigma = net.prior(np.zeros(len(U_GRID), np.float32))
    assert mean.shape == (1, 2)


def test_missing_prior_raises(model_copy):
    (model_copy / "prior.onnx").unlink()
    net = DeepStrucModel(model_copy)
    with pytest.raises(ModelFileError, match=r"prior\.onnx") as info:
        net.prior(np.zeros(len(U_GRID), np.float32))
    assert "missing" in str(info.value)


def test_missing_metadata_raises(model_copy):
    (model_copy / "metadata.json").unlink()
    with pytest.raises(ModelFileError, match=r"metadata\.json"):
        DeepStrucModel(model_copy)


def test_checksum_is_checked_against_metadata(model_copy):
    # a file that differs only from its recorded checksum is refused too
    meta_path = model_copy / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["files"]["prior"]["sha256"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match=r"prior\.onnx"):
        DeepStrucModel(model_copy).prior(np.zeros(len(U_GRID), np.float32))


@pytest.mark.parametrize(
    "name",
    [
        # C1: an unknown name, expect ModelFileError listing 'mmnp'
        "no_such_model",
        # C2: a near miss of the shipped name, expect the same
        "mmnp2",
    ],
)
def test_unknown_model_name_raises(name):
    with pytest.raises(ModelFileError) as info:
        DeepStrucModel(name)
    message = str(info.value)
    assert repr(name) in message
    for shipped in available_models():
        assert shipped in message
