"""Deterministic training data: cluster graphs, simulated PDFs and labels.

For every cluster of the package's MMNP library this builds

* the padded structure: xyz in units of its shortest interatomic distance
  d (what the first PDF peak measures; for the library's bcc clusters,
  built with a = 2 x radius, d is sqrt(3)/2 of the nominal one),
  ``max_atoms`` slots, an atom mask and the graph cutoff
  (1.02 x lattice constant, in units of d);
* G(r) with the reference PDF parameters on the model grid
  (r = 2.00-29.99 Å, divided by its maximum);
* G(r) simulated on 1.00-29.99 Å for the clean and augmented variants, from
  which the prior input is built;
* the prior input (:func:`diffpy.deepstruc.features.prior_input`) of that
  clean PDF and of ``n_augment`` augmented copies (random Biso, qdamp,
  Qmax and lattice strain, drawn from a seeded generator);
* labels: type, size, element, atom count and the geometry (shape) id.

The arrays are cached in ``~/.cache/diffpy.deepstruc/`` under a name that
hashes the settings; nothing is written into the repository.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from diffpy.deepstruc.clusters import CLUSTER_TYPES, enumerate_library
from diffpy.deepstruc.debye import (
    DebyeParameters,
    PairHistogram,
    pair_distances,
)
from diffpy.deepstruc.features import INPUT_R_GRID, prior_input
from diffpy.deepstruc.pdfdata import MODEL_R_GRID

CACHE_DIR = Path.home() / ".cache" / "diffpy.deepstruc"
DATA_VERSION = 1


def augmentation_parameters(rng, n, ranges):
    """Draw ``n`` sets of (biso, qdamp, qmax, zoom) uniformly in ``ranges``.

    Parameters
    ----------
    rng : numpy.random.Generator
        The seeded generator.
    n : int
        Number of parameter sets.
    ranges : dict
        ``{"biso": [lo, hi], "qdamp": [...], "qmax": [...],
        "strain": s}``; the zoom is drawn in ``[1 - s, 1 + s]``.
    """
    strain = ranges["strain"]
    return np.column_stack(
        [
            rng.uniform(*ranges["biso"], n),
            rng.uniform(*ranges["qdamp"], n),
            rng.uniform(*ranges["qmax"], n),
            rng.uniform(1.0 - strain, 1.0 + strain, n),
        ]
    )


def simulate_variant(histogram, biso, qdamp, qmax, zoom):
    """G on the input grid (1.00-29.99 Å) for one parameter set."""
    params = DebyeParameters(biso=biso, qdamp=qdamp, qmax=qmax)
    return histogram.pdf(INPUT_R_GRID, params, zoom=zoom)


def build_dataset(config: dict) -> dict:
    """Build (or load from the cache) the arrays for training.

    Parameters
    ----------
    config : dict
        The ``data`` section of the training configuration: ``seed``,
        ``max_atoms``, ``n_augment`` and ``augment`` ranges.

    Returns
    -------
    dict of numpy.ndarray
        ``xyz``, ``mask``, ``cutoff``, ``n_atoms``, ``type_index``,
        ``shape_id``, ``unit`` (d in Å), ``lattice_constant``, ``ids``,
        ``gr`` (clean G on the model grid), ``features``
        ``(n, 1 + n_augment, n_u)`` and ``augment`` (the parameters of
        every variant).
    """
    key = json.dumps({"version": DATA_VERSION, **config}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = CACHE_DIR / f"mmnp-{digest}.npz"
    if path.exists():
        with np.load(path) as cached:
            return dict(cached)
    records = enumerate_library()
    rng = np.random.default_rng(config["seed"])
    max_atoms = config["max_atoms"]
    n_variants = 1 + config["n_augment"]
    reference = DebyeParameters()
    n = len(records)
    data = {
        "ids": np.array([rec.id for rec in records]),
        "xyz": np.zeros((n, max_atoms, 3), np.float32),
        "mask": np.zeros((n, max_atoms), np.float32),
        "unit": np.array([pair_distances(rec.xyz).min() for rec in records]),
        "n_atoms": np.array([rec.n_atoms for rec in records]),
        "type_index": np.array([CLUSTER_TYPES.index(r.type) for r in records]),
        "shape_id": np.array([rec.shape_id for rec in records]),
        "lattice_constant": np.array(
            [rec.lattice_constant for rec in records]
        ),
        "gr": np.zeros((n, MODEL_R_GRID.size), np.float32),
        "augment": np.zeros((n, n_variants, 4)),
    }
    data["cutoff"] = 1.02 * data["lattice_constant"] / data["unit"]
    features = []
    for i, rec in enumerate(tqdm(records, desc="simulating PDFs")):
        data["xyz"][i, : rec.n_atoms] = rec.xyz / data["unit"][i]
        data["mask"][i, : rec.n_atoms] = 1.0
        variants = np.vstack(
            [
                [reference.biso, reference.qdamp, reference.qmax, 1.0],
                augmentation_parameters(
                    rng, n_variants - 1, config["augment"]
                ),
            ]
        )
        data["augment"][i] = variants
        histogram = PairHistogram.from_cluster(rec.xyz)
        rows = []
        for j, variant in enumerate(variants):
            g = simulate_variant(histogram, *variant)
            if j == 0:
                on_model_grid = np.interp(MODEL_R_GRID, INPUT_R_GRID, g)
                data["gr"][i] = on_model_grid / on_model_grid.max()
            rows.append(prior_input(INPUT_R_GRID, g)[0])
        features.append(rows)
    data["features"] = np.asarray(features, np.float32)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **data)
    tmp.replace(path)
    return data


def split_indices(type_index, shape_id, seed, mode="random"):
    """Split 60/20/20, stratified by structure type.

    Parameters
    ----------
    type_index, shape_id : numpy.ndarray
        Per-cluster labels.
    seed : int
        Seed of the permutation.
    mode : {"random", "geometry"}
        ``"random"`` splits clusters; ``"geometry"`` splits whole
        geometries (all lattice constants of one shape go to the same
        part), which measures generalisation to unseen shapes.

    Returns
    -------
    dict
        ``{"train": idx, "val": idx, "test": idx}`` index arrays (sorted).
    """
    if mode not in ("random", "geometry"):
        raise ValueError(f"Unknown split mode {mode!r}.")
    rng = np.random.default_rng(seed)
    parts = {"train": [], "val": [], "test": []}
    for t in np.unique(type_index):
        members = np.flatnonzero(type_index == t)
        units = members if mode == "random" else np.unique(shape_id[members])
        units = rng.permutation(units)
        n_train = int(round(0.6 * len(units)))
        n_val = int(round(0.2 * len(units)))
        chunks = {
            "train": units[:n_train],
            "val": units[n_train : n_train + n_val],
            "test": units[n_train + n_val :],
        }
        for name, chunk in chunks.items():
            if mode == "geometry":
                chunk = members[np.isin(shape_id[members], chunk)]
            parts[name].append(chunk)
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}
