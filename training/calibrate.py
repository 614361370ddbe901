"""Calibrate the type weights and check them in a reliability table.

Usage::

    python -m training.calibrate \
        --evaluation onnx_models/mmnp/evaluation_blind.json

The blind evaluation (:mod:`training.evaluate`) keeps, for every answer of
``propose`` and ``mine``, the least Rw of each structure type and the Rw
of the data's noise, and for every PDF its independent points, so the
type weights of :mod:`diffpy.deepstruc.confidence` can be recomputed for
any temperature.  The temperature is fitted on the calibration parts
only (PDFs drawn for them alone, of shapes in the library at other d and
of shapes that the library lacks): the one of :data:`TEMPERATURES` that
gives the true type the largest mean log weight, over all their answers.
The weights are then checked on the other parts: the PDFs are binned by
the weight of the answer (the type of largest weight), and each bin
gives how many answers were right.  The weights are calibrated when the
answers given weight >= 0.9 are right at least 90 % of the time.

Writes ``type_calibration.json`` next to the evaluation and prints the
tables; the shipped :data:`diffpy.deepstruc.confidence.TEMPERATURE` is
the fitted value, rounded to two significant digits.
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np

from diffpy.deepstruc.confidence import type_weights
from training.evaluate import CALIBRATION_PARTS, WEIGHTED_METHODS

#: Temperatures tried, in equal ratios; none below 1, which would make
#: the weights sharper than the likelihood of independent noise.
TEMPERATURES = np.geomspace(1.0, 1000.0, 151)
#: Bin edges of the weight of the answer.
BINS = (0.0, 0.5, 0.7, 0.9, 0.99, 1.0)
#: Weight above which the answers must be right this often.
CONFIDENT = 0.9
#: Log of the least weight counted, so that one confident miss does not
#: make the log loss infinite.
LOG_FLOOR = math.log(1e-12)
#: Parts of the evaluation that the weights are checked on.
CHECKED_PARTS = (
    "random",
    "robustness",
    "geometry",
    *CALIBRATION_PARTS.values(),
)


def weights(row: dict, method: str, temperature: float) -> dict:
    """The type weights of one method's answer to one PDF."""
    answer = row["methods"][method]
    return type_weights(
        answer["type_rw"], answer["rw_noise"], row["n_points"], temperature
    )


def weighed(rows: list[dict], method: str) -> list[dict]:
    """The rows for which ``method`` gave type weights."""
    return [r for r in rows if "type_rw" in r["methods"].get(method, {})]


def log_score(rows: list[dict], temperature: float) -> float:
    """Mean log weight of the true type, over the methods' answers."""
    scores = []
    for method in WEIGHTED_METHODS:
        for row in weighed(rows, method):
            weight = weights(row, method, temperature).get(row["type"], 0.0)
            scores.append(math.log(weight) if weight > 0 else LOG_FLOOR)
    return float(np.mean(np.maximum(scores, LOG_FLOOR)))


def fit_temperature(rows: list[dict]) -> float:
    """The temperature of :data:`TEMPERATURES` with the best log score."""
    scores = [log_score(rows, t) for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmax(scores))])


def reliability(rows: list[dict], method: str, temperature: float) -> dict:
    """Answers binned by their weight, and how many were right.

    Returns
    -------
    dict
        ``n`` (PDFs with weights), ``bins`` (``low``, ``high``, ``n``,
        ``mean_weight``, ``right``: the fraction right, None for an empty
        bin) and ``confident`` (the same for weight >= :data:`CONFIDENT`).
    """
    answers = []
    for row in weighed(rows, method):
        w = weights(row, method, temperature)
        best = next(iter(w))
        answers.append((w[best], best == row["type"]))
    weight = np.array([a[0] for a in answers])
    right = np.array([a[1] for a in answers], bool)

    def summary(inside, low, high):
        n = int(inside.sum())
        return {
            "low": low,
            "high": high,
            "n": n,
            "mean_weight": float(weight[inside].mean()) if n else None,
            "right": float(right[inside].mean()) if n else None,
        }

    bins = []
    for low, high in zip(BINS[:-1], BINS[1:]):
        upper = weight <= high if high == BINS[-1] else weight < high
        bins.append(summary((weight >= low) & upper, low, high))
    return {
        "n": len(answers),
        "bins": bins,
        "confident": summary(weight >= CONFIDENT, CONFIDENT, 1.0),
    }


def calibrate(evaluation: dict) -> dict:
    """Fit the temperature and build the reliability tables.

    Parameters
    ----------
    evaluation : dict
        The contents of ``evaluation_blind.json``.

    Returns
    -------
    dict
        ``temperature`` (fitted), ``fitted_on`` (calibration PDFs of
        both splits), ``log_score`` (on them) and ``reliability``:
        part -> method -> :func:`reliability`.
    """
    parts: dict[str, list] = {}
    for case in evaluation["cases"]:
        parts.setdefault(case["part"], []).append(case)
    fitting = [
        row
        for part in CALIBRATION_PARTS.values()
        for row in parts.get(part, [])
    ]
    if not fitting:
        raise SystemExit(
            "The evaluation has no calibration part; rerun "
            "training.evaluate with --calibration-per-type > 0."
        )
    temperature = fit_temperature(fitting)
    return {
        "temperature": temperature,
        "fitted_on": len(fitting),
        "log_score": log_score(fitting, temperature),
        "reliability": {
            part: {
                method: reliability(parts[part], method, temperature)
                for method in WEIGHTED_METHODS
                if weighed(parts[part], method)
            }
            for part in CHECKED_PARTS
            if part in parts
        },
    }


def _cell(value, form) -> str:
    return "-" if value is None else format(value, form)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--evaluation", default="onnx_models/mmnp/evaluation_blind.json"
    )
    args = parser.parse_args(argv)
    path = Path(args.evaluation)
    result = calibrate(json.loads(path.read_text()))
    (path.parent / "type_calibration.json").write_text(
        json.dumps(result, indent=1) + "\n"
    )
    print(
        f"temperature {result['temperature']:.3g} "
        f"(fitted on {result['fitted_on']} calibration PDFs)"
    )
    for part, methods in result["reliability"].items():
        for method, table in methods.items():
            print(f"{part} / {method}: {table['n']} PDFs")
            for b in [*table["bins"], table["confident"]]:
                print(
                    f"  weight {b['low']:.2f}-{b['high']:.2f}: "
                    f"n={b['n']:4d} mean={_cell(b['mean_weight'], '.3f')} "
                    f"right={_cell(b['right'], '.3f')}"
                )


if __name__ == "__main__":
    main()
