"""Evaluate the stacking-fault model and its alternatives on blind PDFs.

Usage::

    python -m training.evaluate_stacking --model onnx_models/stacking \\
        --sequence-model ~/.cache/diffpy.deepstruc/models/stacking_sequence \\
        --write-metadata

Each test PDF is a close-packed particle at the nearest-neighbour
distance d of a real close-packed metal (:data:`METAL_D`) times a factor
within ±:data:`D_SPREAD`, simulated like the test PDFs of
:mod:`training.evaluate` (its :class:`~training.evaluate.TestCase`: the
same r grid and Qmin, no strain) at Qmax, Biso and qdamp drawn in
:data:`RANGES`, with Gaussian noise of :data:`NOISE` of max |G| on every
other PDF of a class.  The training PDFs had d = 2.54 Å within ±3 %, Qmax
18-28 Å⁻¹, Biso 0.1-0.8 Å² and qdamp 0.02-0.06 Å⁻¹.  The methods get
G(r), Qmax and Qmin only, never d, qdamp, Biso or the class.

Three parts (:data:`PARTS`), up to ``--per-class`` particles of each
class (fcc, hcp, faulted; classes with fewer test particles give all
they have):

* ``random``: test-split particles of the model (``--model``), whose
  library (all 2612 particles of :mod:`diffpy.deepstruc.stacking`)
  holds them;
* ``sequence``: test-split particles of the model trained on the
  sequence-disjoint split (``--sequence-model``): no h/c sequence of
  them occurs in its training; ``propose`` snaps to and ``mine`` fits
  only the particles of that model's training split;
* ``varied``: particles outside the library, cut with other in-plane
  outlines than :data:`diffpy.deepstruc.stacking.SHAPES`
  (:data:`VARIED_SHAPES`), 3-10 layers and 5-200 atoms, every layer at
  least 3 atoms, their pair distances unlike those of every library
  particle; evaluated with ``--model`` and the whole library.

Every method runs on the same PDFs (:data:`METHODS`): ``propose``
(:func:`diffpy.deepstruc.propose_structures`, snapping to the part's
library), ``propose_nosnap`` (``snap=False``: no library particles among
the candidates), ``mine``
(:func:`diffpy.deepstruc.mining.mine_library` over the part's library)
and, with ``--solve``, ``solve``
(:func:`diffpy.deepstruc.solve_structure` with the part's model and
library: site searches from the best proposals; it refines qdamp, and
its ΔRw is taken against the truth fitted with qdamp refined too).
The top candidate is compared with the truth: **sequence**, the
canonical ABC sequence that
:func:`~diffpy.deepstruc.stacking.stacking_sequence` finds in it equals
the one it finds in the true particle (no stacking found counts as
wrong; the analysis of both decides which {111} axis of an fcc particle
is read); **hc**, the h/c forms agree up to reversal, which the
canonical sequence fixes, so it equals **sequence** by construction;
**class**, fcc, hcp or faulted agree; **count**, the true number of
atoms; **ΔRw**, Rw of the top candidate minus Rw of the true particle
fitted the same way (:func:`diffpy.deepstruc.fitting.fit_cluster`); and
**MAE** (Å) after centring, optimal assignment and rotation over the
count-matched PDFs only (:func:`aligned_mae`: the clusters are matched
from their layer frames, since ``solve`` returns its particles in the
frame of its search template).

The report (every PDF's results and the summaries) goes to
``evaluation_stacking.json`` in ``--out`` (default: the model folder);
``--figure`` (default ``docs/source/_static/stacking_latent.png``) gets
the latent map of the model's training particles coloured by class and
by the share of h letters of their h/c sequence; ``--write-metadata``
stores the summary under ``metrics["stacking_blind"]`` of the model's
``metadata.json`` (or the metadata file it names).
"""

import argparse
import json
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.distance import pdist
from tqdm import tqdm

from diffpy.deepstruc.debye import DebyeParameters
from diffpy.deepstruc.fitting import FIT_RANGE
from diffpy.deepstruc.libraries import Library, load_library
from diffpy.deepstruc.matching import matched_errors
from diffpy.deepstruc.mining import mine_library
from diffpy.deepstruc.pdfdata import instrument_parameters, load_pdf
from diffpy.deepstruc.plausibility import FitQualityWarning
from diffpy.deepstruc.propose import propose_structures
from diffpy.deepstruc.solve import solve_structure
from diffpy.deepstruc.stacking import (
    KINDS,
    LAYER_SPACING,
    MAX_ATOMS,
    MAX_LAYERS,
    MIN_ATOMS,
    MIN_LAYER_ATOMS,
    MIN_LAYERS,
    REGISTRIES,
    Stacking,
    build_particle,
    canonical_sequence,
    disc,
    hc_sequence,
    polygon,
    stacking_layers,
    stacking_particles,
    stacking_sequence,
)
from training.dataset import stacking_records
from training.evaluate import (
    ELEMENT,
    QMIN,
    REPO_ROOT,
    SOLVE,
    TestCase,
    _commit,
    _stats,
    add_metadata_option,
    delta_rw,
    metadata_target,
    store_metrics,
    truth_rw,
)

#: Nearest-neighbour distances (Å) of close-packed metals at room
#: temperature (a / sqrt 2 of the fcc metals, a of hcp Co).  The
#: package's radius table (``clusters.METALLIC_RADII``) gives 6-8 % less
#: (Ni 2.30 Å, Au 2.68 Å), so textbook values are used.
METAL_D = {
    "Ni": 2.49,
    "Co": 2.51,
    "Cu": 2.56,
    "Rh": 2.69,
    "Ir": 2.71,
    "Pd": 2.75,
    "Pt": 2.77,
    "Au": 2.88,
    "Ag": 2.89,
}
#: Largest relative deviation of a test d from its metal's value.
D_SPREAD = 0.02
#: Ranges of Qmax and qdamp (Å⁻¹) and Biso (Å²), drawn uniformly.
RANGES = {"qmax": (20.0, 28.0), "biso": (0.2, 0.6), "qdamp": (0.02, 0.06)}
#: Standard deviation of the noise (fraction of max |G|) on every other
#: PDF of a class; the others are clean.
NOISE = 0.01
#: Parts of the evaluation.
PARTS = ("random", "sequence", "varied")
#: Methods, each judged by its top candidate.
METHODS = ("propose", "propose_nosnap", "mine")
#: In-plane outlines of the ``varied`` particles, none of them in
#: :data:`diffpy.deepstruc.stacking.SHAPES` (each holds other sites of
#: at least one registry than every one of those; the pair distances of
#: every drawn particle are checked against the library's too).
VARIED_SHAPES = (
    *(disc(k) for k in (3, 7, 16, 27)),
    *(polygon(m, m) for m in (8, 10)),
    *(polygon(m) for m in (4, 6, 8)),
    *(polygon(m1, m2) for m1, m2 in ((4, 5), (5, 7), (6, 7), (7, 9))),
)
#: Draws of a ``varied`` particle before a class is given up.
MAX_TRIES = 10000


@dataclass(frozen=True)
class Particle:
    """A close-packed test particle (the ``shape`` of a :class:`TestCase`).

    Attributes
    ----------
    label : str
        ``"stacking <abc> <outline>"``.
    kind : str
        ``"fcc"``, ``"hcp"`` or ``"faulted"``.
    abc : str
        Canonical stacking sequence it was built with.
    xyz : numpy.ndarray
        ``(n_atoms, 3)`` coordinates in units of d.
    index : int or None
        Position in :func:`diffpy.deepstruc.stacking.stacking_particles`,
        None for a particle outside the library.
    """

    label: str
    kind: str
    abc: str
    xyz: np.ndarray
    index: int | None = None


@dataclass(frozen=True)
class Setup:
    """The model and library that the methods of one part use."""

    model: Path
    library: Library
    n_samples: int
    seed: int


def library_particle(index: int) -> Particle:
    """Particle ``index`` of the generated library."""
    p = stacking_particles()[index]
    return Particle(p.label, p.kind, p.stacking.abc, p.xyz, index)


def split_particles(metadata, part: str) -> list[int]:
    """Library indices of the particles of a split's ``part`` (sorted).

    The split's record ids index the model's data set
    (:func:`training.dataset.stacking_records` with the ``radii`` of the
    training configuration stored in the metadata).
    """
    data = metadata["training"]["config"]["data"]
    if data.get("set") != "stacking":
        raise ValueError(
            f"The model {metadata['name']!r} was not trained on the "
            "stacking data set; please give a stacking model."
        )
    records = stacking_records(data.get("radii"))
    return sorted({records[i].shape_id for i in metadata["split"][part]})


def per_class(indices, n, rng) -> list[Particle]:
    """Up to ``n`` random library particles of each class of ``indices``."""
    particles = stacking_particles()
    chosen = []
    for kind in KINDS:
        members = [i for i in indices if particles[i].kind == kind]
        chosen += [
            library_particle(int(i)) for i in rng.permutation(members)[:n]
        ]
    return chosen


def pair_key(xyz: np.ndarray) -> bytes:
    """Sorted pair distances of a particle in units of d, exactly.

    Squared distances of close-packed sites are multiples of d²/3, so
    the counts of the integers 3 (r/d)² identify them.
    """
    squared = np.rint(3.0 * pdist(xyz, "sqeuclidean")).astype(np.int64)
    return np.bincount(squared).tobytes()


def random_sequence(kind: str, n_layers: int, rng) -> str:
    """A registry sequence of a class, randomly relabelled and reversed.

    fcc has only c, hcp only h layers; a faulted sequence has random h/c
    letters with both present (``n_layers`` >= 4).
    """
    n_letters = n_layers - 2
    if kind == "faulted":
        letters = ""
        while len(set(letters)) < 2:
            letters = "".join(rng.choice(["h", "c"], n_letters))
    else:
        letters = ("c" if kind == "fcc" else "h") * n_letters
    sequence = "AB"
    for letter in letters:
        if letter == "h":
            sequence += sequence[-2]
        else:
            sequence += (set(REGISTRIES) - set(sequence[-2:])).pop()
    names = "".join(rng.permutation(list(REGISTRIES)))
    sequence = sequence.translate(str.maketrans(REGISTRIES, names))
    return sequence[::-1] if rng.random() < 0.5 else sequence


def layer_counts(xyz: np.ndarray) -> np.ndarray:
    """Atoms per layer of a built particle (layers normal to z)."""
    z = xyz[:, 2] - xyz[:, 2].min()
    return np.bincount(np.rint(z / LAYER_SPACING).astype(int))


def varied_particles(n, rng) -> list[Particle]:
    """``n`` particles of each class that the library does not hold.

    Outline, number of layers and sequence are drawn until the particle
    has :data:`~diffpy.deepstruc.stacking.MIN_ATOMS` to
    :data:`~diffpy.deepstruc.stacking.MAX_ATOMS` atoms, every layer at
    least :data:`~diffpy.deepstruc.stacking.MIN_LAYER_ATOMS`, and pair
    distances unlike those of every library particle and of the
    particles drawn before.
    """
    seen = {pair_key(p.xyz) for p in stacking_particles()}
    chosen = []
    for kind in KINDS:
        found = 0
        for _ in range(MAX_TRIES):
            if found == n:
                break
            shape = VARIED_SHAPES[rng.integers(len(VARIED_SHAPES))]
            low = MIN_LAYERS + (kind == "faulted")
            sequence = random_sequence(
                kind, int(rng.integers(low, MAX_LAYERS + 1)), rng
            )
            try:
                xyz = build_particle(sequence, shape)
            except ValueError:  # a registry without sites
                continue
            key = pair_key(xyz)
            if (
                not MIN_ATOMS <= len(xyz) <= MAX_ATOMS
                or layer_counts(xyz).min() < MIN_LAYER_ATOMS
                or key in seen
            ):
                continue
            seen.add(key)
            abc = canonical_sequence(sequence)
            label = f"stacking {abc} {shape.name}"
            chosen.append(Particle(label, kind, abc, xyz))
            found += 1
        else:
            raise RuntimeError(f"Found {found} of {n} {kind} particles.")
    return chosen


def draw_cases(particles, rng) -> list[TestCase]:
    """One blind test PDF per particle; noise on every other of a class."""
    cases, seen = [], Counter()
    for particle in particles:
        metal = str(rng.choice(sorted(METAL_D)))
        d = METAL_D[metal] * rng.uniform(1.0 - D_SPREAD, 1.0 + D_SPREAD)
        conditions = {k: float(rng.uniform(*s)) for k, s in RANGES.items()}
        noisy = seen[particle.kind] % 2 == 1
        seen[particle.kind] += 1
        conditions.update(metal=metal, noise=NOISE * noisy, strain=0.0)
        cases.append(
            TestCase(
                shape=particle,
                d=float(d),
                conditions=conditions,
                axis=(0.0, 0.0, 1.0),
                seed=int(rng.integers(2**32)),
            )
        )
    return cases


def top_candidate(method: str, gr, qmax: float, setup: Setup):
    """The best candidate of a method for a test PDF."""
    header = {"qmax": qmax, "qmin": QMIN, "element": ELEMENT}
    if method == "mine":
        return mine_library(
            gr, library=setup.library, progress=False, **header
        )[0]
    if method == SOLVE:
        return solve_structure(
            gr,
            model=setup.model,
            library=setup.library,
            seed=setup.seed,
            **header,
        )[0]
    snap = method == "propose"
    return propose_structures(
        gr,
        model=setup.model,
        n_samples=setup.n_samples,
        seed=setup.seed,
        snap=snap,
        library=setup.library if snap else None,
        **header,
    )[0]


def _describe(stacking: Stacking | None) -> dict:
    if stacking is None:
        return {"abc": None, "hc": None, "kind": None}
    return {"abc": stacking.abc, "hc": stacking.hc, "kind": stacking.kind}


def _scores(found: Stacking | None, truth: Stacking) -> dict:
    """Whether the sequence, h/c form and class found are the truth's."""
    if found is None:
        return {"sequence": False, "hc": False, "class": False}
    return {
        "sequence": found.abc == truth.abc,
        "hc": truth.hc in (found.hc, found.hc[::-1]),
        "class": found.kind == truth.kind,
    }


def nearest_start_mae(starts, truth: np.ndarray) -> float:
    """MAE (Å) matched from the start that lies closest to the truth.

    :func:`diffpy.deepstruc.matching.matched_errors` finds the best match
    only near its starting orientation; of ``starts`` (orientations of
    one centred cluster), the one with the least mean distance of each
    atom to the nearest true one is matched.
    """
    tree = cKDTree(truth)
    best = min(starts, key=lambda start: tree.query(start)[0].mean())
    return matched_errors(best, truth)[0]


def aligned_mae(xyz: np.ndarray, truth: np.ndarray) -> float:
    """MAE (Å) of a close-packed cluster against the truth, aligned.

    :func:`diffpy.deepstruc.matching.matched_errors` finds the best match
    only near the starting orientation, and ``solve`` returns its
    particles in the frame of its search template.  So both are turned
    into their layer frames
    (:attr:`diffpy.deepstruc.stacking.StackingLayers.frame`), and the
    match starts from whichever of the twelve turns of the cluster by
    60 degrees about the layer normal, either way up, lies closest to the
    truth (least mean distance of each atom to the nearest true one).
    Clusters that are not close-packed are matched as they are.
    """
    xyz = np.asarray(xyz, float) - np.mean(xyz, 0)
    truth = np.asarray(truth, float) - np.mean(truth, 0)
    layers = [stacking_layers(x) for x in (xyz, truth)]
    if None in layers:
        return matched_errors(xyz, truth)[0]
    xyz, truth = xyz @ layers[0].frame.T, truth @ layers[1].frame.T
    starts = []
    for angle in np.radians(np.arange(0, 360, 60)):
        c, s = np.cos(angle), np.sin(angle)
        turn = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        for flip in (np.eye(3), np.diag([1.0, -1.0, -1.0])):
            starts.append(xyz @ (flip @ turn).T)
    return nearest_start_mae(starts, truth)


def evaluate_case(case: TestCase, setup: Setup, names=METHODS) -> dict:
    """Run the methods ``names`` on one test PDF; compare with the truth.

    Returns
    -------
    dict
        The truth (``label``, ``index``, ``kind``, ``abc`` and ``hc`` as
        analysed, ``n_atoms``, ``d``, the conditions, ``rw_true``) and
        under ``methods`` each method's top candidate (``abc``, ``hc``,
        ``kind`` found in it, ``n_atoms``, ``rw``, ``source``, ``label``,
        ``seconds``, ``delta_rw``), its scores (``sequence``, ``hc``,
        ``class``, ``count``) and, when the count is right, ``mae`` (Å).
    """
    gr = case.pdf()
    qmax = case.conditions["qmax"]
    pdf = load_pdf(gr, qmax=qmax, qmin=QMIN)
    params = instrument_parameters(pdf, asdict(DebyeParameters()))
    inside = (pdf.r >= FIT_RANGE[0]) & (pdf.r <= FIT_RANGE[1])
    truth = case.structure()
    particle = case.shape
    stacking = stacking_sequence(truth) or Stacking.from_sequence(particle.abc)
    row = {
        "label": particle.label,
        "index": particle.index,
        **_describe(stacking),
        "kind": particle.kind,
        "n_atoms": len(truth),
        "d": case.d,
        **case.conditions,
        **truth_rw(truth, pdf.r[inside], pdf.g[inside], params),
        "methods": {},
    }
    for name in names:
        start = time.perf_counter()
        best = top_candidate(name, gr, qmax, setup)
        found = best.stacking
        answer = {
            **_describe(found),
            "n_atoms": best.n_atoms,
            "rw": best.rw,
            "source": best.source,
            "label": best.label,
            "seconds": time.perf_counter() - start,
            "delta_rw": delta_rw(name, best.rw, row),
            **_scores(found, stacking),
            "count": best.n_atoms == row["n_atoms"],
        }
        if answer["count"]:
            answer["mae"] = aligned_mae(best.xyz, truth)
        row["methods"][name] = answer
    return row


def summarise(rows, method) -> dict:
    """Scores of one method over test PDFs (rows of :func:`evaluate_case`).

    ``sequence``, ``hc``, ``class``, ``count`` and ``no_stacking`` (no
    close-packed stacking found in the top candidate) are fractions of
    all ``n`` PDFs; ``delta_rw`` the median and mean over all of them;
    ``mae`` (mean and std, Å) is over the ``n_mae`` count-matched PDFs.
    """
    answers = [row["methods"][method] for row in rows]
    mae = [a["mae"] for a in answers if "mae" in a]
    delta = [a["delta_rw"] for a in answers]
    scores = {
        key: float(np.mean([a[key] for a in answers]))
        for key in ("sequence", "hc", "class", "count")
    }
    return {
        "n": len(rows),
        **scores,
        "no_stacking": float(np.mean([a["kind"] is None for a in answers])),
        "delta_rw": {
            "median": float(np.median(delta)),
            "mean": float(np.mean(delta)),
        },
        "mae": _stats(mae),
        "n_mae": len(mae),
        "median_seconds": float(np.median([a["seconds"] for a in answers])),
    }


def part_report(rows, names=METHODS) -> dict:
    """Scores per method, overall and per class, and its winning sources."""
    kinds = [k for k in KINDS if any(r["kind"] == k for r in rows)]
    return {
        "n_pdfs": len(rows),
        "n_noisy": sum(r["noise"] > 0 for r in rows),
        "n_per_class": {k: sum(r["kind"] == k for r in rows) for k in kinds},
        "methods": {
            name: {
                "overall": summarise(rows, name),
                "per_class": {
                    k: summarise([r for r in rows if r["kind"] == k], name)
                    for k in kinds
                },
                "sources": dict(
                    Counter(r["methods"][name]["source"] for r in rows)
                ),
            }
            for name in names
        },
    }


def part_setup(part, metadata, model_dir, sequence_dir, n_samples, seed):
    """Library indices of a part's test particles and its :class:`Setup`.

    The indices are None for the ``varied`` part, whose particles are
    built anew (:func:`varied_particles`).
    """
    library = load_library("stacking")
    if metadata["split"]["mode"] != "random":
        raise ValueError(
            f"{model_dir} was trained on the "
            f"{metadata['split']['mode']!r} split; please give the model "
            "of the random split as --model."
        )
    if part == "random":
        return split_particles(metadata, "test"), Setup(
            model_dir, library, n_samples, seed
        )
    if part == "varied":
        return None, Setup(model_dir, library, n_samples, seed)
    if sequence_dir is None:
        raise ValueError(
            "The sequence part needs the model of the sequence split; "
            "please give --sequence-model."
        )
    sequence_meta = json.loads((sequence_dir / "metadata.json").read_text())
    if sequence_meta["split"]["mode"] != "sequence":
        raise ValueError(
            f"{sequence_dir} was trained on the "
            f"{sequence_meta['split']['mode']!r} split, not 'sequence'."
        )
    train = split_particles(sequence_meta, "train")
    test = split_particles(sequence_meta, "test")
    particles = stacking_particles()
    known = {particles[i].stacking.abc for i in train}
    if any(particles[i].stacking.abc in known for i in test):
        raise ValueError(
            f"Test sequences of {sequence_dir} occur in its training split."
        )
    training = Library(
        "stacking sequence-split training particles",
        tuple(library[i] for i in train),
    )
    return test, Setup(sequence_dir, training, n_samples, seed)


def _home_relative(path) -> str:
    """A path with the home folder written ``~`` (for the report)."""
    path = Path(path).expanduser()
    if path.is_relative_to(Path.home()):
        return str(Path("~") / path.relative_to(Path.home()))
    return str(path)


def _model_info(metadata) -> dict:
    training = metadata["training"]
    return {
        "name": metadata["name"],
        "split": metadata["split"]["mode"],
        "training_commit": training["git_commit"],
        "training_wall_time_s": training.get("wall_time_s"),
        "epochs": training["epochs"],
    }


def plot_latent(metadata, path) -> None:
    """Latent map of the training particles by class and by h share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = stacking_records(
        metadata["training"]["config"]["data"].get("radii")
    )
    latent = metadata["latent_map"]
    z = np.asarray(latent["z"])
    kinds = np.asarray(latent["type"])
    share = []
    for i in latent["id"]:
        hc = hc_sequence(records[i].sequence)
        share.append(hc.count("h") / len(hc))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    # the many faulted particles first, under the few fcc and hcp ones
    for kind, colour in (("faulted", "0.6"), ("fcc", "C0"), ("hcp", "C3")):
        axes[0].scatter(*z[kinds == kind].T, s=6, c=colour, label=kind)
    axes[0].legend(title="class", markerscale=3)
    shown = axes[1].scatter(*z.T, s=6, c=share, cmap="viridis")
    fig.colorbar(shown, ax=axes[1], label="share of h layers")
    for ax, title in zip(axes, ("(a) stacking class", "(b) h/c sequence")):
        ax.set_title(title)
        ax.set_xlabel("z₁")
    axes[0].set_ylabel("z₂")
    fig.suptitle(
        f"{metadata['name']}: {len(z)} training particles in the latent "
        "plane"
    )
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def evaluate(
    model_dir,
    sequence_model=None,
    *,
    n_per_class=12,
    seed=0,
    n_samples=1000,
    parts=PARTS,
    solve=False,
    out=None,
    figure=None,
    metadata_path=None,
) -> dict:
    """Evaluate the stacking model and the other methods on blind PDFs.

    Parameters
    ----------
    model_dir : str or pathlib.Path
        Folder of the model trained on the random split.
    sequence_model : str or pathlib.Path, optional
        Folder of the model trained on the sequence split (needed by the
        ``sequence`` part).
    n_per_class : int
        Test particles per class in each part (at most as many as the
        split's test part holds).
    seed : int
        Seed of the test PDFs and of ``propose``.
    n_samples : int
        Prior samples of ``propose``.
    parts : sequence of str
        Parts of :data:`PARTS` to run.
    solve : bool
        Run ``solve`` too.
    out : str or pathlib.Path, optional
        Report folder (default: the model folder).
    figure : str or pathlib.Path, optional
        Where the latent map goes (none when not given).
    metadata_path : str or pathlib.Path, optional
        A metadata file whose ``metrics["stacking_blind"]`` receives the
        summary.

    Returns
    -------
    dict
        The summary (the report without the per-PDF ``cases``).
    """
    start = time.perf_counter()
    names = (*METHODS, SOLVE) if solve else METHODS
    model_dir = Path(model_dir).expanduser()
    metadata = json.loads((model_dir / "metadata.json").read_text())
    report = {
        "model": _model_info(metadata),
        "evaluated_commit": _commit(),
        "protocol": {
            "metal_d": METAL_D,
            "d_spread": D_SPREAD,
            "qmin": QMIN,
            "ranges": RANGES,
            "noise": NOISE,
            "noisy": "every other PDF of a class",
            "given_to_methods": ["G(r)", "qmax", "qmin"],
            "varied_shapes": [s.name for s in VARIED_SHAPES],
        },
        "settings": {
            "n_samples": n_samples,
            "seed": seed,
            "per_class": n_per_class,
            "parts": list(parts),
            "methods": list(names),
            "sequence_model": (
                _home_relative(sequence_model)
                if sequence_model and "sequence" in parts
                else None
            ),
        },
    }
    if sequence_model is not None:
        sequence_model = Path(sequence_model).expanduser()
    cases = []
    for part in parts:
        indices, setup = part_setup(
            part, metadata, model_dir, sequence_model, n_samples, seed
        )
        rng = np.random.default_rng([seed, PARTS.index(part)])
        if indices is None:
            particles = varied_particles(n_per_class, rng)
        else:
            particles = per_class(indices, n_per_class, rng)
        rows = [
            evaluate_case(case, setup, names)
            for case in tqdm(draw_cases(particles, rng), desc=part)
        ]
        report[part] = part_report(rows, names)
        cases += [{"part": part, **row} for row in rows]
        if part == "sequence":
            sequence_meta = json.loads(
                (sequence_model / "metadata.json").read_text()
            )
            report[part]["model"] = _model_info(sequence_meta)
            report[part]["library_size"] = len(setup.library)
    report["seconds"] = time.perf_counter() - start
    out = Path(out or model_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation_stacking.json").write_text(
        json.dumps({**report, "cases": cases}, indent=1)
    )
    if figure:
        plot_latent(metadata, figure)
    if metadata_path:
        store_metrics(metadata_path, "stacking_blind", report)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="onnx_models/stacking")
    parser.add_argument(
        "--sequence-model",
        default="~/.cache/diffpy.deepstruc/models/stacking_sequence",
        help="model folder of the sequence split",
    )
    parser.add_argument(
        "--per-class", type=int, default=12, help="test PDFs per class"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS)
    parser.add_argument(
        "--solve",
        action="store_true",
        help="also run solve (site searches from the proposals)",
    )
    parser.add_argument("--out", help="report folder (default: model)")
    parser.add_argument(
        "--figure",
        default=REPO_ROOT
        / "docs"
        / "source"
        / "_static"
        / "stacking_latent.png",
        help="latent-map figure ('' for none)",
    )
    add_metadata_option(parser)
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        # poor fits are expected on noisy, blind data; they are scored
        warnings.simplefilter("ignore", FitQualityWarning)
        report = evaluate(
            args.model,
            args.sequence_model,
            n_per_class=args.per_class,
            seed=args.seed,
            n_samples=args.samples,
            parts=args.parts,
            solve=args.solve,
            out=args.out,
            figure=args.figure,
            metadata_path=metadata_target(args),
        )
    for part in args.parts:
        print(f"{part}: {report[part]['n_pdfs']} PDFs")
        for name, scores in report[part]["methods"].items():
            s = scores["overall"]
            print(
                f"  {name:15s} sequence={100 * s['sequence']:5.1f} "
                f"class={100 * s['class']:5.1f} "
                f"count={100 * s['count']:5.1f} "
                f"dRw={s['delta_rw']['median']:+.3f} "
                f"s={s['median_seconds']:.1f}"
            )
    print(f"{report['seconds']:.0f} s")


if __name__ == "__main__":
    main()
