"""Write the results of ``deepstruc propose`` to an output folder.

For each PDF the folder (a subfolder per input when there are several)
gets

* ``run.json``: how the results were made (command, input and its
  sha256, Qmax, Qmin and qdamp with the source of each, model and the
  sha256 of its files, package version, seed, warnings, timings);
* ``candidates.csv``: the ranked candidates with their fit and flags;
* per candidate the structure (``candidate_NN.xyz``, ``candidate_NN.cif``)
  and the fit (``candidate_NN.fgr``: r, Gobs, Gcalc, Gdiff);
* fit plots ``fit_NN.png`` of the best candidates and ``latent_map.png``.

Several inputs also get a top-level ``summary.csv`` with the best
candidate of each and a ``run.json`` of the whole run.  Everything is
written to a temporary folder next to the output and moved into place at
the end, so an error or an interruption never leaves half-written
results behind.
"""

import csv
import json
import os
import platform
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from diffpy.deepstruc.candidate import Candidate
from diffpy.deepstruc.debye import DebyeParameters
from diffpy.deepstruc.features import prior_input
from diffpy.deepstruc.fitting import FIT_RANGE
from diffpy.deepstruc.model import file_sha256, load_model
from diffpy.deepstruc.pdfdata import (
    PDFData,
    PDFInputError,
    PDFInputWarning,
    instrument_parameters,
    load_pdf,
)
from diffpy.deepstruc.propose import SIGMA_MULTIPLIERS, propose_structures
from diffpy.deepstruc.version import __version__

#: File name of the bundled example PDF (in ``diffpy.deepstruc.data``).
EXAMPLE_NAME = "Pt_1.8nm_JQ_S1.gr"
#: Columns of ``candidates.csv``.
CANDIDATE_COLUMNS = (
    "rank",
    "rw",
    "n_atoms",
    "nearest_type",
    "nearest_size",
    "nearest_rmsd",
    "scale",
    "zoom",
    "uiso",
    "z1",
    "z2",
    "sigma",
    "source",
    "label",
    "element",
    "flags",
)
#: Columns of ``summary.csv``: the input, its subfolder, its best candidate.
SUMMARY_COLUMNS = ("input", "folder", *CANDIDATE_COLUMNS)
#: Structure files written for every candidate.
STRUCTURE_SUFFIXES = (".xyz", ".cif")
#: Number of candidates that get a fit plot.
N_FIT_PLOTS = 3


def example_pdf() -> Path:
    """Path of the bundled example PDF (a 1.8 nm Pt nanoparticle).

    Returns
    -------
    pathlib.Path
        The ``.gr`` file.
    """
    return Path(str(resources.files("diffpy.deepstruc.data") / EXAMPLE_NAME))


def run_propose(
    data,
    output,
    *,
    force: bool = False,
    model: str | Path = "mmnp",
    top: int = 10,
    n_samples: int = 1000,
    seed: int = 0,
    qmax: float | None = None,
    qmin: float | None = None,
    qdamp: float | None = None,
    element: str | None = None,
    search: bool = True,
    snap: bool = True,
    fit_range: tuple[float, float] = FIT_RANGE,
    command: str | None = None,
) -> int:
    """Propose structures for PDF files and write the results to a folder.

    Parameters
    ----------
    data : sequence of str or os.PathLike
        The PDF files.
    output : str or os.PathLike
        The output folder.  One input writes into it directly; several
        inputs get one subfolder each (named after the file), and the
        folder gets a ``summary.csv`` and a ``run.json`` of the whole run.
    force : bool
        Replace an existing, non-empty output folder.
    model, top, n_samples, seed, qmax, qmin, qdamp, element, search, snap
        Passed to :func:`diffpy.deepstruc.propose.propose_structures`.
    fit_range : tuple of float
        r range (Å) of the fits.
    command : str, optional
        The command line that asked for the run, recorded in
        ``run.json``; by default the Python call.

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    FileExistsError
        When ``output`` exists and is a file, or is a non-empty folder
        and ``force`` is false.
    diffpy.deepstruc.pdfdata.PDFInputError
        When an input is not a usable PDF; nothing is written then.
    ValueError
        For bad arguments, or when ``force`` would delete an input file.
    """
    net = load_model(model)
    settings = {
        "model": str(model),
        "n_samples": n_samples,
        "top": top,
        "seed": seed,
        "search": search,
        "snap": snap,
        "fit_range": list(fit_range),
        "element": element,
        "qmax": qmax,
        "qmin": qmin,
        "qdamp": qdamp,
    }

    def solve(pdf):
        return propose_structures(
            pdf,
            model=model,
            n_samples=n_samples,
            top=top,
            seed=seed,
            element=element,
            search=search,
            snap=snap,
            fit_range=fit_range,
        )

    return _run(
        "run_propose",
        data,
        output,
        force=force,
        settings=settings,
        solve=solve,
        origin={"model": _model_record(net)},
        net=net,
        command=command,
    )


def run_mine(
    data,
    output,
    *,
    force: bool = False,
    library="mmnp",
    top: int = 10,
    qmax: float | None = None,
    qmin: float | None = None,
    qdamp: float | None = None,
    element: str | None = None,
    fit_range: tuple[float, float] = FIT_RANGE,
    command: str | None = None,
) -> int:
    """Mine a cluster library for PDF files and write the results.

    The output is that of :func:`run_propose` without the latent map;
    ``run.json`` names the library and its size instead of the model.

    Parameters
    ----------
    data, output, force, top, qmax, qmin, qdamp, element, fit_range, command
        As for :func:`run_propose`.
    library : str or os.PathLike
        ``"mmnp"``, ``"large"``, a folder of structure files or an ASE
        database (:func:`diffpy.deepstruc.libraries.load_library`).

    Returns
    -------
    int
        The exit status, 0.

    Raises
    ------
    FileExistsError, diffpy.deepstruc.pdfdata.PDFInputError, ValueError
        As for :func:`run_propose`;
        :class:`~diffpy.deepstruc.libraries.LibraryError` (a ValueError)
        for an unusable library.
    """
    from diffpy.deepstruc.libraries import load_library
    from diffpy.deepstruc.mining import mine_library

    clusters = load_library(library)
    settings = {
        "library": str(library),
        "top": top,
        "fit_range": list(fit_range),
        "element": element,
        "qmax": qmax,
        "qmin": qmin,
        "qdamp": qdamp,
    }

    def solve(pdf):
        return mine_library(
            pdf,
            library=clusters,
            top=top,
            element=element,
            fit_range=fit_range,
        )

    origin = {"library": {"name": str(library), "n_clusters": len(clusters)}}
    return _run(
        "run_mine",
        data,
        output,
        force=force,
        settings=settings,
        solve=solve,
        origin=origin,
        net=None,
        command=command,
    )


def _run(
    function, data, output, *, force, settings, solve, origin, net, command
) -> int:
    """Solve every input with ``solve`` and write the results.

    ``settings`` holds the keywords of the call (``qmax``, ``qmin`` and
    ``qdamp`` among them), ``origin`` the model or library record of
    ``run.json``, and ``net`` the model whose latent map is drawn (None
    for no map).
    """
    paths = [Path(p) for p in data]
    output = Path(output)
    _check_output(output, paths, force)
    user_q = {key: settings[key] for key in ("qmax", "qmin", "qdamp")}
    pdfs = [_validated(path, user_q) for path in paths]
    run = {
        "command": command
        or f"diffpy.deepstruc.report.{function}("
        f"{[str(p) for p in paths]}, {str(output)!r}, **{settings})",
        "version": __version__,
        "python": platform.python_version(),
        "started": _now(),
        "settings": settings,
        **origin,
    }
    folders = _folder_names(paths) if len(paths) > 1 else [""]
    output.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=output.parent, prefix=".deepstruc-"))
    try:
        work = scratch / "output"
        summary, records = [], []
        for path, pdf, name in zip(paths, pdfs, folders):
            folder = work / name
            folder.mkdir(parents=True)
            clock = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                candidates = solve(pdf)
            solved = time.perf_counter()
            _write_results(candidates, pdf, net, folder)
            record = {
                "input": _input_record(path, pdf, user_q),
                "element": _element_record(
                    settings["element"], pdf, candidates
                ),
                "folder": name,
                "warnings": [str(w.message) for w in caught],
                "n_candidates": len(candidates),
                "timings_s": {
                    "solve": round(solved - clock, 3),
                    "write": round(time.perf_counter() - solved, 3),
                },
            }
            _write_json(folder / "run.json", {**run, **record})
            records.append(record)
            print(_summary_text(record, candidates, output / name), flush=True)
            for w in caught:
                warnings.showwarning(
                    w.message, w.category, w.filename, w.lineno
                )
            best = _row(candidates[0]) if candidates else {}
            summary.append({"input": str(path), "folder": name, **best})
        if len(paths) > 1:
            _write_csv(work / "summary.csv", SUMMARY_COLUMNS, summary)
            _write_json(work / "run.json", {**run, "inputs": records})
            print(f"summary of all inputs: {output / 'summary.csv'}")
        _move_into_place(work, output)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _model_record(net) -> dict:
    """Name, folder and file checksums of the model, for ``run.json``."""
    files = {"metadata.json": file_sha256(net.folder / "metadata.json")}
    for entry in net.metadata["files"].values():
        files[entry["path"]] = entry["sha256"]
    return {"name": net.name, "folder": str(net.folder), "sha256": files}


def _input_record(path: Path, pdf: PDFData, user_q: dict) -> dict:
    """Where the input and each instrument parameter came from."""
    params = instrument_parameters(pdf, asdict(DebyeParameters()))
    record = {
        "path": str(path),
        "sha256": file_sha256(path),
        "r_range": [pdf.rmin, pdf.rmax],
        "n_points": len(pdf.r),
    }
    for key, given in user_q.items():
        if given is not None:
            source = "user"
        elif getattr(pdf, key) is not None:
            source = "header"
        else:
            source = "model default"
        record[key] = {"value": getattr(params, key), "source": source}
    return record


def _element_record(element, pdf: PDFData, candidates) -> dict:
    """The element that labels the atoms and where it came from."""
    value = candidates[0].element if candidates else element
    if element:
        source = "user"
    elif value == (pdf.composition or "").strip():
        source = "header"
    else:
        source = "default (the file gives no single element)"
    return {"value": value, "source": source}


def _write_json(path: Path, content: dict) -> None:
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(content, stream, indent=2, ensure_ascii=False)
        stream.write("\n")


def _write_results(
    candidates: list[Candidate], pdf: PDFData, net, folder: Path
) -> None:
    """Write the table, structures, fits and plots of one input.

    The latent map is drawn for the model ``net``, not at all for None.
    """
    from diffpy.deepstruc.plotting import plot_fit, plot_latent_map, save

    rows = [_row(c) for c in candidates]
    _write_csv(folder / "candidates.csv", CANDIDATE_COLUMNS, rows)
    for candidate in candidates:
        stem = folder / f"candidate_{candidate.rank:02d}"
        for suffix in STRUCTURE_SUFFIXES:
            candidate.write(stem.with_suffix(suffix))
        candidate.write_fit(stem.with_suffix(".fgr"))
    for candidate in candidates[:N_FIT_PLOTS]:
        save(plot_fit(candidate), folder / f"fit_{candidate.rank:02d}.png")
    if net is None:
        return
    features, _ = prior_input(pdf.r, pdf.g)
    mean, sigma = (a[0] for a in net.prior(features))
    fig = plot_latent_map(
        net.latent_map,
        prior_mean=mean,
        prior_sigma=sigma,
        sigma_multipliers=SIGMA_MULTIPLIERS,
        candidates=candidates,
    )
    save(fig, folder / "latent_map.png")


def _check_output(output: Path, paths: list[Path], force: bool) -> None:
    """Refuse an output that holds results or input files."""
    if output.exists() and not output.is_dir():
        raise FileExistsError(
            f"The output {output} is a file. Please choose a folder."
        )
    if output.is_dir() and any(output.iterdir()):
        if not force:
            raise FileExistsError(
                f"The output folder {output} exists and is not empty. "
                "Please choose another folder or pass --force to replace it."
            )
        inside = [p for p in paths if output.resolve() in p.resolve().parents]
        if inside:
            raise ValueError(
                f"--force would delete the input {inside[0]} with the "
                f"output folder {output}. Please choose another folder."
            )


def _validated(path: Path, user_q: dict) -> PDFData:
    """Load one input, with its path in any error message."""
    try:
        with warnings.catch_warnings():
            # propose_structures warns again, next to that input's results
            warnings.simplefilter("ignore", PDFInputWarning)
            return load_pdf(path, **user_q)
    except PDFInputError as err:
        if str(path) in str(err):
            raise
        raise PDFInputError(f"{path}: {err}") from None


def _folder_names(paths: list[Path]) -> list[str]:
    """Subfolder names: the file stems, numbered where they repeat."""
    names: list[str] = []
    for path in paths:
        name, k = path.stem, 1
        while name in names:
            k += 1
            name = f"{path.stem}-{k}"
        names.append(name)
    return names


def _row(candidate: Candidate) -> dict:
    """One line of ``candidates.csv``."""
    nearest = candidate.nearest_reference
    return {
        "rank": candidate.rank,
        "rw": f"{candidate.rw:.6g}",
        "n_atoms": candidate.n_atoms,
        "nearest_type": nearest.type,
        "nearest_size": "-".join(str(s) for s in nearest.size),
        "nearest_rmsd": f"{nearest.rmsd:.4g}",
        "scale": f"{candidate.scale:.6g}",
        "zoom": f"{candidate.zoom:.6g}",
        "uiso": f"{candidate.uiso:.6g}",
        "z1": f"{candidate.latent[0]:.6g}",
        "z2": f"{candidate.latent[1]:.6g}",
        "sigma": f"{candidate.sigma:.4g}",
        "source": candidate.source,
        "label": candidate.label,
        "element": candidate.element,
        "flags": ";".join(candidate.flags),
    }


def _write_csv(path: Path, columns, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _summary_text(
    record: dict, candidates: list[Candidate], folder: Path
) -> str:
    """The one-screen report of one input."""
    source = record["input"]
    lines = [f"input: {source['path']}"]
    for key, label, form in (
        ("qmax", "Qmax", ".2f"),
        ("qmin", "Qmin", ".2f"),
        ("qdamp", "qdamp", ".4f"),
    ):
        entry = source[key]
        note = entry["source"]
        if note == "model default":
            note += f"; not in the file, please pass --{key} if known"
        value = format(entry["value"], form)
        lines.append(f"{label + ':':<7}{value} Å⁻¹ ({note})")
    lines += [
        "",
        f"{'rank':>4} {'Rw':>6} {'atoms':>5}  {'structure':<31}"
        f"{'zoom':>6} {'Uiso (Å²)':>10}  flags",
    ]
    lines += [
        f"{c.rank:>4} {c.rw:6.3f} {c.n_atoms:>5}  {_structure_name(c):<31}"
        f"{c.zoom:6.3f} {c.uiso:10.5f}  {', '.join(c.flags) or '-'}"
        for c in candidates
    ]
    lines += [
        "",
        "structure: the library entry of a library candidate, else "
        "'~' and the nearest library geometry",
    ]
    lines += ["", f"results in {folder}{os.sep}", ""]
    return "\n".join(lines)


def _structure_name(candidate: Candidate) -> str:
    """The library label of a candidate, else its nearest reference."""
    if candidate.label:
        return f"{candidate.label} ({candidate.n_atoms} atoms)"
    return f"~{candidate.nearest_reference}"


def _move_into_place(work: Path, output: Path) -> None:
    """Rename the finished ``work`` folder to ``output``.

    An existing output folder (empty, or replaced with ``--force``) is
    first moved next to ``work``, to be deleted with it.
    """
    old = work.with_name("replaced")
    if output.exists():
        os.rename(output, old)
    try:
        os.rename(work, output)
    except OSError:
        if old.exists():
            os.rename(old, output)
        raise
