"""Write ``docs/source/metrics.rst`` from a model's ``metadata.json``.

Usage::

    python -m training.metrics_page --model onnx_models/mmnp

Every figure on the page is read from the metrics that
``python -m training.evaluate --write-metadata`` stored in the metadata,
so the documentation cannot drift from the shipped model.
"""

import argparse
import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

PAPER = {
    "mae_raw": "0.128 ± 0.073",
    "mae_fit": "0.093 ± 0.058",
}

RUNS = {
    "random": "random 60/20/20 split, latent search on (shipped settings)",
    "random_nosearch": "random split, prior samples only (no latent search)",
    "geometry": "geometry-disjoint split (whole shapes held out)",
    "geometry_nosearch": "geometry-disjoint split, prior samples only",
}


def _mae(stats) -> str:
    if not stats:
        return "n/a"
    return f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def _row(name, s) -> str:
    return (
        f"   * - {name}\n     - {s['n']}\n"
        f"     - {100 * s['type_accuracy']:.1f}\n"
        f"     - {100 * s['exact_count']:.1f}\n"
        f"     - {_mae(s['mae_raw'])}\n     - {_mae(s['mae_fit'])}\n"
        f"     - {_mae(s['mae_component_fit'])}\n"
        f"     - {s['median_rw']:.3f}\n"
    )


def _table(title, report) -> str:
    header = (
        f".. list-table:: {title}\n   :header-rows: 1\n\n"
        "   * - type\n     - n\n     - type %\n     - exact count %\n"
        "     - MAE raw (Å)\n     - MAE fitted (Å)\n"
        "     - MAE per component, fitted (Å)\n     - median Rw\n"
    )
    rows = [_row(t, s) for t, s in report["per_type"].items()]
    return header + "".join(rows) + _row("**all**", report["overall"])


def render(metadata: dict) -> str:
    """The reStructuredText of the metrics page."""
    training = metadata["training"]
    lines = [
        "Measured accuracy",
        "=================",
        "",
        "All figures below were measured with ``python -m training.evaluate``"
        " on the test splits recorded in ``onnx_models/"
        f"{metadata['name']}/metadata.json`` and are copied from there by "
        "``python -m training.metrics_page``.  Test PDFs are simulated "
        "with the reference parameters (Qmax 25 Å⁻¹, qdamp 0.04 Å⁻¹, "
        "delta2 2 Å², Biso 0.3 Å²); the top-ranked candidate of "
        "``propose_structures`` (1000 prior samples, seed 0) is compared "
        "with the true cluster.  The metrics are defined in :doc:`model`.",
        "",
        f"Shipped model ``{metadata['name']}``: trained on the CPU for "
        f"{training['epochs']} epochs"
        + (
            f" ({training['wall_time_s'] / 60:.0f} min)"
            if training.get("wall_time_s")
            else ""
        )
        + (
            ", then decoder polishing"
            if training.get("decoder_polished")
            else ""
        )
        + f" (git {training['git_commit'][:12]}).  onnxruntime matches "
        f"PyTorch to {metadata['onnx_parity_max_abs_diff']:.1e} (max abs).",
        "",
        "The DeepStruc paper reports, for its simulated test PDFs, a mean "
        f"absolute error of the atom positions of {PAPER['mae_raw']} Å "
        f"before and {PAPER['mae_fit']} Å after fitting scale, zoom and "
        "ADP.",
        "",
    ]
    for key, title in RUNS.items():
        report = metadata["metrics"].get(key)
        if not report:
            continue
        note = (
            f"one test cluster in {report['stride']}"
            if report.get("stride", 1) > 1
            else "the whole test split"
        )
        lines += [
            title[0].upper() + title[1:],
            "-" * len(title),
            "",
            f"{report['overall']['n']} PDFs ({note}); median "
            f"{report['median_seconds_per_pdf']:.2f} s per PDF (timed "
            "beside other evaluation jobs; ``benchmarks/bench_propose.py`` "
            "gives clean timings); the latent "
            f"search found the best candidate in "
            f"{100 * report['overall']['search_wins']:.0f} % of cases.",
            "",
            _table(title, report),
            "",
        ]
        if report.get("model_note"):
            lines += [report["model_note"], ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="onnx_models/mmnp")
    parser.add_argument(
        "--out", default=REPO_ROOT / "docs" / "source" / "metrics.rst"
    )
    args = parser.parse_args(argv)
    metadata = json.loads((Path(args.model) / "metadata.json").read_text())
    Path(args.out).write_text(render(metadata))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
