"""Write ``docs/source/metrics.rst`` from a model's ``metadata.json``.

Usage::

    python -m training.metrics_page --model onnx_models/mmnp

Every figure on the page is read from the metrics that
``python -m training.evaluate --write-metadata`` stored in the metadata
(``metrics["blind"]``; ``metrics["blind_geometry"]`` that of the
geometry-split model, which is not shipped, run with
``--write-metadata onnx_models/mmnp/metadata.json``) and from the
``type_calibration.json`` that ``python -m training.calibrate`` wrote
beside it, so the documentation cannot drift from the shipped model.
The section on the structure solution comes from ``metrics["solve"]``
(and ``metrics["solve_geometry"]``), which
``python -m training.evaluate_solve --write-metadata`` stored, and shows
the fit figures of the measured PDFs that its ``--plots`` wrote under
``docs/source``.
"""

import argparse
import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

PAPER = {
    "mae_raw": "0.128 ± 0.073",
    "mae_fit": "0.093 ± 0.058",
}

METHODS = {
    "propose": "``propose``",
    "propose_nosnap": "``propose``, no snapping",
    "mine": "``mine``",
    "nearest": "1-NN look-up",
    "solve": "``solve``",
}

FACTORS = {
    "noise": ("noise (σ / max G)", "{:.0%}"),
    "qmax": ("Qmax (Å⁻¹)", "{:g}"),
    "biso": ("Biso (Å²)", "{:g}"),
    "qdamp": ("qdamp (Å⁻¹)", "{:g}"),
    "strain": ("uniaxial strain", "{:+.0%}"),
}


def _pct(value) -> str:
    return f"{100 * value:.1f}"


def _drw(summary) -> str:
    value = summary["delta_rw"]["median"]
    return f"{value:+.3f}" if round(value, 3) else "0.000"


def _mae(summary) -> str:
    if not summary["mae"]:
        return f"n/a ({_pct(summary['count'])} %)"
    mae = summary["mae"]
    return f"{mae['mean']:.3f} ± {mae['std']:.3f} ({_pct(summary['count'])} %)"


def _list_table(title, header, rows) -> list[str]:
    lines = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    return lines + [""]


def _scores(summary) -> list[str]:
    return [
        str(summary["n"]),
        _pct(summary["type"]),
        _pct(summary["count"]),
        _pct(summary["shape"]),
        _drw(summary),
        _mae(summary),
    ]


SCORE_HEADER = [
    "n",
    "type %",
    "exact count %",
    "exact shape %",
    "median ΔRw",
    "MAE (Å), count-matched (share)",
]


def _split_tables(title, part) -> list[str]:
    methods = part["methods"]
    overall = [
        [
            METHODS[name],
            *_scores(m["overall"]),
            f"{m['overall']['median_seconds']:.2f}",
        ]
        for name, m in methods.items()
    ]
    lines = _list_table(
        f"{title}: all test PDFs",
        ["method", *SCORE_HEADER, "median s / PDF"],
        overall,
    )
    per_type = [
        [f"{cluster_type}: {METHODS[name]}", *_scores(summary)]
        for cluster_type in next(iter(methods.values()))["per_type"]
        for name, m in methods.items()
        for summary in [m["per_type"][cluster_type]]
    ]
    return lines + _list_table(
        f"{title}: per structure type",
        ["type: method", *SCORE_HEADER],
        per_type,
    )


def _sources(part) -> list[str]:
    lines = []
    for name in ("propose", "propose_nosnap", "solve"):
        if name not in part["methods"]:
            continue
        counts = part["methods"][name]["sources"]
        total = sum(counts.values())
        sources = ["prior", "search", "refined", "library"]
        wins = ", ".join(
            f"{source} {counts.get(source, 0)}"
            for source in sources + ["solved"] * (name == "solve")
        )
        lines.append(f"* {METHODS[name]}: {wins} (of {total} PDFs).")
    return lines + [""]


def _robustness(table) -> list[str]:
    methods = list(next(iter(table["factors"].values()))[0]["methods"])
    header = ["factor", "value"]
    for name in methods:
        header += [
            f"{METHODS[name]}: type / count / shape %",
            f"{METHODS[name]}: median ΔRw",
        ]
    rows = []
    for factor, levels in table["factors"].items():
        label, fmt = FACTORS[factor]
        for level in levels:
            row = [label, fmt.format(level["value"])]
            for name in methods:
                s = level["methods"][name]
                row += [
                    f"{_pct(s['type'])} / {_pct(s['count'])} / "
                    f"{_pct(s['shape'])}",
                    _drw(s),
                ]
            rows.append(row)
    return _list_table("robustness: one factor at a time", header, rows)


def _solve_call(settings) -> str:
    """``solve_structure`` with the ``max_atoms`` and ``strain`` of a
    blind run."""
    return (
        f"``solve_structure``, ``max_atoms={settings['solve_max_atoms']}``"
        f", ``strain={settings.get('solve_strain', False)!r}``, :doc:`solve`"
    )


#: What a blind evaluation run with a strain (``--strain``) did.
STRAIN_REFITS = (
    "``propose`` (with and without snapping) and ``mine`` refitted their "
    "best candidates with a strain (``strain=True``), and the truth was "
    "fitted with one for its ΔRw."
)


def _strain_words(strain) -> list[str]:
    """The ``--strain`` option of an evaluation that ran with ``strain``
    (none for False, the default)."""
    return (
        [f"--strain {'auto' if strain == 'auto' else 'on'}"] if strain else []
    )


def _geometry_command(report) -> str:
    """The command line of the geometry-split model's evaluation."""
    settings = report["settings"]
    words = [
        "python -m training.evaluate",
        f"--model {report['model'].get('folder', 'DIR')}",
        "--splits geometry",
        f"--samples {settings['n_samples']}",
        f"--seed {settings['seed']}",
        f"--per-type {settings['per_type']}",
        f"--robust-per-type {settings['robust_per_type']}",
        f"--calibration-per-type {settings['calibration_per_type']}",
        *_strain_words(settings.get("solve_strain", False)),
    ]
    return " ".join(
        [*words, "--write-metadata onnx_models/mmnp/metadata.json"]
    )


def _geometry_model(report, blind) -> list[str]:
    """The geometry-split model's section (``metrics["blind_geometry"]``).

    ``blind`` is the shipped model's ``metrics["blind"]``: when both ran
    with the same settings, they share the test PDFs.
    """
    model, geometry = report["model"], report["geometry"]
    settings, wall = report["settings"], model.get("training_wall_time_s")
    same = "geometry" in blind and all(
        blind["settings"][key] == settings[key]
        for key in ("seed", "per_type", "types")
    )
    polish = model.get("polish_epochs")
    return [
        *_heading("The model trained on the geometry split", "~"),
        f"Model ``{model['name']}`` (not shipped), trained on the "
        f"{model['split']} split: {model['epochs']} epochs"
        + (
            f", then {polish} epochs of decoder polishing"
            if polish
            else ", without decoder polishing"
        )
        + (f" ({wall / 60:.0f} min in all)" if wall else "")
        + f"; trained at {_commit_text(model['training_commit'])}.  It "
        "was evaluated in one run of::",
        "",
        f"   {_geometry_command(report)}",
        "",
        f"({report['seconds'] / 60:.0f} min in one process; code at "
        f"{report['evaluated_commit']}) on {geometry['n_pdfs']} PDFs "
        f"({geometry['n_shapes']} distinct test shapes"
        + ("; the same PDFs as above" if same else "")
        + ").  Mining and snapping used the training shapes of the split "
        "only: ``propose`` snaps to them, ``mine`` fits them, the look-up "
        "holds their clusters, and ``solve`` "
        f"({_solve_call(settings)}) searches from ``propose``'s best "
        "proposals with them."
        + ("  " + STRAIN_REFITS if settings.get("solve_strain") else ""),
        "",
        *_split_tables("geometry-split model", geometry),
        "Which source gave the top candidate:",
        "",
        *_sources(geometry),
    ]


#: Parts of the evaluation in the reliability tables, and their names.
PARTS = {
    "random": "random split",
    "robustness": "robustness settings",
    "geometry": "geometry-disjoint split",
    "calibration": "calibration PDFs, random split (fitted on)",
    "calibration_geometry": "calibration PDFs, geometry split (fitted on)",
}


def _type_weights(calibration) -> list[str]:
    """The section on the type weights: formula, temperature, tables."""
    lines = [
        *_heading("How sure is the type", "-"),
        "Every candidate carries weights of the seven structure types "
        "(``Candidate.type_weights``, ``type_weights.csv``): each type's "
        "least Rw over the mined training shapes and the decodes, weighed "
        "against the best by exp(-N (Rw_t² - Rw_best²) / (2 T Rw_ref²)), "
        "with N = Δr Qmax / π independent points, Rw_ref the larger of "
        "the best Rw and the Rw that the data's noise alone gives (noise "
        "estimated from the residual beyond the particle), and a "
        "temperature T for misfits that are not independent noise "
        "(:mod:`diffpy.deepstruc.confidence`).  T = "
        f"{calibration['temperature']:.2g} was fitted (largest mean log "
        "weight of the true type, T >= 1) on "
        f"{calibration['fitted_on']} PDFs drawn for it alone (shapes of "
        "the library at other d, and shapes that the training library "
        "lacks, from the geometry-disjoint split), with "
        "``python -m training.calibrate``.  The tables bin the PDFs by "
        "the weight of the answer (the type of largest weight) and give "
        "the share of answers that were right; the weights are "
        "calibrated when at least 90 % of the answers given 0.9 or more "
        "are right.",
        "",
    ]
    header = ["weight of the answer", "PDFs", "mean weight", "right (%)"]
    for part, methods in calibration["reliability"].items():
        for method, table in methods.items():
            rows = [
                [
                    f"{b['low']:.2f}-{b['high']:.2f}",
                    str(b["n"]),
                    "-" if b["n"] == 0 else f"{b['mean_weight']:.3f}",
                    "-" if b["n"] == 0 else _pct(b["right"]),
                ]
                for b in [*table["bins"], table["confident"]]
            ]
            rows[-1][0] = f"**>= {table['confident']['low']:.2f}**"
            title = f"{METHODS[method]}, {PARTS[part]} ({table['n']} PDFs)"
            lines += _list_table(title, header, rows)
    return lines


#: The stacking model's latent map, relative to the page.
STACKING_FIGURE = "_static/stacking_latent.png"
#: Parts of the stacking evaluation and their names.
STACKING_PARTS = {
    "random": "random split",
    "sequence": "sequence-disjoint split",
    "varied": "particles outside the library",
}
STACKING_HEADER = [
    "n",
    "exact sequence %",
    "class %",
    "exact count %",
    "no stacking %",
    "median ΔRw",
    "MAE (Å), count-matched (n)",
]


def _mae_n(summary) -> str:
    """MAE mean ± std over the count-matched PDFs, their number after."""
    mae = summary["mae"]
    if not mae:
        return f"n/a ({summary['n_mae']})"
    return f"{mae['mean']:.3f} ± {mae['std']:.3f} ({summary['n_mae']})"


def _stacking_scores(summary) -> list[str]:
    return [
        str(summary["n"]),
        _pct(summary["sequence"]),
        _pct(summary["class"]),
        _pct(summary["count"]),
        _pct(summary["no_stacking"]),
        _drw(summary),
        _mae_n(summary),
    ]


def _stacking_command(settings, name) -> str:
    """The command line of a stacking evaluation with its settings."""
    words = ["python -m training.evaluate_stacking"]
    words.append(f"--model onnx_models/{name}")
    if settings.get("sequence_model"):
        words.append(f"--sequence-model {settings['sequence_model']}")
    words.append(f"--per-class {settings['per_class']}")
    words.append(f"--samples {settings['n_samples']}")
    words.append(f"--seed {settings['seed']}")
    if set(settings["parts"]) != set(STACKING_PARTS):
        words.append(f"--parts {' '.join(settings['parts'])}")
    if "solve" in settings.get("methods", ()):
        words.append("--solve")
    return " ".join([*words, "--write-metadata"])


#: Targets of the stacking model (issue #11): per part, the score, its
#: least value and whether it holds per class too; the random part's
#: MAE (Å, count-matched) at most.
STACKING_TARGETS = {
    "random": ("sequence", 0.8, True),
    "sequence": ("sequence", 0.5, False),
    "varied": ("hc", 0.7, False),
}
STACKING_MAE_TARGET = 0.03


def _stacking_targets(part, methods) -> list[str]:
    """The stacking targets of a part beside each method's figures."""
    key, least, per_class = STACKING_TARGETS[part]
    what = "exact sequence" if key == "sequence" else "h/c sequence"
    lines = [
        f"Targets on this part: {what} of the top candidate ≥ "
        f"{100 * least:g} %"
        + (", per class" if per_class else "")
        + (f", MAE ≤ {STACKING_MAE_TARGET:g} Å" if part == "random" else "")
        + ":",
        "",
    ]
    for method, m in methods.items():
        summaries = [m["overall"]]
        if per_class:
            summaries += list(m["per_class"].values())
        met = all(s[key] >= least for s in summaries)
        worst = min(s[key] for s in summaries)
        text = f"* {METHODS[method]}: {what} {_pct(m['overall'][key])} %"
        if per_class:
            text += f" (least class {_pct(worst)} %)"
        if part == "random":
            mae = [s["mae"]["mean"] for s in summaries if s["n_mae"]]
            met = met and bool(mae) and max(mae) <= STACKING_MAE_TARGET
            text += (
                f", MAE {m['overall']['mae']['mean']:.3f} Å "
                f"(largest class {max(mae):.3f} Å)"
                if mae
                else ", no count-matched PDF"
            )
        lines.append(f"{text}: {_verdict(met)};")
    lines[-1] = lines[-1][:-1] + "."
    return [*lines, ""]


def _stacking(report, figure=None) -> list[str]:
    """The section on the stacking model (``metrics["stacking_blind"]``).

    ``figure`` is the path of the latent map relative to the page, if
    there is one.
    """
    protocol, settings = report["protocol"], report["settings"]
    ranges, model = protocol["ranges"], report["model"]
    metals = ", ".join(protocol["metal_d"])
    lines = [
        *_heading("Stacking model", "-"),
        f"The stacking model ``{model['name']}`` (close-packed particles "
        "of 3-10 layers with fcc, hcp or faulted stacking, "
        ":doc:`stacking`; trained at "
        f"{_commit_text(model['training_commit'])}, {model['epochs']} "
        "epochs) was "
        "evaluated in one run of::",
        "",
        f"   {_stacking_command(settings, model['name'])}",
        "",
        f"({report['seconds'] / 60:.0f} min; code at "
        f"{report['evaluated_commit']}).  Each test PDF is one particle "
        "at the nearest-neighbour distance of a close-packed metal "
        f"({metals}) within ±{protocol['d_spread']:.0%}, simulated with "
        f"Qmax {ranges['qmax'][0]:g}-{ranges['qmax'][1]:g} Å⁻¹, Biso "
        f"{ranges['biso'][0]:g}-{ranges['biso'][1]:g} Å² and qdamp "
        f"{ranges['qdamp'][0]:g}-{ranges['qdamp'][1]:g} Å⁻¹ (Qmin "
        f"{protocol['qmin']:g} Å⁻¹), with Gaussian noise of "
        f"{protocol['noise']:.0%} of max G on "
        f"{protocol['noisy']}; the methods get G(r), Qmax and Qmin only.  "
        f"Up to {settings['per_class']} particles per class and part "
        "(classes with fewer test particles give all they have): the "
        "test split of the model (``random``, particles the library "
        "holds); the test split of a model trained with whole h/c "
        "sequences held out (``sequence``; ``propose`` snaps to and "
        "``mine`` fits only its training particles); and particles that "
        "the library does not hold (``varied``: other in-plane outlines, "
        + ", ".join(protocol["varied_shapes"])
        + ", with the model above and the whole library).",
        "",
        "Methods, each judged by its top candidate: ``propose`` "
        f"({settings['n_samples']} prior samples, latent search, snapping "
        "to the part's library), ``propose`` with ``snap=False`` (no "
        "library particles among the candidates)"
        + (
            ", ``mine`` (``mine_library`` over the part's library)"
            " and ``solve`` (``solve_structure`` with the part's model "
            "and library, :doc:`solve`: the best proposals rebuilt "
            "as prisms of layers cut from one outline, site searches "
            "from them on their own layers, and the solutions "
            "re-stacked; it refines qdamp, and so does the "
            "truth's fit for its ΔRw)"
            if "solve" in settings.get("methods", ())
            else " and ``mine`` (``mine_library`` over the part's library)"
        )
        + ".  **Exact sequence**: the canonical stacking sequence found in "
        "the top candidate (``stacking_sequence``) equals that found in the "
        "true particle (which also means the same h/c sequence up to "
        "reversal); **class**: fcc, hcp or faulted right; **no "
        "stacking**: no close-packed stacking found in the candidate "
        "(counted wrong); ΔRw and MAE as above, the MAE over the "
        "count-matched PDFs only, whose number is given in brackets.",
        "",
    ]
    for part, name in STACKING_PARTS.items():
        if part not in report:
            continue
        scores = report[part]
        methods = scores["methods"]
        counts = ", ".join(
            f"{n} {k}" for k, n in scores["n_per_class"].items()
        )
        text = (
            f"{name.capitalize()}: {scores['n_pdfs']} PDFs ({counts}; "
            f"{scores['n_noisy']} with noise)"
        )
        if "model" in scores:
            own = scores["model"]
            text += (
                f", model ``{own['name']}`` ({own['epochs']} epochs, "
                f"{_commit_text(own['training_commit'])}), library of its "
                f"{scores['library_size']} training particles"
            )
        lines += [f"{text}.", ""]
        lines += _list_table(
            f"stacking, {name}: all test PDFs",
            ["method", *STACKING_HEADER, "median s / PDF"],
            [
                [
                    METHODS[method],
                    *_stacking_scores(m["overall"]),
                    f"{m['overall']['median_seconds']:.2f}",
                ]
                for method, m in methods.items()
            ],
        )
        lines += _list_table(
            f"stacking, {name}: per class",
            ["class: method", *STACKING_HEADER],
            [
                [f"{kind}: {METHODS[method]}", *_stacking_scores(summary)]
                for kind in scores["n_per_class"]
                for method, m in methods.items()
                for summary in [m["per_class"][kind]]
            ],
        )
        lines += [
            "Source of the top candidate: "
            + "; ".join(
                f"{METHODS[method]}: "
                + ", ".join(f"{k} {v}" for k, v in m["sources"].items())
                for method, m in methods.items()
            )
            + ".",
            "",
        ]
        lines += _stacking_targets(part, methods)
    if figure:
        lines += [
            f".. figure:: {figure}",
            "   :width: 100%",
            "",
            "   The training particles of the stacking model in its latent "
            "plane, coloured (a) by class and (b) by the share of h "
            "letters in their h/c sequence.",
            "",
        ]
    return lines


#: Methods of the structure-solution evaluation and their names.
SOLVE_METHODS = {
    "propose": "``propose``",
    "mine": "``mine``",
    "solve": "``solve``",
}
#: Parts of the structure-solution evaluation and their names.
SOLVE_PARTS = {"small": "small clusters", "large": "large clusters"}
#: Folder of the measured PDFs in the command line (the report does not
#: store it; the usage of ``training/evaluate_solve.py``).
SOLVE_DATA = "../shared/data/experimental"
#: Targets set for ``solve``: the least share of exact counts and of
#: PDFs with ΔRw within the protocol's bound, per part the most mean
#: seconds per PDF and the atom count it holds up to; on the measured
#: PDFs, the largest top Rw and on how many files it must hold.
SOLVE_TARGETS = {
    "count": 0.5,
    "delta_rw_ok": 0.8,
    "seconds": {"small": (10.0, 200), "large": (60.0, 2000)},
    "pt_rw": 0.15,
    "pt_files": 2,
}


def _solve_scores(summary) -> list[str]:
    return [
        str(summary["n"]),
        _pct(summary["count"]),
        _pct(summary["shape"]),
        _pct(summary["delta_rw_ok"]),
        _drw(summary),
        _mae_n(summary),
    ]


def _plot_folder(report) -> str | None:
    """The ``--plots`` folder of a run, from the figures it names."""
    for row in report.get("experimental", []):
        if row.get("plot"):
            return Path(row["plot"]).parent.as_posix()
    return None


def _solve_command(report, model_name) -> str:
    """The command line of a structure-solution evaluation."""
    settings = report["settings"]
    words = [
        "python -m training.evaluate_solve",
        f"--model onnx_models/{model_name}",
    ]
    if settings.get("geometry_model"):
        words.append(f"--geometry-model {settings['geometry_model']}")
    else:
        names = {
            library["name"] if library else None
            for methods in settings["libraries"].values()
            for library in methods.values()
        }
        if len(names) == 1 and None not in names:
            words.append(f"--library {names.pop()}")
    if tuple(settings["parts"]) != tuple(SOLVE_PARTS):
        words.append(f"--parts {','.join(settings['parts'])}")
    if tuple(settings["methods"]) != tuple(SOLVE_METHODS):
        words.append(f"--methods {','.join(settings['methods'])}")
    if settings.get("quick"):
        words.append("--quick")
    words += [
        f"--samples {settings['n_samples']}",
        f"--seed {settings['seed']}",
        *_strain_words(report["protocol"].get("solve_strain", False)),
    ]
    if "experimental" in report or "experimental_note" in report:
        words.append(f"--experimental {SOLVE_DATA}")
    plots = _plot_folder(report)
    if plots:
        words.append(f"--plots {plots}")
    return " ".join([*words, "--write-metadata"])


def _verdict(met: bool) -> str:
    return "**met**" if met else "**missed**"


def _part_targets(part, summary, bound) -> list[str]:
    """Targets for ``solve`` on one part beside the measured figures."""
    n, (seconds, atoms) = summary["n"], SOLVE_TARGETS["seconds"][part]
    count, ok = SOLVE_TARGETS["count"], SOLVE_TARGETS["delta_rw_ok"]
    return [
        f"Targets for ``solve`` on the {SOLVE_PARTS[part]} (n = {n}):",
        "",
        f"* exact count: target ≥ {100 * count:g} %, measured "
        f"{_pct(summary['count'])} %: {_verdict(summary['count'] >= count)};",
        f"* ΔRw ≤ {bound:g}: target on ≥ {100 * ok:g} % of the PDFs, measured "
        f"{_pct(summary['delta_rw_ok'])} %: "
        f"{_verdict(summary['delta_rw_ok'] >= ok)};",
        f"* time: target ≤ {seconds:g} s per PDF up to {atoms} atoms, "
        f"measured {summary['seconds']:.1f} s (mean; median "
        f"{summary['median_seconds']:.1f} s): "
        f"{_verdict(summary['seconds'] <= seconds)}.",
        "",
    ]


def _solve_part(report, part) -> list[str]:
    """The tables of one part of a structure-solution evaluation."""
    scores, settings = report[part], report["settings"]
    protocol = report["protocol"]
    bound = protocol["delta_rw_ok"]
    methods = scores["methods"]
    low, high = protocol["size_ranges"][part]
    counts = ", ".join(f"{n} {k}" for k, n in scores["n_per_family"].items())
    mined = settings["libraries"][part]["mine"]
    library = (
        f"; ``mine`` fits {mined['name']} ({mined['size']} clusters)"
        if mined and "mine" in methods
        else ""
    )
    name = SOLVE_PARTS[part]
    lines = [
        *_heading(name.capitalize(), "~"),
        f"{scores['n_pdfs']} PDFs of clusters of {low}-{high} atoms "
        f"({counts}; {scores['n_noisy']} with noise){library}; ``solve`` "
        f"with ``max_atoms={settings['max_atoms'][part]}``.  Clusters: "
        + "; ".join(protocol["clusters"][part])
        + ".",
        "",
    ]
    header = [
        "n",
        "exact count %",
        "exact shape %",
        f"ΔRw ≤ {bound:g} %",
        "median ΔRw",
        "MAE (Å), count-matched (n)",
    ]
    lines += _list_table(
        f"structure solution, {name}: all test PDFs",
        ["method", *header, "s / PDF, mean (median)"],
        [
            [
                SOLVE_METHODS[method],
                *_solve_scores(m["overall"]),
                f"{m['overall']['seconds']:.1f} "
                f"({m['overall']['median_seconds']:.1f})",
            ]
            for method, m in methods.items()
        ],
    )
    lines += _list_table(
        f"structure solution, {name}: per family",
        ["family: method", *header],
        [
            [f"{family}: {SOLVE_METHODS[method]}", *_solve_scores(summary)]
            for family in scores["n_per_family"]
            for method, m in methods.items()
            for summary in [m["per_family"][family]]
        ],
    )
    lines += [
        "Source of the top candidate: "
        + "; ".join(
            f"{SOLVE_METHODS[method]}: "
            + ", ".join(f"{k} {v}" for k, v in m["sources"].items())
            for method, m in methods.items()
        )
        + ".",
        "",
    ]
    if "solve" in methods and not settings.get("geometry_model"):
        lines += _part_targets(part, methods["solve"]["overall"], bound)
    return lines


def _measured(report, figures, targets) -> list[str]:
    """The measured Pt PDFs: each method's top candidate, the figures."""
    rows = report["experimental"]
    lines = [
        *_heading("Measured Pt PDFs", "~"),
        f"The {len(rows)} measured PDFs of Pt particles "
        "(:doc:`experimental`), with the sizes that their README gives; "
        "``mine`` and ``solve`` as on the large clusters "
        f"(``max_atoms={report['settings']['max_atoms']['experimental']}``"
        "); the diameter is the largest pair distance of the top "
        "candidate plus its nearest-neighbour distance, the radii its "
        "principal radii of gyration (equal for a compact particle), "
        "qdamp that of its fit (refined by ``solve``, assumed by the "
        "others).",
        "",
        *_list_table(
            "structure solution, measured Pt PDFs: top candidates",
            [
                "file: method",
                "README size (nm)",
                "top Rw",
                "atoms",
                "diameter (nm)",
                "radii (Å)",
                "qdamp (Å⁻¹)",
                "type",
                "source",
                "s",
            ],
            [
                [
                    f"{row['file']}: {SOLVE_METHODS[method]}",
                    (
                        "-"
                        if row["readme_size_nm"] is None
                        else f"{row['readme_size_nm']:g}"
                    ),
                    f"{m['rw']:.3f}",
                    str(m["n_atoms"]),
                    f"{m['diameter_nm']:.2f}",
                    ", ".join(f"{x:.1f}" for x in m["radii"]),
                    f"{m['qdamp']:.3f}",
                    m["type"],
                    m["source"],
                    f"{m['seconds']:.1f}",
                ]
                for row in rows
                for method, m in row["methods"].items()
            ],
        ),
    ]
    solved = [
        row["methods"]["solve"]["rw"]
        for row in rows
        if "solve" in row["methods"]
    ]
    if targets and solved:
        rw, need = SOLVE_TARGETS["pt_rw"], SOLVE_TARGETS["pt_files"]
        good = sum(value <= rw for value in solved)
        lines += [
            f"Target for ``solve``: top Rw ≤ {rw:g} on at least {need} of "
            f"the three measured PDFs; measured: {good} of {len(solved)} "
            f"(Rw {', '.join(f'{value:.3f}' for value in solved)}): "
            f"{_verdict(good >= need)}.",
            "",
        ]
    for row in rows:
        figure = figures.get(row["file"])
        if figure:
            lines += [
                f".. figure:: {figure}",
                "   :width: 100%",
                "",
                f"   {row['file']}: the fit of each method's top candidate "
                "(observed, calculated and their difference below).",
                "",
            ]
    return lines


def _solve(report, model_name, figures=None, title=None) -> list[str]:
    """The section on a structure-solution evaluation.

    ``report`` is ``metrics["solve"]`` (or ``"solve_geometry"``),
    ``model_name`` the model whose metadata holds it, ``figures`` the
    path relative to the page of each measured file's fit figure (by
    file name).
    """
    protocol, settings = report["protocol"], report["settings"]
    ranges, model = protocol["ranges"], report["model"]
    targets = not settings.get("geometry_model")
    metals = ", ".join(protocol["metal_d"])
    bcc = ", ".join(protocol["bcc_metal_d"])
    given = ", ".join(
        {"G(r)": "G(r)", "qmax": "Qmax", "qmin": "Qmin"}.get(w, w)
        for w in protocol["given_to_methods"]
    )
    title = title or "Structure solution: clusters outside the libraries"
    names = [
        "``solve`` (:doc:`solve`)" if name == "solve" else SOLVE_METHODS[name]
        for name in settings["methods"]
    ]
    if len(names) > 1:
        names = [", ".join(names[:-1]) + " and " + names[-1]]
    lines = [
        *_heading(title, "-"),
        f"{names[0]} {'were' if len(settings['methods']) > 1 else 'was'} "
        "evaluated on the same PDFs with the model "
        f"``{model['name']}`` (trained at "
        f"{_commit_text(model['training_commit'])}, {model['epochs']} "
        "epochs) in "
        "one run of::",
        "",
        f"   {_solve_command(report, model_name)}",
        "",
        f"({report['seconds'] / 60:.0f} min in one process; code at "
        f"{report['evaluated_commit']}).",
        "",
        "The test clusters are in no library: they were built with ASE "
        "from parameters that neither the 197 MMNP shapes nor the "
        '``"large"`` library use (sc, fcc and bcc blocks with other '
        "surfaces, centres or layer orders; hcp blocks of other cell "
        "counts; decahedra with a facet of 6 or more; Mackay icosahedra "
        "less their 12 vertices or one facet; octahedra cut at one or "
        "two vertices), and their sorted pair distances, in units of "
        "the nearest-neighbour distance, differ by more than "
        f"{protocol['shape_tolerance']:g} from those of every library "
        "cluster.  Each test PDF is one cluster at the nearest-neighbour "
        f"distance of a metal ({metals}; {bcc} for bcc) within "
        f"±{protocol['d_spread']:.0%}, simulated with Qmax "
        f"{ranges['qmax'][0]:g}-{ranges['qmax'][1]:g} Å⁻¹, Biso "
        f"{ranges['biso'][0]:g}-{ranges['biso'][1]:g} Å² and qdamp "
        f"{ranges['qdamp'][0]:g}-{ranges['qdamp'][1]:g} Å⁻¹ (Qmin "
        f"{protocol['qmin']:g} Å⁻¹), with Gaussian noise of "
        f"{protocol['noise']:.0%} of max G on {protocol['noisy']}.  The "
        f"inputs are blind: the methods get {given} only, never d, "
        "qdamp, Biso or the family.",
        "",
        "Each method is judged by its top candidate.  **Exact count**: "
        "the true number of atoms; **exact shape**: that and sorted pair "
        "distances within "
        f"{protocol['shape_tolerance']:g} of the truth's, in units of "
        "each one's nearest-neighbour distance; **ΔRw** = Rw(top) − "
        "Rw(truth fitted the same way: same data, r range and assumed "
        "parameters, qdamp refined too for ``solve``, which refines it"
        + (
            "; a strain too, as ``solve`` (``strain="
            f"{protocol['solve_strain']!r}``) and ``propose`` and "
            "``mine`` (``strain=True``) fit one"
            if protocol.get("solve_strain")
            else ""
        )
        + "), its median over all n PDFs and the share with "
        f"ΔRw ≤ {protocol['delta_rw_ok']:g}; **MAE**: mean distance per "
        "atom after centring, optimal assignment and rotation, mean ± "
        "std over the count-matched PDFs only, whose number is given in "
        "brackets; **s / PDF**: wall time of the method per PDF.  "
        "Percentages are of all n PDFs.",
        "",
    ]
    for part in SOLVE_PARTS:
        if part in report:
            lines += _solve_part(report, part)
    if report.get("experimental"):
        lines += _measured(report, figures or {}, targets)
    if "experimental_note" in report:
        lines += [report["experimental_note"], ""]
    return lines


def _commit_text(commit: str) -> str:
    """``git <12 digits>``, and whether the tree had uncommitted changes
    (a commit recorded as ``<sha>-dirty``)."""
    text = f"git {commit[:12]}"
    if commit.endswith("-dirty"):
        text += " with uncommitted changes"
    return text


def _heading(title, char) -> list[str]:
    return [title, char * len(title), ""]


def render(
    metadata: dict,
    calibration: dict | None = None,
    stacking: dict | None = None,
    stacking_figure: str | None = None,
    solve_figures: dict | None = None,
) -> str:
    """The reStructuredText of the metrics page.

    ``calibration`` is the content of ``type_calibration.json``; without
    it the page has no section on the type weights.  ``stacking`` is the
    stacking model's ``metrics["stacking_blind"]`` and
    ``stacking_figure`` the path of its latent map relative to the page;
    without ``stacking`` the page has no section on that model.  The
    structure-solution section comes from ``metrics["solve"]`` and
    ``metrics["solve_geometry"]`` of ``metadata`` (none without them);
    ``solve_figures`` gives the path relative to the page of the fit
    figure of each measured file (by file name).
    """
    blind = metadata["metrics"]["blind"]
    model = blind["model"]
    protocol = blind["protocol"]
    settings = blind["settings"]
    ranges = protocol["ranges"]
    random = blind["random"]
    wall = model["training_wall_time_s"]
    lines = [
        *_heading("Measured accuracy", "="),
        "All figures on this page were measured in one run of::",
        "",
        "   "
        + " ".join(
            [
                "python -m training.evaluate",
                f"--model onnx_models/{model['name']}",
                *(["--solve"] if "solve" in random["methods"] else []),
                *_strain_words(settings.get("solve_strain", False)),
                "--write-metadata",
            ]
        ),
        "",
        f"({blind['seconds'] / 60:.0f} min in one process on a shared "
        f"2-core machine; code at {blind['evaluated_commit']}) and copied "
        "from ``metadata.json`` by ``python -m training.metrics_page``.  "
        "Every method ran on the same PDFs in that run.",
        "",
        *_heading("Blind test PDFs", "-"),
        "Test PDFs differ from the training PDFs the way measured data "
        "do, and the methods see only what a file header gives.  Each "
        "is a test-split shape of the library scaled to a "
        "nearest-neighbour distance d drawn in "
        f"{protocol['d_range'][0]}-{protocol['d_range'][1]} Å at least "
        f"{protocol['d_gap']} Å from each of the library's 19 values, "
        "stretched along a random direction by a uniaxial strain, and "
        "simulated with Qmax, Biso and qdamp drawn in "
        f"{ranges['qmax'][0]:g}-{ranges['qmax'][1]:g} Å⁻¹, "
        f"{ranges['biso'][0]:g}-{ranges['biso'][1]:g} Å² and "
        f"{ranges['qdamp'][0]:g}-{ranges['qdamp'][1]:g} Å⁻¹ (Qmin "
        f"{protocol['qmin']:g} Å⁻¹), strain in "
        f"{ranges['strain'][0]:+.0%} to {ranges['strain'][1]:+.0%} and "
        "Gaussian noise of standard deviation "
        f"{ranges['noise'][0]:.0%}-{ranges['noise'][1]:.0%} of max G "
        "on the 0.01 Å grid, all drawn uniformly with a fixed seed.  "
        "The methods get G(r), Qmax and Qmin only, never d, qdamp or "
        "Biso: the fits assume qdamp 0.04 Å⁻¹ and fit scale, zoom and "
        "Uiso.",
        "",
        "Methods, each judged by its top-ranked candidate:",
        "",
        "* ``propose``: ``propose_structures`` as shipped "
        f"({settings['n_samples']} prior samples, latent search, and "
        "the best-fitting of the 197 training shapes, "
        "``source='library'``);",
        "* ``propose``, no snapping: the same with ``snap=False``;",
        "* ``mine``: ``mine_library`` over the training shapes (all 197 "
        "on the random split, where each test shape is in training at "
        "other d; only the training shapes on the geometry split);",
        "* 1-NN look-up: the training cluster whose prior input (clean "
        "reference PDF) is nearest (Euclidean) to the test PDF's gives "
        "type, shape and count; that shape, at the d of the first peak, "
        "is fitted for Rw and MAE.",
        *(["* " + STRAIN_REFITS] if settings.get("solve_strain") else []),
        *(
            [
                f"* ``solve`` ({_solve_call(settings)}): a site search from "
                "the best proposals (``propose`` snapping as above)."
            ]
            if "solve" in random["methods"]
            else []
        ),
        "",
        "Metrics (defined in :doc:`model`): **type** and **exact shape**: "
        "the type and geometry of the top candidate's nearest library "
        "geometry equal the truth's; **exact count**: it has the true "
        "number of atoms; these are percentages of all n PDFs.  "
        "**ΔRw** = Rw of the top candidate minus Rw of the true (strained) "
        "structure fitted the same way (same data, r range and assumed "
        "parameters, qdamp refined too for ``solve``, which refines it); "
        "the median over all n PDFs (negative: the answer fits better "
        "than the truth).  **MAE**: mean Euclidean distance "
        "per atom between the fitted candidate and the true structure "
        "after centring, optimal assignment and rotation, mean ± std over "
        "the count-matched PDFs only, whose share of all PDFs is given in "
        "brackets.  The DeepStruc paper reports "
        f"{PAPER['mae_raw']} Å before and {PAPER['mae_fit']} Å after "
        "fitting, on clean PDFs.",
        "",
        f"Shipped model ``{model['name']}``: {model['epochs']} epochs "
        "on the CPU"
        + (
            f", then {model['polish_epochs']} epochs of decoder polishing"
            if model["polish_epochs"]
            else ""
        )
        + (f", {wall / 60:.0f} min in all" if wall else "")
        + f"; trained at {_commit_text(model['training_commit'])}.",
        "",
        *_heading("Random split", "-"),
        f"{random['n_pdfs']} PDFs, {settings['per_type']} per structure "
        f"type ({random['n_shapes']} distinct shapes: types with fewer "
        "test shapes repeat them at other d and conditions).  Times were "
        "taken beside other jobs.",
        "",
        *_split_tables("random split", random),
        "Which source gave the top candidate:",
        "",
        *_sources(random),
    ]
    geometry_model = metadata["metrics"].get("blind_geometry")
    if "geometry" in blind:
        geometry = blind["geometry"]
        lines += [
            *_heading("Geometry-disjoint split", "-"),
            f"Whole shapes held out: {geometry['n_pdfs']} PDFs "
            f"({geometry['n_shapes']} distinct test shapes; the split has "
            "no icosahedral test shape).  ``mine`` fits the training "
            f"shapes only.  {geometry['note']}",
            "",
            *_split_tables("geometry-disjoint split", geometry),
        ]
    if geometry_model:
        if "geometry" not in blind:
            lines += _heading("Geometry-disjoint split", "-")
        lines += _geometry_model(geometry_model, blind)
    if "robustness" in blind:
        table = blind["robustness"]
        central = protocol["central"]
        lines += [
            *_heading("Robustness", "-"),
            f"{table['n_pdfs_per_setting']} PDFs per setting (the first "
            f"{settings['robust_per_type']} random-split test PDFs of each "
            f"type, {table['n_shapes']} distinct shapes, each at its own "
            "d and strain direction); one factor varies, the others stay "
            f"at noise {central['noise']:.0%}, Qmax {central['qmax']:g} "
            f"Å⁻¹, Biso {central['biso']:g} Å², qdamp "
            f"{central['qdamp']:g} Å⁻¹ and no strain (the central setting, "
            "repeated in each factor's rows).  Percentages are of all "
            "PDFs of a setting.",
            "",
            *_robustness(table),
        ]
    if calibration:
        lines += _type_weights(calibration)
    if stacking:
        lines += _stacking(stacking, stacking_figure)
    solve = metadata["metrics"].get("solve")
    if solve:
        lines += _solve(solve, metadata["name"], solve_figures)
    solve = metadata["metrics"].get("solve_geometry")
    if solve:
        lines += _solve(
            solve,
            metadata["name"],
            solve_figures if not metadata["metrics"].get("solve") else None,
            "Structure solution with the geometry-split model",
        )
    return "\n".join(lines)


def solve_figures(metadata: dict, page: Path) -> dict:
    """The measured PDFs' fit figures that lie under the page's folder.

    Per file name, the path relative to ``page`` of the figure that the
    structure-solution evaluation names (``--plots``, relative to the
    repository root when not absolute); figures that are missing or
    outside ``page`` are left out.
    """
    found = {}
    for key in ("solve_geometry", "solve"):
        for row in metadata["metrics"].get(key, {}).get("experimental", []):
            if not row.get("plot"):
                continue
            path = Path(row["plot"])
            path = (path if path.is_absolute() else REPO_ROOT / path).resolve()
            if path.is_file() and path.is_relative_to(page.resolve()):
                found[row["file"]] = path.relative_to(
                    page.resolve()
                ).as_posix()
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="onnx_models/mmnp")
    parser.add_argument(
        "--out", default=REPO_ROOT / "docs" / "source" / "metrics.rst"
    )
    parser.add_argument(
        "--stacking-model",
        default="onnx_models/stacking",
        help="stacking model folder (its section is left out without "
        "its evaluation)",
    )
    args = parser.parse_args(argv)
    metadata = json.loads((Path(args.model) / "metadata.json").read_text())
    path = Path(args.model) / "type_calibration.json"
    calibration = json.loads(path.read_text()) if path.exists() else None
    path = Path(args.stacking_model) / "metadata.json"
    stacking = None
    if path.exists():
        stacking = json.loads(path.read_text())["metrics"].get(
            "stacking_blind"
        )
    page = Path(args.out).parent
    figure = page / STACKING_FIGURE
    Path(args.out).write_text(
        render(
            metadata,
            calibration,
            stacking,
            STACKING_FIGURE if figure.exists() else None,
            solve_figures(metadata, page),
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
