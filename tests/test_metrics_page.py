"""Tests of the metrics page (``training/metrics_page.py``).

The structure-solution section is rendered from a small hand-made
summary shaped like ``metrics["solve"]`` of ``training/evaluate_solve``,
and the geometry-split model's section from one shaped like
``metrics["blind_geometry"]`` of ``training/evaluate``, beside the
shipped model's own metrics.  Skipped outside a clone of the
repository.
"""

import copy
import json
import sys

import pytest
from conftest import REPO_ROOT

if not (REPO_ROOT / "training" / "metrics_page.py").is_file():
    pytest.skip(
        "training/ is not here; it is only in a clone of the repository",
        allow_module_level=True,
    )
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from training.metrics_page import render, solve_figures  # noqa: E402

FAMILIES = {"small": ("fcc", "icosahedral"), "large": ("decahedral",)}


def _summary(n, count, ok, seconds, mae=None):
    return {
        "n": n,
        "count": count,
        "shape": count / 2,
        "delta_rw_ok": ok,
        "delta_rw": {"median": 0.0123, "mean": 0.02},
        "mae": mae and {"mean": mae, "std": 0.05},
        "n_mae": round(count * n),
        "seconds": seconds,
        "median_seconds": seconds / 2,
    }


def _part(part, n, scores):
    """A part report: ``scores`` per method (count, ok, seconds)."""
    families = FAMILIES[part]
    per = n // len(families)
    return {
        "n_pdfs": n,
        "n_noisy": n // 2,
        "n_per_family": {f: per for f in families},
        "methods": {
            name: {
                "overall": _summary(n, *values, mae=0.25),
                "per_family": {f: _summary(per, *values) for f in families},
                "sources": {"solved": n} if name == "solve" else {"prior": n},
                "solved": float(name == "solve"),
            }
            for name, values in scores.items()
        },
    }


def _pt(file, size, rws):
    return {
        "file": file,
        "readme_size_nm": size,
        "methods": {
            name: {
                "rw": rw,
                "n_atoms": 147,
                "diameter_nm": 1.87,
                "radii": [5.0, 5.1, 7.3],
                "qdamp": 0.057,
                "type": "icosahedral",
                "source": "solved" if name == "solve" else "library",
                "label": "x",
                "seconds": 42.0,
            }
            for name, rw in rws.items()
        },
        "plot": f"docs/source/_static/solve/{file[:-3]}_fits.png",
    }


def _library(name, size):
    return {"name": name, "size": size}


@pytest.fixture
def solve_report():
    """A summary like ``metrics["solve"]`` of a full run."""
    mine = {
        "small": _library("mmnp", 197),
        "large": _library("mmnp + large", 414),
        "experimental": _library("mmnp + large", 414),
    }
    return {
        "model": {
            "name": "mmnp",
            "split": "random",
            "training_commit": "0123456789abcdef",
            "training_wall_time_s": 3433,
            "epochs": 1000,
        },
        "evaluated_commit": "fedcba987654-dirty",
        "protocol": {
            "metal_d": {"Cu": 2.56, "Pt": 2.77},
            "bcc_metal_d": {"Fe": 2.48},
            "d_spread": 0.02,
            "qmin": 0.7,
            "ranges": {
                "qmax": [18.0, 28.0],
                "biso": [0.2, 0.8],
                "qdamp": [0.02, 0.06],
            },
            "noise": 0.01,
            "noisy": "every other PDF of a family",
            "given_to_methods": ["G(r)", "qmax", "qmin"],
            "shape_tolerance": 0.03,
            "delta_rw_ok": 0.02,
            "size_ranges": {"small": [13, 200], "large": [300, 1500]},
            "clusters": {
                "small": ["fcc block (110)4 (111)2", "hcp block 4-3-2"],
                "large": ["decahedral Marks 4-7-1"],
            },
        },
        "settings": {
            "n_samples": 1000,
            "seed": 0,
            "parts": ["small", "large"],
            "methods": ["propose", "mine", "solve"],
            "quick": False,
            "max_atoms": {"small": 200, "large": 2000, "experimental": 2000},
            "libraries": {
                part: {"propose": None, "mine": library, "solve": None}
                for part, library in mine.items()
            },
            "geometry_model": None,
        },
        "small": _part(
            "small",
            24,
            {
                "propose": (0.25, 0.5, 3.25),
                "mine": (0.125, 0.75, 1.5),
                "solve": (0.625, 0.875, 8.75),
            },
        ),
        "large": _part(
            "large",
            6,
            {
                "propose": (0.0, 0.5, 4.0),
                "mine": (0.0, 0.5, 20.0),
                "solve": (1 / 3, 2 / 3, 75.5),
            },
        ),
        "experimental": [
            _pt("JQ_S1.gr", 1.8, {"propose": 0.2, "solve": 0.142}),
            _pt("JQ_S2.gr", 2.2, {"propose": 0.3, "solve": 0.181}),
            _pt("JQ_S3.gr", None, {"propose": 0.3, "solve": 0.151}),
        ],
        "seconds": 1500.0,
    }


@pytest.fixture(scope="module")
def metadata():
    path = REPO_ROOT / "onnx_models" / "mmnp" / "metadata.json"
    metadata = json.loads(path.read_text())
    for key in ("solve", "solve_geometry", "blind_geometry"):
        metadata["metrics"].pop(key, None)
    return metadata


def _with(metadata, report, key="solve"):
    metadata = copy.deepcopy(metadata)
    metadata["metrics"][key] = report
    return metadata


def _lines(page, start):
    """The lines of the page from the first that starts with ``start``."""
    lines = page.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(start))
    return lines[first:]


def test_solve_section(metadata, solve_report):
    figures = {"JQ_S1.gr": "_static/solve/JQ_S1_fits.png"}
    page = render(_with(metadata, solve_report), solve_figures=figures)
    assert "Structure solution: clusters outside the libraries" in page
    assert (
        "python -m training.evaluate_solve --model onnx_models/mmnp "
        "--samples 1000 --seed 0 --experimental ../shared/data/experimental "
        "--plots docs/source/_static/solve --write-metadata"
    ) in page
    assert "``mine`` and ``solve`` (:doc:`solve`) were evaluated" in page
    assert "git 0123456789ab, 1000 epochs" in page
    assert "code at fedcba987654-dirty" in page
    assert "G(r), Qmax, Qmin only" in page
    assert "``mine`` fits mmnp + large (414 clusters)" in page
    # the overall row of solve on the small part: n, count, shape, share
    # with ΔRw <= 0.02, median ΔRw, MAE (n), seconds mean (median)
    section = "\n".join(_lines(page, "Structure solution: clusters"))
    row = _lines(section, "   * - ``solve``")[:8]
    assert [line.split("- ", 1)[1] for line in row] == [
        "``solve``",
        "24",
        "62.5",
        "31.2",
        "87.5",
        "+0.012",
        "0.250 ± 0.050 (15)",
        "8.8 (4.4)",
    ]
    assert "   * - icosahedral: ``mine``" in page
    assert "   * - decahedral: ``solve``" in page
    assert "``solve``: solved 24" in page and "``solve``: solved 6" in page
    # targets: small meets all three, large misses all three
    small = "\n".join(_lines(page, "Targets for ``solve`` on the small")[:6])
    assert "(n = 24)" in small
    assert "target ≥ 50 %, measured 62.5 %: **met**" in small
    assert "target on ≥ 80 % of the PDFs, measured 87.5 %: **met**" in small
    assert "≤ 10 s per PDF up to 200 atoms, measured 8.8 s" in small
    assert "**missed**" not in small
    large = "\n".join(_lines(page, "Targets for ``solve`` on the large")[:6])
    assert "measured 33.3 %: **missed**" in large
    assert "measured 66.7 %: **missed**" in large
    assert "≤ 60 s per PDF up to 2000 atoms, measured 75.5 s" in large
    assert "**met**" not in large
    # the measured PDFs: a row per file and method, one of three fits
    assert "   * - JQ_S2.gr: ``solve``\n     - 2.2\n     - 0.181" in page
    assert "   * - JQ_S3.gr: ``propose``\n     - -\n     - 0.300" in page
    # diameter, radii of gyration and qdamp beside the atom count
    assert (
        "     - 147\n     - 1.87\n     - 5.0, 5.1, 7.3\n     - 0.057" in page
    )
    assert "measured: 1 of 3 (Rw 0.142, 0.181, 0.151): **missed**" in page
    assert page.count(".. figure:: _static/solve/") == 1
    assert ".. figure:: _static/solve/JQ_S1_fits.png" in page
    assert "--strain" not in section and "a strain too" not in section
    solve_report["protocol"]["solve_strain"] = True
    page = render(_with(metadata, solve_report), solve_figures=figures)
    assert "--seed 0 --strain on --experimental" in page
    assert "; a strain too, as ``solve`` (``strain=True``)" in page


def test_solve_section_without_large_or_measured(metadata, solve_report):
    del solve_report["large"], solve_report["experimental"]
    solve_report["settings"]["parts"] = ["small"]
    page = render(_with(metadata, solve_report))
    assert "--parts small --samples" in page and "--experimental" not in page
    assert "Small clusters" in page and "Large clusters" not in page
    assert (
        "Measured Pt PDFs" not in page
        and ".. figure:: _static/solve" not in page
    )
    assert "Targets for ``solve`` on the small clusters" in page
    # one method only, and a geometry-split run: no targets
    for part in ("small",):
        methods = solve_report[part]["methods"]
        solve_report[part]["methods"] = {"solve": methods["solve"]}
    solve_report["settings"].update(
        methods=["solve"], geometry_model="onnx_models/mmnp_geometry"
    )
    page = render(_with(metadata, solve_report, "solve_geometry"))
    assert "with the geometry-split model" in page
    assert "--geometry-model onnx_models/mmnp_geometry" in page
    assert (
        "--methods solve" in page
        and "``mine``" not in page.split("Structure solution")[1]
    )
    assert "``solve`` (:doc:`solve`) was evaluated" in page
    assert "Targets for" not in page
    assert "Structure solution" not in render(metadata)


def test_solve_figures(tmp_path, solve_report):
    page = tmp_path / "source"
    (page / "_static" / "solve").mkdir(parents=True)
    for row in solve_report["experimental"][:2]:
        row["plot"] = str(page / "_static" / "solve" / f"{row['file']}.png")
    (page / "_static" / "solve" / "JQ_S1.gr.png").write_bytes(b"png")
    solve_report["experimental"][2]["plot"] = str(tmp_path / "JQ_S3.png")
    (tmp_path / "JQ_S3.png").write_bytes(b"png")
    found = solve_figures({"metrics": {"solve": solve_report}}, page)
    # JQ_S2's figure is missing, JQ_S3's lies outside the page's folder
    assert found == {"JQ_S1.gr": "_static/solve/JQ_S1.gr.png"}
    assert solve_figures({"metrics": {}}, page) == {}


def _blind_summary(n, hits, seconds):
    return {
        "n": n,
        "type": hits,
        "count": hits / 2,
        "shape": hits / 4,
        "delta_rw": {"median": -0.0042, "mean": 0.01},
        "mae": {"mean": 0.125, "std": 0.05},
        "mae_component": {"mean": 0.07, "std": 0.02},
        "median_seconds": seconds,
    }


@pytest.fixture
def geometry_report(metadata):
    """A summary like ``metrics["blind_geometry"]``, same test PDFs."""
    shipped = metadata["metrics"]["blind"]["settings"]
    methods = {
        "propose": 0.5,
        "propose_nosnap": 0.25,
        "mine": 0.75,
        "nearest": 0.5,
        "solve": 1.0,
    }
    types = ("fcc", "hcp")
    return {
        "model": {
            "name": "mmnp_geometry",
            "folder": "training/models/mmnp_geometry",
            "split": "geometry",
            "training_commit": "0123456789abcdef",
            "training_wall_time_s": 5400,
            "epochs": 1000,
            "polish_epochs": 400,
        },
        "evaluated_commit": "fedcba987654",
        "settings": {
            **shipped,
            "robust_per_type": 0,
            "calibration_per_type": 0,
            "solve_max_atoms": 200,
            "solve_strain": False,
        },
        "geometry": {
            "n_pdfs": 8,
            "n_shapes": 5,
            "methods": {
                name: {
                    "overall": _blind_summary(8, hits, 8.0),
                    "per_type": {
                        t: _blind_summary(4, hits, 8.0) for t in types
                    },
                    "sources": (
                        {"solved": 6, "library": 2}
                        if name == "solve"
                        else {"library": 8}
                    ),
                }
                for name, hits in methods.items()
            },
            "note": "The model was trained on this split.",
        },
        "seconds": 3600.0,
    }


def test_geometry_model_section(metadata, geometry_report):
    page = render(_with(metadata, geometry_report, "blind_geometry"))
    section = "\n".join(_lines(page, "The model trained on the geometry"))
    assert "recorded evaluation" not in page
    assert (
        "Model ``mmnp_geometry`` (not shipped), trained on the geometry "
        "split: 1000 epochs, then 400 epochs of decoder polishing "
        "(90 min in all); trained at git 0123456789ab."
    ) in section
    assert (
        "python -m training.evaluate --model training/models/mmnp_geometry "
        "--splits geometry --samples 1000 --seed 0 --per-type 12 "
        "--robust-per-type 0 --calibration-per-type 0 --write-metadata "
        "onnx_models/mmnp/metadata.json"
    ) in section
    assert "(60 min in one process; code at fedcba987654)" in section
    assert "8 PDFs (5 distinct test shapes; the same PDFs as above)" in (
        section
    )
    assert "used the training shapes of the split only" in section
    assert "``max_atoms=200``" in section
    # the split tables' columns, solve as a row
    row = _lines(section, "   * - ``solve``")[:8]
    assert [line.split("- ", 1)[1] for line in row] == [
        "``solve``",
        "8",
        "100.0",
        "50.0",
        "25.0",
        "-0.004",
        "0.125 ± 0.050 (50.0 %)",
        "8.00",
    ]
    assert "   * - hcp: ``solve``" in section
    assert "   * - fcc: ``propose``, no snapping" in section
    assert "* ``solve``: prior 0, search 0, refined 0, library 2, " in section
    assert "solved 6 (of 8 PDFs)" in section
    # the shipped model's geometry tables stay, mine and nearest only
    shipped = page.split("The model trained on the geometry")[0]
    shipped = shipped.split("Geometry-disjoint split")[1]
    assert "   * - ``mine``" in shipped and "``propose``" not in shipped
    assert "``strain=False``" in section and "--strain" not in section
    # other settings than the shipped run: other PDFs
    geometry_report["settings"]["seed"] = 1
    page = render(_with(metadata, geometry_report, "blind_geometry"))
    assert "the same PDFs as above" not in page
    # a run with solve's strain="auto" says so, and how to rerun it
    geometry_report["settings"]["solve_strain"] = "auto"
    page = render(_with(metadata, geometry_report, "blind_geometry"))
    assert "--calibration-per-type 0 --strain auto --write-metadata" in page
    assert "``max_atoms=200``, ``strain='auto'``" in page
    assert "refitted their best candidates with a strain" in page
