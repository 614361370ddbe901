"""Deterministic training data: cluster graphs, simulated PDFs and labels.

The ``set`` key of the data configuration chooses the clusters:
``"mmnp"`` (the default), the package's MMNP library, or ``"stacking"``,
the close-packed particles of :mod:`diffpy.deepstruc.stacking` at the d
of every distinct radius of
:data:`~diffpy.deepstruc.clusters.METALLIC_RADII`, like the MMNP library
(:func:`stacking_records`; ``radii: n`` keeps n of the radii).  An
optional ``subset: n`` keeps ``n``
clusters evenly spread over the set, for smoke tests.  For every cluster
this builds

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
* labels: type, size, element, atom count and the geometry (shape) id;
  the types are the set's classes (:data:`DATA_SETS`), and the stacking
  set adds the id of each canonical stacking sequence (``sequence_id``),
  which the ``"sequence"`` split holds out.

The arrays are cached in ``~/.cache/diffpy.deepstruc/`` under a name that
hashes the settings; nothing is written into the repository.
"""

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from diffpy.deepstruc.clusters import (
    CLUSTER_TYPES,
    METALLIC_RADII,
    enumerate_library,
)
from diffpy.deepstruc.debye import (
    DebyeParameters,
    PairHistogram,
    pair_distances,
)
from diffpy.deepstruc.features import INPUT_R_GRID, prior_input
from diffpy.deepstruc.pdfdata import MODEL_R_GRID
from diffpy.deepstruc.stacking import KINDS, stacking_particles

CACHE_DIR = Path.home() / ".cache" / "diffpy.deepstruc"
DATA_VERSION = 2
#: Data sets (``data: set:``) and the class names of their type labels.
DATA_SETS = {"mmnp": CLUSTER_TYPES, "stacking": KINDS}


@dataclass(frozen=True)
class StackingRecord:
    """A stacking particle at one metal's d: what the data set reads.

    Attributes
    ----------
    id : int
        Position in :func:`stacking_records`.
    type : str
        ``"fcc"``, ``"hcp"`` or ``"faulted"``.
    sequence : str
        Canonical stacking sequence.
    element : str
        First metal of the radius in ``METALLIC_RADII`` order.
    nn_distance : float
        d = 2 x metallic radius, in Å.
    lattice_constant : float
        sqrt(2) d, the fcc lattice constant: the graph cutoff
        (1.02 x lattice constant) takes the first two neighbour shells,
        as for the MMNP fcc clusters.
    shape_id : int
        Index of the particle in
        :func:`diffpy.deepstruc.stacking.stacking_particles`.
    xyz : numpy.ndarray
        ``(n_atoms, 3)`` coordinates in Å, centred.
    """

    id: int
    type: str
    sequence: str
    element: str
    nn_distance: float
    lattice_constant: float
    shape_id: int
    xyz: np.ndarray = field(repr=False)

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.xyz)


def stacking_records(n_radii: int | None = None) -> list[StackingRecord]:
    """Every stacking particle at the d of distinct metal radii.

    Radii in first-appearance order of ``METALLIC_RADII`` (19 distinct,
    d = 2.30-3.24 Å), then particles in generation order: 19 x 2612 =
    49628 records.  With ``n_radii``, only that many radii, at the
    centres of equal parts of the sorted distinct ones (one radius: the
    median) (the network works in units of
    d, so fewer radii mainly shorten the training; the augmentation
    still strains every cluster).
    """
    radii = {}
    for element, radius in METALLIC_RADII.items():
        radii.setdefault(radius, element)
    if n_radii is not None:
        ordered = sorted(radii)
        picks = (np.arange(n_radii) + 0.5) * len(ordered) / n_radii - 0.5
        chosen = {ordered[i] for i in np.rint(picks).astype(int)}
        radii = {r: e for r, e in radii.items() if r in chosen}
    records = []
    for radius, element in radii.items():
        d = 2.0 * radius
        for shape_id, particle in enumerate(stacking_particles()):
            records.append(
                StackingRecord(
                    id=len(records),
                    type=particle.kind,
                    sequence=particle.stacking.abc,
                    element=element,
                    nn_distance=d,
                    lattice_constant=math.sqrt(2.0) * d,
                    shape_id=shape_id,
                    xyz=layer_order(particle.xyz) * d,
                )
            )
    return records


def layer_order(xyz: np.ndarray) -> np.ndarray:
    """Atoms of a stacked particle layer by layer, each row by row.

    The generated particles have their layers normal to z; ordering by
    z, then y, then x gives an atom slot the same layer and nearly the
    same in-plane place in particles of other sequences, where the
    radial order of the MMNP clusters mixes the layers.
    """
    keys = np.round(xyz, 4)
    return xyz[np.lexsort((keys[:, 0], keys[:, 1], keys[:, 2]))]


def _records(config: dict) -> list:
    """The clusters of the configured data set (and subset)."""
    data_set = config.get("set", "mmnp")
    if data_set == "mmnp":
        records = enumerate_library()
    elif data_set == "stacking":
        records = stacking_records(config.get("radii"))
    else:
        raise ValueError(
            f"Unknown data set {data_set!r}; please give one of "
            f"{', '.join(DATA_SETS)}."
        )
    if "subset" in config:
        keep = np.linspace(0, len(records) - 1, config["subset"])
        records = [records[i] for i in np.unique(np.rint(keep).astype(int))]
    return records


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
        ``max_atoms``, ``n_augment`` and ``augment`` ranges, and the
        optional ``set`` (default ``"mmnp"``) and ``subset``.

    Returns
    -------
    dict of numpy.ndarray
        ``xyz``, ``mask``, ``cutoff``, ``n_atoms``, ``type_index``,
        ``shape_id``, ``unit`` (d in Å), ``lattice_constant``, ``ids``,
        ``gr`` (clean G on the model grid), ``features``
        ``(n, 1 + n_augment, n_u)`` and ``augment`` (the parameters of
        every variant); for the stacking set also ``sequence_id``.
    """
    key = json.dumps({"version": DATA_VERSION, **config}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    data_set = config.get("set", "mmnp")
    path = CACHE_DIR / f"{data_set}-{digest}.npz"
    if path.exists():
        with np.load(path) as cached:
            return dict(cached)
    records = _records(config)
    classes = DATA_SETS[data_set]
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
        "type_index": np.array([classes.index(r.type) for r in records]),
        "shape_id": np.array([rec.shape_id for rec in records]),
        "lattice_constant": np.array(
            [rec.lattice_constant for rec in records]
        ),
        "gr": np.zeros((n, MODEL_R_GRID.size), np.float32),
        "augment": np.zeros((n, n_variants, 4)),
    }
    data["cutoff"] = 1.02 * data["lattice_constant"] / data["unit"]
    if data_set == "stacking":
        sequences = sorted({rec.sequence for rec in records})
        data["sequence_id"] = np.array(
            [sequences.index(rec.sequence) for rec in records]
        )
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


def split_indices(type_index, shape_id, seed, mode="random", sequence_id=None):
    """Split 60/20/20, stratified by structure type.

    Parameters
    ----------
    type_index, shape_id : numpy.ndarray
        Per-cluster labels.
    seed : int
        Seed of the permutation.
    mode : {"random", "geometry", "sequence"}
        ``"random"`` splits clusters; ``"geometry"`` splits whole
        geometries (all lattice constants of one shape go to the same
        part), which measures generalisation to unseen shapes;
        ``"sequence"`` splits whole stacking sequences (all shapes and
        lattice constants of one sequence go to the same part), so no
        h/c sequence of the test part occurs in training.
    sequence_id : numpy.ndarray, optional
        Per-cluster stacking-sequence ids, needed by ``"sequence"``.

    Returns
    -------
    dict
        ``{"train": idx, "val": idx, "test": idx}`` index arrays (sorted).
    """
    if mode not in ("random", "geometry", "sequence"):
        raise ValueError(f"Unknown split mode {mode!r}.")
    if mode == "sequence" and sequence_id is None:
        raise ValueError(
            "The sequence split mode needs the stacking-sequence id of "
            "every cluster; please use it with the stacking data set."
        )
    groups = {"geometry": shape_id, "sequence": sequence_id}.get(mode)
    rng = np.random.default_rng(seed)
    parts = {"train": [], "val": [], "test": []}
    for t in np.unique(type_index):
        members = np.flatnonzero(type_index == t)
        units = members if groups is None else np.unique(groups[members])
        units = rng.permutation(units)
        n_train = int(round(0.6 * len(units)))
        n_val = int(round(0.2 * len(units)))
        chunks = {
            "train": units[:n_train],
            "val": units[n_train : n_train + n_val],
            "test": units[n_train + n_val :],
        }
        for name, chunk in chunks.items():
            if groups is not None:
                chunk = members[np.isin(groups[members], chunk)]
            parts[name].append(chunk)
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}
