"""Evaluate the shipped model and its alternatives on blind test PDFs.

Usage::

    python -m training.evaluate --model onnx_models/mmnp --write-metadata
    python -m training.evaluate --model training/models/mmnp_geometry \
        --write-metadata onnx_models/mmnp/metadata.json

Test PDFs differ from the training PDFs the way measured data do, and the
methods see only what a file header would give.  Each test PDF is one
test-split shape (:func:`diffpy.deepstruc.clusters.library_shapes`)
scaled to a nearest-neighbour distance d drawn in :data:`D_RANGE` at
least :data:`D_GAP` from each of the library's 19 values, strained
uniaxially (its coordinates along a random direction stretched by the
strain), and simulated with the Debye calculator at a random Qmax,
qdamp and Biso (:data:`RANGES`, Qmin :data:`QMIN`) on r = 0-29.99 Å in
0.01 Å steps, plus Gaussian noise whose standard deviation is a fraction
of max |G|.  The methods get G(r), Qmax and Qmin only, never d, qdamp or
Biso (the fits assume the training qdamp, 0.04 Å⁻¹, and fit Uiso).

All methods run on the same PDFs in the same run (:data:`METHODS`):

* ``propose``: :func:`diffpy.deepstruc.propose_structures` as shipped
  (prior samples, latent search, the best-fitting training shapes);
* ``propose_nosnap``: the same without the library shapes
  (``snap=False``);
* ``mine``: :func:`diffpy.deepstruc.mining.mine_library` over the
  training shapes (all 197 on the random split, where every shape is in
  training at other d, and the training shapes only on the
  geometry-disjoint split);
* ``nearest``: the 1-nearest-neighbour look-up: the training cluster whose
  prior input (:func:`diffpy.deepstruc.features.prior_input` of its clean
  reference PDF) is nearest to the test PDF's (Euclidean) gives type,
  shape and count; its shape at the estimated d is then fitted;
* ``solve`` (:data:`SOLVE`; with ``--solve`` on the random split, always
  with a geometry-split model): :func:`diffpy.deepstruc.solve_structure`
  (site search from the best proposals, ``max_atoms``
  :data:`SOLVE_MAX_ATOMS`), about 8 s per PDF.

``propose`` and ``solve`` snap to the split's training shapes, as
``mine`` fits them.

The top candidate is compared with the truth: **type** and **shape** of
its nearest library geometry (:mod:`diffpy.deepstruc.matching`) against
the true ones, **count** (exactly the true number of atoms), **ΔRw** = Rw
of the top candidate minus Rw of the true (strained) structure fitted the
same way (:func:`diffpy.deepstruc.fitting.fit_cluster`: same data, r
range, assumed instrument parameters; scale, zoom and Uiso fitted, and
qdamp too for the methods that refine it, :data:`QDAMP_METHODS`), and
**MAE**, the mean Euclidean distance per atom in Å between the fitted
candidate and the true structure after centring, optimal assignment and
rotation, over the count-matched PDFs only.

The parts:

* ``random``: ``--per-type`` PDFs per structure type of the random split
  of the model's metadata, all methods;
* ``geometry``: the same on the geometry-disjoint split (whole shapes
  held out, :func:`training.dataset.split_indices`), for ``mine`` and
  ``nearest`` only (:data:`GEOMETRY_METHODS`) with the shipped model,
  which has seen every shape.  A model trained on the geometry split
  (its metadata's ``split.mode``) runs every method there, ``solve``
  too, on the same test PDFs and its own split; the random split means
  nothing for it, so it runs the geometry split alone (``--splits
  random`` is refused);
* ``robustness``: the first ``--robust-per-type`` random-split shapes of
  each type (same d and strain direction), one factor of
  :data:`LEVELS` varied at a time, the others at :data:`CENTRAL`, for
  :data:`ROBUST_METHODS`.
* ``calibration`` and ``calibration_geometry``:
  ``--calibration-per-type`` PDFs per type drawn anew (other random
  streams) from the test shapes of each split, for those of
  :data:`WEIGHTED_METHODS` that the split runs; ``training.calibrate``
  fits the temperature of the type weights
  (:mod:`diffpy.deepstruc.confidence`) on both, so that the weights hold
  for shapes in and out of the library, and checks them on the other
  parts.  Every answer of those methods
  keeps the least Rw of each type (``type_rw``), and every PDF the Rw of
  its noise and its independent points, so the weights can be
  recomputed for any temperature.

The report (with every PDF's results) goes to
``evaluation_blind.json`` in ``--out`` (default: the model folder), with
the type confusion of ``propose`` on the model's own split
(``evaluation_blind_confusion.png``); ``--write-metadata`` also stores the
summary under ``metrics["blind"]`` (``metrics["blind_geometry"]`` for a
geometry-split model, :data:`METRICS_KEYS`) of the model's
``metadata.json`` (or the metadata file it names, such as the shipped
model's).
"""

import argparse
import json
import subprocess
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from diffpy.deepstruc.cli import SOLVE_STRAIN
from diffpy.deepstruc.clusters import (
    CLUSTER_TYPES,
    ClusterRecord,
    enumerate_library,
    library_shapes,
)
from diffpy.deepstruc.confidence import (
    independent_points,
    noise_level,
    noise_rw,
)
from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf
from diffpy.deepstruc.features import INPUT_R_GRID, prior_input
from diffpy.deepstruc.fitting import FIT_RANGE, fit_cluster
from diffpy.deepstruc.libraries import Library, load_library
from diffpy.deepstruc.matching import matched_errors
from diffpy.deepstruc.mining import mine_library
from diffpy.deepstruc.pdfdata import instrument_parameters, load_pdf
from diffpy.deepstruc.plausibility import FitQualityWarning
from diffpy.deepstruc.propose import propose_structures
from diffpy.deepstruc.solve import solve_structure
from training.dataset import split_indices

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Range (Å) of the test nearest-neighbour distances d.
D_RANGE = (2.3, 3.2)
#: Least distance (Å) of a test d from every library d.
D_GAP = 0.01
#: Qmin (Å⁻¹) of every test PDF, given to the methods.
QMIN = 0.7
#: Ranges of the random conditions of the ``random`` and ``geometry``
#: parts: noise (standard deviation / max |G|), Qmax and qdamp (Å⁻¹),
#: Biso (Å²) and uniaxial strain.
RANGES = {
    "noise": (0.0, 0.05),
    "qmax": (16.0, 30.0),
    "biso": (0.1, 1.0),
    "qdamp": (0.02, 0.06),
    "strain": (-0.05, 0.05),
}
#: Conditions of the robustness table when a factor is not varied.
CENTRAL = {
    "noise": 0.01,
    "qmax": 25.0,
    "biso": 0.3,
    "qdamp": 0.04,
    "strain": 0.0,
}
#: Values of each factor in the robustness table.
LEVELS = {
    "noise": (0.0, 0.01, 0.02, 0.05),
    "qmax": (16.0, 20.0, 25.0, 30.0),
    "biso": (0.1, 0.3, 0.6, 1.0),
    "qdamp": (0.02, 0.04, 0.06),
    "strain": (-0.05, 0.0, 0.05),
}
#: Parts of the evaluation with their own test PDFs.
SPLITS = ("random", "geometry")
#: Methods whose type weights are calibrated and checked.
WEIGHTED_METHODS = ("propose", "mine")
#: The calibration part of each split.
CALIBRATION_PARTS = {
    "random": "calibration",
    "geometry": "calibration_geometry",
}
#: Methods of the ``random`` part.
METHODS = ("propose", "propose_nosnap", "mine", "nearest")
#: Methods of the ``geometry`` part (no model of that split is shipped).
GEOMETRY_METHODS = ("mine", "nearest")
#: The structure solution (:func:`solve_structure`): with ``--solve`` on
#: the random split, always with a geometry-split model.
SOLVE = "solve"
#: Methods that refine qdamp (the test files do not give it): their ΔRw
#: is taken against the truth fitted with qdamp refined too.
QDAMP_METHODS = (SOLVE,)
#: ``max_atoms`` of ``solve``.
SOLVE_MAX_ATOMS = 200
#: Metrics key of the summary per split that the model was trained on.
METRICS_KEYS = {"random": "blind", "geometry": "blind_geometry"}
#: Methods of the robustness table.
ROBUST_METHODS = ("propose", "mine", "nearest")
#: Element label of the candidates (a one-element PDF does not depend on
#: it).
ELEMENT = "Au"
GEOMETRY_NOTE = (
    "The model is not run on the geometry-disjoint split: only the model "
    "trained on the random split is shipped, and it has seen every test "
    "shape of that split."
)
GEOMETRY_MODEL_NOTE = (
    "The model was trained on this split: propose and solve snap to, "
    "mine fits and the look-up holds its training shapes only."
)


@dataclass(frozen=True)
class TestCase:
    """One blind test PDF: a library shape under new conditions.

    Attributes
    ----------
    shape : ClusterRecord
        The true shape (:func:`library_shapes`, unit d).
    d : float
        Its nearest-neighbour distance in Å.
    conditions : dict
        ``noise``, ``qmax``, ``biso``, ``qdamp`` and ``strain`` (the keys
        of :data:`RANGES`).
    axis : tuple of float
        Unit vector of the uniaxial strain.
    seed : int
        Seed of the noise.
    """

    shape: ClusterRecord
    d: float
    conditions: dict
    axis: tuple
    seed: int

    def structure(self) -> np.ndarray:
        """The true coordinates (Å): the shape at d, strained."""
        xyz = self.shape.xyz * self.d
        axis = np.asarray(self.axis)
        return xyz + self.conditions["strain"] * np.outer(xyz @ axis, axis)

    def pdf(self) -> tuple[np.ndarray, np.ndarray]:
        """The noisy test PDF ``(r, G)``."""
        params = DebyeParameters(
            qmin=QMIN,
            qmax=self.conditions["qmax"],
            qdamp=self.conditions["qdamp"],
            biso=self.conditions["biso"],
        )
        r, g = simulate_pdf(self.structure(), params=params)
        noise = self.conditions["noise"] * np.abs(g).max()
        rng = np.random.default_rng(self.seed)
        return r, g + rng.normal(0.0, noise, g.size)


@dataclass(frozen=True)
class Methods:
    """What the methods of one split need.

    Attributes
    ----------
    model : pathlib.Path
        Model folder for ``propose`` and ``solve``.
    n_samples, seed : int
        Prior samples and seed of ``propose`` (the seed of ``solve``).
    library : Library
        The split's training shapes: ``mine`` fits them, ``propose`` and
        ``solve`` snap to them.
    features : numpy.ndarray
        ``(n_train, n_u)`` prior inputs of the training clusters.
    shape_ids : numpy.ndarray
        Their shape ids.
    strain : bool or "auto"
        ``solve``'s ``strain=``; ``propose`` and ``mine`` refit a strain
        (their ``strain=True``) unless it is False.
    """

    model: Path
    n_samples: int
    seed: int
    library: Library
    features: np.ndarray
    shape_ids: np.ndarray
    strain: bool | str = False


def off_library_d(rng, library_d: np.ndarray) -> float:
    """A d in :data:`D_RANGE` at least :data:`D_GAP` from ``library_d``."""
    while True:
        d = rng.uniform(*D_RANGE)
        if np.abs(library_d - d).min() >= D_GAP:
            return float(d)


def draw_cases(shape_ids, per_type, rng, types) -> list[TestCase]:
    """``per_type`` test PDFs per type, cycling through its test shapes.

    Parameters
    ----------
    shape_ids : iterable of int
        Shape ids of the split's test clusters.
    per_type : int
        PDFs per structure type (types without test shapes are skipped).
    rng : numpy.random.Generator
        Source of the shapes' order, d, conditions, strain axes and noise
        seeds.
    types : sequence of str
        Structure types tested.

    Returns
    -------
    list of TestCase
        In the order of ``types``.
    """
    shapes = library_shapes()
    library_d = np.unique([r.nn_distance for r in enumerate_library()])
    test = sorted(set(shape_ids))
    cases = []
    for cluster_type in types:
        members = [i for i in test if shapes[i].type == cluster_type]
        if not members:
            continue
        order = rng.permutation(members)
        for k in range(per_type):
            axis = rng.normal(size=3)
            cases.append(
                TestCase(
                    shape=shapes[order[k % len(order)]],
                    d=off_library_d(rng, library_d),
                    conditions={
                        key: float(rng.uniform(*span))
                        for key, span in RANGES.items()
                    },
                    axis=tuple(axis / np.linalg.norm(axis)),
                    seed=int(rng.integers(2**32)),
                )
            )
    return cases


def prior_inputs(records) -> np.ndarray:
    """Prior inputs of the clean reference PDFs of library clusters."""
    return np.array(
        [
            prior_input(*simulate_pdf(rec.xyz, INPUT_R_GRID))[0]
            for rec in records
        ]
    )


def top_answer(method, gr, qmax, methods, data, params):
    """The top candidate of one method: its labels, Rw and coordinates.

    Parameters
    ----------
    method : str
        One of :data:`METHODS` or :data:`SOLVE`.
    gr : tuple of numpy.ndarray
        The test PDF.
    qmax : float
        Qmax given to the method (with :data:`QMIN`).
    methods : Methods
        Model, library and look-up table.
    data : tuple of numpy.ndarray
        The ``(r, g)`` that the fits use (only for ``nearest``).
    params : DebyeParameters
        The instrument parameters that the fits assume (only for
        ``nearest``).

    Returns
    -------
    answer : dict
        ``type``, ``n_atoms``, ``shape_id``, ``rw`` and ``source``.
    xyz : numpy.ndarray
        Fitted coordinates (Å).
    """
    header = {"qmax": qmax, "qmin": QMIN, "element": ELEMENT}
    if method == "nearest":
        features, d = prior_input(*gr)
        distance = np.linalg.norm(methods.features - features, axis=1)
        shape_id = int(methods.shape_ids[np.argmin(distance)])
        xyz = load_library("mmnp")[shape_id].xyz * d
        fit = fit_cluster(xyz, *data, params)
        shape = library_shapes()[shape_id]
        answer = {
            "type": shape.type,
            "n_atoms": shape.n_atoms,
            "shape_id": shape_id,
            "rw": fit.rw,
            "source": "nearest",
        }
        return answer, xyz * fit.zoom
    if method == "mine":
        best = mine_library(
            gr, library=methods.library, strain=bool(methods.strain), **header
        )[0]
    elif method == SOLVE:
        best = solve_structure(
            gr,
            model=methods.model,
            library=methods.library,
            seed=methods.seed,
            max_atoms=SOLVE_MAX_ATOMS,
            strain=methods.strain,
            **header,
        )[0]
    else:
        best = propose_structures(
            gr,
            model=methods.model,
            library=methods.library,
            n_samples=methods.n_samples,
            seed=methods.seed,
            snap=method == "propose",
            strain=bool(methods.strain),
            **header,
        )[0]
    reference = best.nearest_reference
    answer = {
        "type": reference.type,
        "n_atoms": best.n_atoms,
        "shape_id": reference.shape_id,
        "rw": best.rw,
        "source": best.source,
    }
    if best.type_rw:
        answer["type_rw"] = best.type_rw
        answer["rw_noise"] = noise_rw(best.gobs, noise_level(best))
    return answer, best.xyz


def add_strain_option(parser) -> None:
    """The ``--strain`` option of the evaluations, named as ``deepstruc
    solve``'s (:data:`diffpy.deepstruc.cli.SOLVE_STRAIN`)."""
    parser.add_argument(
        "--strain",
        choices=tuple(SOLVE_STRAIN),
        default="off",
        help="solve's strain (off: False, auto: 'auto', on: True); "
        "unless off, propose and mine run with strain=True and the truth "
        "is fitted with a strain",
    )


def truth_rw(truth, r, g, params, strain: bool = False) -> dict:
    """Rw of the true structure fitted as the methods fit their answers.

    ``rw_true`` with scale, zoom and Uiso fitted at the assumed qdamp;
    ``rw_true_qdamp`` with qdamp refined too, as :data:`QDAMP_METHODS`
    do; both with ``strain`` a strain too (as the methods with
    ``strain=True`` fit theirs).
    """
    return {
        "rw_true": fit_cluster(truth, r, g, params, fit_strain=strain).rw,
        "rw_true_qdamp": fit_cluster(
            truth, r, g, params, fit_qdamp=True, fit_strain=strain
        ).rw,
    }


def delta_rw(method: str, rw: float, row: dict) -> float:
    """Rw of a method's answer minus the truth's, fitted the same way."""
    key = "rw_true_qdamp" if method in QDAMP_METHODS else "rw_true"
    return rw - row[key]


def evaluate_case(case: TestCase, methods: Methods, names) -> dict:
    """Run the methods ``names`` on one test PDF; compare with the truth.

    Returns
    -------
    dict
        The truth (``type``, ``n_atoms``, ``shape_id``, ``d``, the
        conditions, :func:`truth_rw`) and under ``methods`` each
        method's answer (:func:`top_answer`) with ``delta_rw``
        (:func:`delta_rw`), ``seconds`` and,
        when the count is right, ``mae`` and ``mae_component`` (Å).
    """
    gr = case.pdf()
    qmax = case.conditions["qmax"]
    pdf = load_pdf(gr, qmax=qmax, qmin=QMIN)
    params = instrument_parameters(pdf, asdict(DebyeParameters()))
    inside = (pdf.r >= FIT_RANGE[0]) & (pdf.r <= FIT_RANGE[1])
    data = (pdf.r[inside], pdf.g[inside])
    truth = case.structure()
    row = {
        "type": case.shape.type,
        "n_atoms": case.shape.n_atoms,
        "shape_id": case.shape.shape_id,
        "d": case.d,
        **case.conditions,
        **truth_rw(truth, *data, params, bool(methods.strain)),
        "n_points": independent_points(data[0], qmax),
        "methods": {},
    }
    for name in names:
        start = time.perf_counter()
        answer, xyz = top_answer(name, gr, qmax, methods, data, params)
        answer["seconds"] = time.perf_counter() - start
        answer["delta_rw"] = delta_rw(name, answer["rw"], row)
        if answer["n_atoms"] == row["n_atoms"]:
            mae, _, component = matched_errors(xyz, truth)
            answer.update(mae=mae, mae_component=component)
        row["methods"][name] = answer
    return row


def _stats(values) -> dict | None:
    if not values:
        return None
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def summarise(rows, method) -> dict:
    """Scores of one method over test PDFs (rows of :func:`evaluate_case`).

    ``type``, ``count`` and ``shape`` are fractions of all ``n`` PDFs,
    ``delta_rw`` the median and mean over all of them; ``mae`` and
    ``mae_component`` (mean and std, Å) are over the count-matched PDFs
    only, whose fraction is ``count``.
    """
    answers = [row["methods"][method] for row in rows]

    def hits(key):
        return float(
            np.mean([a[key] == r[key] for a, r in zip(answers, rows)])
        )

    delta = [a["delta_rw"] for a in answers]
    return {
        "n": len(rows),
        "type": hits("type"),
        "count": hits("n_atoms"),
        "shape": hits("shape_id"),
        "delta_rw": {
            "median": float(np.median(delta)),
            "mean": float(np.mean(delta)),
        },
        "mae": _stats([a["mae"] for a in answers if "mae" in a]),
        "mae_component": _stats(
            [a["mae_component"] for a in answers if "mae" in a]
        ),
        "median_seconds": float(np.median([a["seconds"] for a in answers])),
    }


def split_report(rows, names) -> dict:
    """Scores per method, overall and per type, and its winning sources."""
    types = [t for t in CLUSTER_TYPES if any(r["type"] == t for r in rows)]
    return {
        "n_pdfs": len(rows),
        "n_shapes": len({r["shape_id"] for r in rows}),
        "methods": {
            name: {
                "overall": summarise(rows, name),
                "per_type": {
                    t: summarise([r for r in rows if r["type"] == t], name)
                    for t in types
                },
                "sources": dict(
                    Counter(r["methods"][name]["source"] for r in rows)
                ),
            }
            for name in names
        },
    }


def plot_confusion(rows, method, path):
    """Save the type confusion matrix of a method (rows: truth)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    index = {t: i for i, t in enumerate(CLUSTER_TYPES)}
    matrix = np.zeros((len(index), len(index)), int)
    for r in rows:
        matrix[index[r["type"]], index[r["methods"][method]["type"]]] += 1
    fig, ax = plt.subplots(figsize=(6, 5))
    shown = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    ax.imshow(shown, cmap="Blues", vmin=0, vmax=1)
    for i, j in np.ndindex(matrix.shape):
        if matrix[i, j]:
            ax.text(
                j,
                i,
                matrix[i, j],
                ha="center",
                va="center",
                color="white" if shown[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(len(index)), CLUSTER_TYPES, rotation=45)
    ax.set_yticks(range(len(index)), CLUSTER_TYPES)
    ax.set_xlabel(f"predicted by {method} (nearest library geometry)")
    ax.set_ylabel("true type")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _commit() -> str | None:
    """The checkout's commit, ``-dirty`` when modified; None outside git."""
    result = subprocess.run(
        ["git", "describe", "--always", "--dirty", "--abbrev=12"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip() or None


def run_cases(cases, methods, names, desc) -> list[dict]:
    """:func:`evaluate_case` over test PDFs, with a progress bar."""
    return [
        evaluate_case(case, methods, names) for case in tqdm(cases, desc=desc)
    ]


def model_split(metadata) -> str:
    """The split mode that a model was trained on (``"random"``...)."""
    return metadata["split"].get("mode", "random")


def split_names(split, mode, solve=False) -> tuple:
    """The methods run on ``split`` with a model of the ``mode`` split.

    Parameters
    ----------
    split : str
        One of :data:`SPLITS`.
    mode : str
        The split that the model was trained on (:func:`model_split`).
    solve : bool
        Add :data:`SOLVE` on the random split.

    Returns
    -------
    tuple of str
        :data:`METHODS` (and ``solve``) on the model's own split,
        :data:`GEOMETRY_METHODS` on the geometry split of a random-split
        model.

    Raises
    ------
    ValueError
        For the random split with a geometry-split model, which has seen
        only some of the shapes.
    """
    if mode == "geometry":
        if split != "geometry":
            raise ValueError(
                f"The model was trained on the geometry split; the "
                f"{split!r} split's test PDFs mix shapes it was trained "
                "on with held-out ones.  Please run --splits geometry."
            )
        return (*METHODS, SOLVE)
    if split == "geometry":
        return GEOMETRY_METHODS
    return (*METHODS, SOLVE) if solve else METHODS


def split_methods(split, metadata, model_dir, n_samples, seed, features):
    """Test shape ids and :class:`Methods` of a split.

    ``features`` holds the prior inputs of every library cluster
    (:func:`prior_inputs`); the look-up keeps those of the split's
    training part, whose shapes ``mine`` fits and ``propose`` snaps to.
    The model's own split comes from its metadata.
    """
    records = enumerate_library()
    shape_id = np.array([r.shape_id for r in records])
    mmnp = load_library("mmnp")
    if split in ("random", model_split(metadata)):
        parts = metadata["split"]
    else:
        type_index = np.array([CLUSTER_TYPES.index(r.type) for r in records])
        parts = split_indices(
            type_index, shape_id, metadata["split"]["seed"], split
        )
    library = mmnp
    if split != "random":
        library = Library(
            f"{mmnp.name} {split}-split training shapes",
            tuple(mmnp[i] for i in np.unique(shape_id[parts["train"]])),
        )
    train = np.asarray(parts["train"])
    methods = Methods(
        model_dir, n_samples, seed, library, features[train], shape_id[train]
    )
    return shape_id[np.asarray(parts["test"])], methods


def robustness(tests, methods, per_type, factors):
    """The robustness table on the first ``per_type`` tests of each type.

    Returns
    -------
    table : dict
        ``n_pdfs_per_setting``, ``n_shapes`` and, per factor, a list of
        ``{"value", "methods"}`` with :func:`summarise` of each method of
        :data:`ROBUST_METHODS` (the central value's entry is shared).
    rows : list of dict
        The per-PDF results, with ``factor`` (``"central"`` for the
        central conditions) and ``value``.
    """
    by_type = {}
    for case in tests:
        by_type.setdefault(case.shape.type, []).append(case)
    subset = [c for cases in by_type.values() for c in cases[:per_type]]

    def run(factor, value, conditions):
        cases = [replace(c, conditions=conditions) for c in subset]
        rows = run_cases(cases, methods, ROBUST_METHODS, f"{factor} {value}")
        summary = {name: summarise(rows, name) for name in ROBUST_METHODS}
        tagged = [{"factor": factor, "value": value, **r} for r in rows]
        return summary, tagged

    central, rows = run("central", None, CENTRAL)
    table = {}
    for factor in factors:
        table[factor] = []
        for value in LEVELS[factor]:
            summary = central
            if value != CENTRAL[factor]:
                summary, tagged = run(
                    factor, value, {**CENTRAL, factor: value}
                )
                rows += tagged
            table[factor].append({"value": value, "methods": summary})
    return {
        "n_pdfs_per_setting": len(subset),
        "n_shapes": len({c.shape.shape_id for c in subset}),
        "factors": table,
    }, rows


def evaluate(
    model_dir,
    *,
    n_samples=1000,
    seed=0,
    per_type=12,
    robust_per_type=4,
    calibration_per_type=8,
    types=CLUSTER_TYPES,
    factors=tuple(LEVELS),
    splits=None,
    solve=False,
    strain=False,
    out=None,
    metadata_path=None,
) -> dict:
    """Evaluate a model folder and the other methods on blind test PDFs.

    Parameters
    ----------
    model_dir : str or pathlib.Path
        Model folder; its metadata gives the split it was trained on.
    n_samples, seed : int
        Prior samples of ``propose``; seed of ``propose`` and of the test
        PDFs.
    per_type : int
        Test PDFs per structure type in each split.
    robust_per_type : int
        Shapes per type in the robustness table (0: no table); at most
        ``per_type`` are available.
    calibration_per_type : int
        PDFs per type, drawn anew from each split's test shapes, on which
        ``training.calibrate`` fits the temperature of the type weights
        (0: none).
    types : sequence of str
        Structure types tested.
    factors : sequence of str
        Factors of :data:`LEVELS` varied in the robustness table.
    splits : sequence of str, optional
        Parts of :data:`SPLITS` to run (default: both, the geometry split
        alone for a geometry-split model); the robustness table needs
        ``"random"``.
    solve : bool
        Run ``solve`` on the random split too.
    strain : bool or "auto"
        ``solve``'s ``strain=``; unless False, ``propose`` and ``mine``
        run with ``strain=True`` and the truth is fitted with a strain
        for its ΔRw (named on the command line as ``deepstruc solve``
        names them, :data:`diffpy.deepstruc.cli.SOLVE_STRAIN`).
    out : str or pathlib.Path, optional
        Report folder (default: the model folder).
    metadata_path : str or pathlib.Path, optional
        A metadata file whose ``metrics["blind"]`` (``"blind_geometry"``
        for a geometry-split model) receives the summary.

    Raises
    ------
    ValueError
        For the random split with a geometry-split model.

    Returns
    -------
    dict
        The summary (the report without the per-PDF ``cases``).
    """
    start = time.perf_counter()
    model_dir = Path(model_dir).expanduser()
    metadata = json.loads((model_dir / "metadata.json").read_text())
    mode = model_split(metadata)
    splits = splits or (("geometry",) if mode == "geometry" else SPLITS)
    names = {split: split_names(split, mode, solve) for split in splits}
    training = metadata["training"]
    polished = training.get("decoder_polished", False)
    report = {
        "model": {
            "name": metadata["name"],
            "folder": str(model_dir),
            "split": mode,
            "training_commit": training["git_commit"],
            "training_wall_time_s": training.get("wall_time_s"),
            "epochs": training["epochs"],
            "polish_epochs": (
                training["config"]["train"]["polish_epochs"] if polished else 0
            ),
        },
        "evaluated_commit": _commit(),
        "protocol": {
            "d_range": D_RANGE,
            "d_gap": D_GAP,
            "qmin": QMIN,
            "ranges": RANGES,
            "central": CENTRAL,
            "given_to_methods": ["G(r)", "qmax", "qmin"],
        },
        "settings": {
            "n_samples": n_samples,
            "seed": seed,
            "per_type": per_type,
            "robust_per_type": robust_per_type,
            "calibration_per_type": calibration_per_type,
            "types": list(types),
            "solve_max_atoms": (
                SOLVE_MAX_ATOMS
                if any(SOLVE in n for n in names.values())
                else None
            ),
            "solve_strain": strain,
        },
    }
    features = prior_inputs(enumerate_library())
    cases = []
    for split in splits:
        test_shapes, methods = split_methods(
            split, metadata, model_dir, n_samples, seed, features
        )
        methods = replace(methods, strain=strain)
        rng = np.random.default_rng([seed, SPLITS.index(split)])
        tests = draw_cases(test_shapes, per_type, rng, types)
        rows = run_cases(tests, methods, names[split], split)
        report[split] = split_report(rows, names[split])
        cases += [{"part": split, **row} for row in rows]
        if split == "geometry":
            report[split]["note"] = (
                GEOMETRY_MODEL_NOTE if mode == "geometry" else GEOMETRY_NOTE
            )
        elif robust_per_type:
            report["robustness"], rows = robustness(
                tests, methods, robust_per_type, factors
            )
            cases += [{"part": "robustness", **row} for row in rows]
        if calibration_per_type:
            part = CALIBRATION_PARTS[split]
            weighted = [n for n in names[split] if n in WEIGHTED_METHODS]
            stream = len(SPLITS) + SPLITS.index(split)
            rng = np.random.default_rng([seed, stream])
            tests = draw_cases(test_shapes, calibration_per_type, rng, types)
            rows = run_cases(tests, methods, weighted, part)
            report[part] = {
                "n_pdfs": len(rows),
                "n_shapes": len({r["shape_id"] for r in rows}),
            }
            cases += [{"part": part, **row} for row in rows]
    report["seconds"] = time.perf_counter() - start
    out = Path(out or model_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation_blind.json").write_text(
        json.dumps({**report, "cases": cases}, indent=1)
    )
    if mode in report and "propose" in names[mode]:
        plot_confusion(
            [c for c in cases if c["part"] == mode],
            "propose",
            out / "evaluation_blind_confusion.png",
        )
    if metadata_path:
        store_metrics(metadata_path, METRICS_KEYS[mode], report)
    return report


def add_metadata_option(parser) -> None:
    """The ``--write-metadata [METADATA]`` option of an evaluation."""
    parser.add_argument(
        "--write-metadata",
        nargs="?",
        const="",
        metavar="METADATA",
        help="store the summary in the model's metadata.json (or METADATA)",
    )


def metadata_target(args) -> Path | None:
    """The metadata file ``--write-metadata`` names, or None without it."""
    if args.write_metadata is None:
        return None
    return Path(args.write_metadata or Path(args.model) / "metadata.json")


def store_metrics(metadata_path, key: str, report: dict) -> None:
    """Store ``report`` under ``metrics[key]`` of a model metadata file."""
    target = json.loads(Path(metadata_path).read_text())
    target.setdefault("metrics", {})[key] = report
    Path(metadata_path).write_text(json.dumps(target, indent=1))


def _percent(summary, key) -> str:
    return f"{100 * summary[key]:5.1f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="onnx_models/mmnp")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--per-type", type=int, default=12, help="test PDFs per type"
    )
    parser.add_argument(
        "--robust-per-type",
        type=int,
        default=4,
        help="shapes per type in the robustness table (0: none)",
    )
    parser.add_argument(
        "--calibration-per-type",
        type=int,
        default=8,
        help="PDFs per type for calibrating the type weights (0: none)",
    )
    parser.add_argument(
        "--types", nargs="+", choices=CLUSTER_TYPES, default=CLUSTER_TYPES
    )
    parser.add_argument(
        "--factors",
        nargs="+",
        choices=tuple(LEVELS),
        default=tuple(LEVELS),
        help="factors varied in the robustness table",
    )
    parser.add_argument(
        "--splits",
        nargs="+",
        choices=SPLITS,
        help="parts to run (default: both; geometry alone for a "
        "geometry-split model, which refuses random)",
    )
    parser.add_argument(
        "--solve",
        action="store_true",
        help="also run solve on the random split (~8 s per PDF)",
    )
    add_strain_option(parser)
    parser.add_argument("--out", help="report folder (default: model)")
    add_metadata_option(parser)
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        # poor fits are expected on noisy, blind data; they are scored
        warnings.simplefilter("ignore", FitQualityWarning)
        report = evaluate(
            args.model,
            n_samples=args.samples,
            seed=args.seed,
            per_type=args.per_type,
            robust_per_type=args.robust_per_type,
            calibration_per_type=args.calibration_per_type,
            types=args.types,
            factors=args.factors,
            splits=args.splits,
            solve=args.solve,
            strain=SOLVE_STRAIN[args.strain],
            out=args.out,
            metadata_path=metadata_target(args),
        )
    for split in (s for s in SPLITS if s in report):
        print(f"{split} split: {report[split]['n_pdfs']} PDFs")
        for name, scores in report[split]["methods"].items():
            s = scores["overall"]
            print(
                f"  {name:15s} type={_percent(s, 'type')} "
                f"count={_percent(s, 'count')} "
                f"shape={_percent(s, 'shape')} "
                f"dRw={s['delta_rw']['median']:+.3f}"
            )
    for factor, levels in (
        report.get("robustness", {}).get("factors", {}).items()
    ):
        for level in levels:
            counts = " ".join(
                f"{name}={_percent(s, 'count')}"
                for name, s in level["methods"].items()
            )
            print(f"{factor:6s} {level['value']:<5g} count: {counts}")
    print(f"{report['seconds']:.0f} s")


if __name__ == "__main__":
    main()
