"""Evaluate an exported model on its test split.

Usage::

    python -m training.evaluate --model onnx_models/mmnp --write-metadata

For every test cluster the clean PDF (the reference parameters of
DESIGN.md on r = 0-29.99 Å) goes through the plugin's
:func:`diffpy.deepstruc.propose_structures`; the top-ranked candidate is
compared with the truth:

* **type**: the type of the candidate's nearest library geometry
  (smallest fingerprint distance, :mod:`diffpy.deepstruc.matching`);
* **count**: the candidate has exactly the true number of atoms;
* **MAE**: mean Euclidean distance per atom in Å after centring, optimal
  (Hungarian) assignment and rotation, over the count-matched cases,
  before the fit (decoded coordinates times the estimated d) and after it
  (zoom applied); the per-component value is reported too.

A JSON report and a confusion-matrix plot go to ``--out`` (default: the
model folder); ``--write-metadata`` also stores the metrics in the model's
``metadata.json`` (or in the metadata file it names) under the split mode
(``random`` or ``geometry``, with ``_nosearch`` appended for
``--no-search``).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from diffpy.deepstruc.clusters import CLUSTER_TYPES, enumerate_library
from diffpy.deepstruc.debye import simulate_pdf
from diffpy.deepstruc.matching import matched_errors
from diffpy.deepstruc.propose import propose_structures


def evaluate_cluster(record, model, n_samples, seed, search):
    """Propose for one library cluster; compare the top candidate."""
    r, g = simulate_pdf(record.xyz)
    start = time.perf_counter()
    best = propose_structures(
        (r, g),
        model=model,
        n_samples=n_samples,
        top=1,
        seed=seed,
        qmax=25.0,
        qmin=0.7,
        qdamp=0.04,
        element=record.element,
        search=search,
    )[0]
    seconds = time.perf_counter() - start
    result = {
        "id": record.id,
        "type": record.type,
        "n_atoms": record.n_atoms,
        "pred_type": best.nearest_reference.type,
        "pred_n_atoms": best.n_atoms,
        "rw": best.rw,
        "source": best.source,
        "seconds": seconds,
    }
    if best.n_atoms == record.n_atoms:
        raw = matched_errors(best.xyz / best.zoom, record.xyz)
        fitted = matched_errors(best.xyz, record.xyz)
        result.update(
            mae_raw=raw[0],
            mae_fit=fitted[0],
            mae_component_fit=fitted[2],
            mae_component_raw=raw[2],
        )
    return result


def summarise(rows) -> dict:
    """Accuracy, count rate and MAE (mean and std) of a list of results."""
    matched = [r for r in rows if "mae_fit" in r]

    def stats(key):
        values = np.array([r[key] for r in matched])
        if values.size == 0:
            return None
        return {"mean": float(values.mean()), "std": float(values.std())}

    return {
        "n": len(rows),
        "type_accuracy": float(
            np.mean([r["pred_type"] == r["type"] for r in rows])
        ),
        "exact_count": float(
            np.mean([r["pred_n_atoms"] == r["n_atoms"] for r in rows])
        ),
        "mae_raw": stats("mae_raw"),
        "mae_fit": stats("mae_fit"),
        "mae_component_raw": stats("mae_component_raw"),
        "mae_component_fit": stats("mae_component_fit"),
        "median_rw": float(np.median([r["rw"] for r in rows])),
        "search_wins": float(np.mean([r["source"] == "search" for r in rows])),
    }


def plot_confusion(rows, path):
    """Save the type confusion matrix (rows: truth, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    index = {t: i for i, t in enumerate(CLUSTER_TYPES)}
    matrix = np.zeros((len(index), len(index)), int)
    for r in rows:
        matrix[index[r["type"]], index[r["pred_type"]]] += 1
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
    ax.set_xlabel("predicted (nearest library geometry)")
    ax.set_ylabel("true type")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _evaluate_id(args):
    cluster_id, model, n_samples, seed, search = args
    record = enumerate_library()[cluster_id]
    return evaluate_cluster(record, model, n_samples, seed, search)


def evaluate(
    model_dir,
    *,
    n_samples=1000,
    seed=0,
    stride=1,
    search=True,
    jobs=1,
    out=None,
    metadata_path=None,
    note=None,
) -> dict:
    """Evaluate a model folder on (every ``stride``-th of) its test split.

    The report goes to ``out`` (default: the model folder) and, when
    ``metadata_path`` is given, into that metadata file's metrics.
    """
    from concurrent.futures import ProcessPoolExecutor

    model_dir = Path(model_dir).expanduser()
    meta_path = model_dir / "metadata.json"
    metadata = json.loads(meta_path.read_text())
    test_ids = metadata["split"]["test"][::stride]
    tasks = [(i, model_dir, n_samples, seed, search) for i in test_ids]
    with ProcessPoolExecutor(jobs) as pool:
        rows = list(
            tqdm(
                pool.map(_evaluate_id, tasks),
                total=len(tasks),
                desc="evaluating",
            )
        )
    report = {
        "split": metadata["split"]["mode"],
        "search": search,
        "stride": stride,
        "n_samples": n_samples,
        "seed": seed,
        "overall": summarise(rows),
        "per_type": {
            t: summarise([r for r in rows if r["type"] == t])
            for t in CLUSTER_TYPES
            if any(r["type"] == t for r in rows)
        },
        "median_seconds_per_pdf": float(
            np.median([r["seconds"] for r in rows])
        ),
    }
    if note:
        report["model_note"] = note
    out = Path(out or model_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = f"evaluation_{report['split']}" + ("" if search else "_nosearch")
    (out / f"{name}.json").write_text(
        json.dumps({**report, "results": rows}, indent=1)
    )
    plot_confusion(rows, out / f"{name}_confusion.png")
    if metadata_path:
        target = json.loads(Path(metadata_path).read_text())
        target["metrics"][name.removeprefix("evaluation_")] = report
        Path(metadata_path).write_text(json.dumps(target, indent=1))
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="onnx_models/mmnp")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--stride", type=int, default=1, help="every N-th test cluster"
    )
    parser.add_argument(
        "--no-search", action="store_true", help="prior samples only"
    )
    parser.add_argument("--jobs", type=int, default=1, help="processes")
    parser.add_argument("--out", help="report folder (default: model)")
    parser.add_argument(
        "--write-metadata",
        nargs="?",
        const="",
        metavar="METADATA",
        help="store the metrics in the model's metadata.json (or METADATA)",
    )
    parser.add_argument("--note", help="remark on the model, for the docs")
    args = parser.parse_args(argv)
    report = evaluate(
        args.model,
        n_samples=args.samples,
        seed=args.seed,
        stride=args.stride,
        search=not args.no_search,
        jobs=args.jobs,
        out=args.out,
        note=args.note,
        metadata_path=(
            None
            if args.write_metadata is None
            else args.write_metadata or Path(args.model) / "metadata.json"
        ),
    )
    print(json.dumps({k: report[k] for k in ("split", "overall")}, indent=1))
    for t, s in report["per_type"].items():
        mae = s["mae_fit"]["mean"] if s["mae_fit"] else float("nan")
        print(
            f"{t:12s} n={s['n']:4d} type={s['type_accuracy']:.3f} "
            f"count={s['exact_count']:.3f} mae_fit={mae:.3f} Å"
        )


if __name__ == "__main__":
    main()
