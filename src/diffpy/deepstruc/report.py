"""Write the results of ``deepstruc propose``, ``mine`` or ``solve``.

For each PDF the folder (a subfolder per input when there are several)
gets

* ``run.json``: how the results were made (command, input and its
  sha256, Qmax, Qmin and qdamp with the source of each, model and the
  sha256 of its files, package version, seed, warnings, timings);
* ``candidates.csv``: the ranked candidates with their fit and flags;
* per candidate the structure (``candidate_NN.xyz``, ``candidate_NN.cif``)
  and the fit (``candidate_NN.fgr``: r, Gobs, Gcalc, Gdiff);
* fit plots ``fit_NN.png`` of the best candidates and ``latent_map.png``
  (with ``model="auto"`` one ``latent_map_<model>.png`` per model, with
  that model's candidates);
* for ``deepstruc solve``, ``search_path.csv``: the moves of the site
  search of each solved candidate, with the atom count and Rw after
  each.

One input is written to a temporary folder next to the output and
moved into place at the end, so an error or an interruption never leaves
half-written results behind; an error stops the run.

Several inputs run through :mod:`diffpy.deepstruc.batch`, one after
another or on Dask.  Each input's subfolder is written to a temporary
folder inside the output and renamed into place as soon as the input is
done; its ``run.json`` is then marked complete.  An input that fails is
recorded, with its error, in the top-level ``summary.csv`` and
``run.json`` and the others go on; the exit status is then 1.  A second
run into the same folder keeps the inputs whose results are complete
(same input sha256, settings, model or library and package version) and
redoes the others.  The output folder gets

* ``summary.csv``: one row per input (:data:`SUMMARY_COLUMNS`): its
  status and error, its best candidate, the type and size of the second
  and third best, and the weight of the best candidate's type;
* ``summary.png``: the best candidate's type, atom count and Rw of every
  input, against the input order or a header value such as the
  temperature (:func:`diffpy.deepstruc.batch.plot_series`);
* ``run.json``: the run and a record of every input.
"""

import csv
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import numpy as np

from diffpy.deepstruc.batch import (
    map_pdfs,
    mine_many,
    plot_series,
    scheduler_client,
    series_axis,
)
from diffpy.deepstruc.candidate import Candidate
from diffpy.deepstruc.debye import DebyeParameters
from diffpy.deepstruc.features import prior_input
from diffpy.deepstruc.fitting import FIT_RANGE
from diffpy.deepstruc.model import available_models, file_sha256, load_model
from diffpy.deepstruc.pdfdata import (
    PDFData,
    PDFInputError,
    PDFInputWarning,
    instrument_parameters,
    load_pdf,
)
from diffpy.deepstruc.propose import (
    AUTO,
    SIGMA_MULTIPLIERS,
    propose_structures,
)
from diffpy.deepstruc.version import __version__

#: File name of the bundled example PDF (in ``diffpy.deepstruc.data``).
EXAMPLE_NAME = "Pt_1.8nm_JQ_S1.gr"
#: Columns of ``candidates.csv``.
CANDIDATE_COLUMNS = (
    "rank",
    "rw",
    "n_atoms",
    "type",
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
    "model",
    "label",
    "element",
    "flags",
    "type_weight",
    "stacking",
    "stacking_hc",
    "strain",
)
#: Columns of ``type_weights.csv``.
TYPE_COLUMNS = ("type", "weight", "best_rw")
#: Columns of ``search_path.csv``: the candidate's rank, the step number
#: and the step (:class:`diffpy.deepstruc.sitesearch.SearchStep`).
PATH_COLUMNS = ("rank", "step", "move", "added", "removed", "n_atoms", "rw")
#: Columns of ``summary.csv``: the input, its subfolder, whether it
#: failed and why, the columns of ``candidates.csv`` for its best
#: candidate, and the second and third best as "type size, atoms, Rw".
SUMMARY_COLUMNS = (
    "input",
    "folder",
    "status",
    "error",
    *CANDIDATE_COLUMNS,
    "second_best",
    "third_best",
)
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
    noise: float | None = None,
    strain: bool = False,
    command: str | None = None,
    scheduler: str | None = None,
    client=None,
    series_key: str | None = None,
) -> int:
    """Propose structures for PDF files and write the results to a folder.

    Parameters
    ----------
    data : sequence of str or os.PathLike
        The PDF files.
    output : str or os.PathLike
        The output folder.  One input writes into it directly; several
        inputs get one subfolder each (named after the file), and the
        folder gets a ``summary.csv``, a ``summary.png`` and a
        ``run.json`` of the whole run (see the module description).
    force : bool
        Replace an existing, non-empty output folder; with several
        inputs, redo the inputs whose results are complete instead of
        keeping them.
    model, top, n_samples, seed, qmax, qmin, qdamp, element, search, snap
        Passed to :func:`diffpy.deepstruc.propose.propose_structures`.
    fit_range : tuple of float
        r range (Å) of the fits.
    noise : float, optional
        Standard deviation of the noise of G, for the type weights; by
        default estimated from the data.
    strain : bool
        Refit the best candidates with a homogeneous strain too
        (:func:`diffpy.deepstruc.strain.refit_strained`).
    command : str, optional
        The command line that asked for the run, recorded in
        ``run.json``; by default the Python call.
    scheduler : str, optional
        Run on Dask: ``"local:N"`` for N local worker processes or the
        address of a running scheduler
        (:func:`diffpy.deepstruc.batch.scheduler_client`).
    client : ``distributed.Client``, optional
        Run on this Dask client instead (not with ``scheduler``).
    series_key : str, optional
        Header key that orders the inputs in ``summary.png``
        (:func:`diffpy.deepstruc.batch.series_axis`).

    Returns
    -------
    int
        The exit status: 0, or 1 when an input of several failed.

    Raises
    ------
    FileExistsError
        When ``output`` exists and is a file, or is a non-empty folder
        and ``force`` is false (with several inputs: unless it holds the
        results of such a run, which is then resumed).
    diffpy.deepstruc.pdfdata.PDFInputError
        When the one input is not a usable PDF; nothing is written then.
    diffpy.deepstruc.batch.SchedulerError
        When Dask is missing or its scheduler cannot be reached.
    ValueError
        For bad arguments, or when ``force`` would delete an input file.
    """
    options = dict(
        model=model,
        n_samples=n_samples,
        top=top,
        seed=seed,
        search=search,
        snap=snap,
        fit_range=fit_range,
        noise=noise,
        strain=strain,
        element=element,
        qmax=qmax,
        qmin=qmin,
        qdamp=qdamp,
    )
    return _run_model(
        propose_structures,
        "run_propose",
        data,
        output,
        options,
        force=force,
        command=command,
        dask=(scheduler, client),
        series_key=series_key,
    )


def run_solve(
    data,
    output,
    *,
    force: bool = False,
    model: str | Path = "mmnp",
    top: int = 5,
    seed: int = 0,
    max_atoms: int = 200,
    n_starts: int = 3,
    qmax: float | None = None,
    qmin: float | None = None,
    qdamp: float | None = None,
    element: str | None = None,
    fit_range: tuple[float, float] = FIT_RANGE,
    noise: float | None = None,
    strain: bool | str = False,
    command: str | None = None,
    scheduler: str | None = None,
    client=None,
    series_key: str | None = None,
) -> int:
    """Solve structures for PDF files and write the results to a folder.

    The output is that of :func:`run_propose`, plus ``search_path.csv``:
    the accepted moves of the search of every solved candidate
    (:data:`PATH_COLUMNS`).

    Parameters
    ----------
    data, output, force, model, top, seed, qmax, qmin, qdamp, element
        As for :func:`run_propose`.
    fit_range, noise, command, scheduler, client, series_key
        As for :func:`run_propose`.
    max_atoms, n_starts, strain
        Passed to :func:`diffpy.deepstruc.solve.solve_structure`.

    Returns
    -------
    int
        The exit status: 0, or 1 when an input of several failed.

    Raises
    ------
    FileExistsError, diffpy.deepstruc.pdfdata.PDFInputError, ValueError
        As for :func:`run_propose`.
    diffpy.deepstruc.batch.SchedulerError
        As for :func:`run_propose`.
    """
    from diffpy.deepstruc.solve import solve_structure

    options = dict(
        model=model,
        top=top,
        seed=seed,
        max_atoms=max_atoms,
        n_starts=n_starts,
        fit_range=fit_range,
        noise=noise,
        strain=strain,
        element=element,
        qmax=qmax,
        qmin=qmin,
        qdamp=qdamp,
    )
    # a progress line for one input at a terminal, not from Dask workers
    progress = len(data) == 1 and scheduler is None and client is None
    return _run_model(
        solve_structure,
        "run_solve",
        data,
        output,
        options,
        force=force,
        command=command,
        dask=(scheduler, client),
        series_key=series_key,
        progress=progress and sys.stderr.isatty(),
    )


def _run_model(
    solve,
    function,
    data,
    output,
    options,
    *,
    force,
    command,
    dask,
    series_key,
    progress=None,
) -> int:
    """`_run` for a per-PDF function of a model (propose or solve).

    ``options`` are the keywords of ``solve``, ``model`` and
    ``fit_range`` among them, as ``run.json`` records them; ``progress``,
    when given, is passed on but not recorded.
    """
    model = options["model"]
    auto = str(model) == AUTO
    nets = [load_model(m) for m in (available_models() if auto else [model])]
    records = [_model_record(net) for net in nets]
    settings = {
        **options,
        "model": str(model),
        "fit_range": list(options["fit_range"]),
    }
    extra = {} if progress is None else {"progress": progress}

    def stream(paths, client):
        return map_pdfs(solve, paths, client=client, **options, **extra)

    return _run(
        function,
        data,
        output,
        force=force,
        settings=settings,
        stream=stream,
        origin={
            "model": {"name": AUTO, "models": records} if auto else records[0]
        },
        nets=nets,
        command=command,
        dask=dask,
        series_key=series_key,
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
    noise: float | None = None,
    strain: bool = False,
    command: str | None = None,
    scheduler: str | None = None,
    client=None,
    series_key: str | None = None,
) -> int:
    """Mine a cluster library for PDF files and write the results.

    The output is that of :func:`run_propose` without the latent map;
    ``run.json`` names the library and its size instead of the model.

    Parameters
    ----------
    data, output, force, top, qmax, qmin, qdamp, element, fit_range, noise
        As for :func:`run_propose`.
    strain, command, scheduler, client, series_key
        As for :func:`run_propose`.
    library : str or os.PathLike
        ``"mmnp"``, ``"large"``, a folder of structure files or an ASE
        database (:func:`diffpy.deepstruc.libraries.load_library`).  On
        Dask the built-in libraries are loaded by every worker, and a
        folder or database is read here and sent to every worker once.

    Returns
    -------
    int
        The exit status: 0, or 1 when an input of several failed.

    Raises
    ------
    FileExistsError, diffpy.deepstruc.pdfdata.PDFInputError, ValueError
        As for :func:`run_propose`;
        :class:`~diffpy.deepstruc.libraries.LibraryError` (a ValueError)
        for an unusable library.
    diffpy.deepstruc.batch.SchedulerError
        As for :func:`run_propose`.
    """
    from diffpy.deepstruc.libraries import LIBRARIES, load_library

    clusters = load_library(library)
    options = dict(
        top=top,
        fit_range=fit_range,
        noise=noise,
        strain=strain,
        element=element,
        qmax=qmax,
        qmin=qmin,
        qdamp=qdamp,
    )
    settings = {
        "library": str(library),
        **options,
        "fit_range": list(fit_range),
    }
    # a built-in library is named, so that each Dask worker loads its own
    named = library if library in LIBRARIES else clusters

    def stream(paths, client):
        return mine_many(paths, client=client, library=named, **options)

    origin = {"library": {"name": str(library), "n_clusters": len(clusters)}}
    return _run(
        "run_mine",
        data,
        output,
        force=force,
        settings=settings,
        stream=stream,
        origin=origin,
        nets=[],
        command=command,
        dask=(scheduler, client),
        series_key=series_key,
    )


def _run(
    function,
    data,
    output,
    *,
    force,
    settings,
    stream,
    origin,
    nets,
    command,
    dask,
    series_key,
) -> int:
    """Solve every input and write the results; return the exit status.

    ``stream(paths, client)`` gives a
    :class:`~diffpy.deepstruc.batch.BatchResult` per path.  ``settings``
    holds the keywords of the call (``qmax``, ``qmin`` and ``qdamp``
    among them), ``origin`` the model or library record of ``run.json``,
    ``nets`` the models whose latent maps are drawn (none for mining),
    ``dask`` the ``(scheduler, client)`` to run on (:func:`_dask`) and
    ``series_key`` the header key of the series plot.
    """
    paths = [Path(p) for p in data]
    if not paths:
        raise ValueError("Please give at least one PDF file.")
    output = Path(output)
    if all(part is not None for part in dask):
        raise ValueError("Please pass a scheduler or a client, not both.")
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
    user_q = {key: settings[key] for key in ("qmax", "qmin", "qdamp")}
    context = {
        "run": run,
        "settings": settings,
        "user_q": user_q,
        "nets": nets,
    }
    if len(paths) > 1:
        return _run_many(
            paths,
            output,
            force=force,
            origin=origin,
            stream=stream,
            dask=dask,
            series_key=series_key,
            **context,
        )
    (path,) = paths
    _check_output(output, paths, force)
    pdf = _validated(path, user_q)
    with _dask(*dask) as client:
        (result,) = stream(paths, client)
    if not result.ok:
        _show_warnings(result.warnings)
        raise result.error
    output.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=output.parent, prefix=".deepstruc-"))
    try:
        work = scratch / "output"
        record = _write_input(work, "", path, pdf, result, **context)
        print(_summary_text(record, result.candidates, output), flush=True)
        _show_warnings(result.warnings)
        _move_into_place(work, output)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _run_many(
    paths: list[Path],
    output: Path,
    *,
    force,
    origin,
    stream,
    dask,
    series_key,
    **context,
) -> int:
    """Several inputs: each folder in place when done, resumable."""
    _check_batch_output(output, paths, force)
    names = _folder_names(paths)
    run = context["run"]
    records = [
        None if force else _finished(output / name, path, run, origin)
        for path, name in zip(paths, names)
    ]
    todo = [k for k, record in enumerate(records) if record is None]
    with _dask(*dask) if todo else nullcontext() as client:
        output.mkdir(parents=True, exist_ok=True)
        for entry in output.iterdir():
            if force or entry.name.startswith(".deepstruc-"):
                _remove(entry)  # or left by a killed run
        _write_json(output / "run.json", {**run, "status": "running"})
        for path, name, record in zip(paths, names, records):
            if record is not None:
                print(f"{path}: complete results in {output / name}, kept")
        results = stream([paths[k] for k in todo], client) if todo else []
        for done, result in enumerate(results, 1):
            k = todo[result.index]
            print(f"[{done}/{len(todo)}]", end=" ")
            records[k] = _finish_input(
                output, names[k], paths[k], result, **context
            )
    rows = [
        {column: r["summary"].get(column, "") for column in SUMMARY_COLUMNS}
        for r in records
    ]
    _write_csv(output / "summary.csv", SUMMARY_COLUMNS, rows)
    _write_series_plot(output / "summary.png", rows, records, series_key)
    failed = [r for r in records if r["status"] == "failed"]
    _write_json(
        output / "run.json",
        {
            **run,
            "status": "finished",
            "finished": _now(),
            "n_inputs": len(records),
            "n_failed": len(failed),
            "inputs": records,
        },
    )
    print(f"summary of all inputs: {output / 'summary.csv'}")
    if not failed:
        return 0
    print(
        f"{len(failed)} of {len(records)} inputs failed: "
        + ", ".join(r["input"]["path"] for r in failed)
        + f" (errors in {output / 'summary.csv'})",
        file=sys.stderr,
    )
    return 1


@contextmanager
def _dask(scheduler: str | None, client):
    """The given client, one for ``scheduler``, or None (serial)."""
    if scheduler is None:
        yield client
        return
    with scheduler_client(scheduler) as made:
        workers = len(made.nthreads())
        print(f"Dask scheduler {made.scheduler.address}: {workers} workers")
        yield made


def _check_batch_output(output: Path, paths: list[Path], force: bool):
    """Refuse an output that holds other things than a batch's results."""
    if not force and (output / "run.json").is_file():
        try:
            previous = json.loads((output / "run.json").read_text("utf-8"))
        except (OSError, ValueError):
            previous = None
        if isinstance(previous, dict) and (
            "status" in previous or "inputs" in previous
        ):
            return  # resumed
    _check_output(output, paths, force)


def _finished(folder: Path, path: Path, run: dict, origin: dict):
    """The record of an input whose results in ``folder`` are complete.

    Complete means marked so in the folder's ``run.json``, with the
    input's sha256, the settings, the model or library and the package
    version of this run; None otherwise.
    """
    try:
        stored = json.loads((folder / "run.json").read_text("utf-8"))
        digest = file_sha256(path)
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("complete") is not True:
        return None
    same = ("version", "settings", *origin)
    if any(stored.get(key) != run[key] for key in same):
        return None
    source = stored.get("input")
    if not isinstance(source, dict) or source.get("sha256") != digest:
        return None
    record = {k: v for k, v in stored.items() if k not in run}
    del record["complete"]
    record["summary"] = {**record.get("summary", {}), "input": str(path)}
    return {**record, "kept": True}


def _finish_input(output: Path, name: str, path: Path, result, **context):
    """Write one input's folder, or record why it failed."""
    error = result.error
    if error is None:
        scratch = Path(tempfile.mkdtemp(dir=output, prefix=".deepstruc-"))
        try:
            pdf = _validated(path, context["user_q"])
            work = scratch / "output"
            record = _write_input(work, name, path, pdf, result, **context)
            _move_into_place(work, output / name)
        except Exception as raised:  # recorded; the other inputs go on
            error = raised
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    if error is None:
        print(
            _summary_text(record, result.candidates, output / name),
            flush=True,
        )
        _show_warnings(result.warnings)
        return record
    text = _error_text(error)
    print(f"input: {path} failed", flush=True)
    _show_warnings(result.warnings)
    warnings.warn(f"{path} failed, the other inputs go on: {text}")
    return {
        "input": {
            "path": str(path),
            "header": _header(path, context["user_q"]),
        },
        "folder": name,
        "status": "failed",
        "error": text,
        "warnings": [str(w.message) for w in result.warnings],
        "summary": _summary_row(path, name, [], text),
    }


def _write_input(
    work: Path, name: str, path: Path, pdf, result, *, run, settings, **rest
) -> dict:
    """Write the results of one input into ``work``; return its record."""
    clock = time.perf_counter()
    work.mkdir(parents=True)
    candidates = result.candidates
    _write_results(candidates, pdf, rest["nets"], work)
    record = {
        "input": _input_record(path, pdf, rest["user_q"]),
        "element": _element_record(settings["element"], pdf, candidates),
        "folder": name,
        "status": "ok",
        "warnings": [str(w.message) for w in result.warnings],
        "n_candidates": len(candidates),
        "timings_s": {
            "solve": round(result.seconds, 3),
            "write": round(time.perf_counter() - clock, 3),
        },
        "summary": _summary_row(path, name, candidates),
    }
    _write_json(work / "run.json", {**run, **record, "complete": True})
    return record


def _summary_row(path: Path, name: str, candidates, error: str = "") -> dict:
    """One line of ``summary.csv`` (:data:`SUMMARY_COLUMNS`)."""
    row = dict.fromkeys(SUMMARY_COLUMNS, "")
    row.update(
        input=str(path),
        folder=name,
        status="failed" if error else "ok",
        error=error,
    )
    if not candidates:
        return row
    row.update(_row(candidates[0]))
    for column, other in zip(("second_best", "third_best"), candidates[1:3]):
        nearest = other.nearest_reference
        size = "-".join(str(s) for s in nearest.size)
        row[column] = (
            f"{nearest.type} {size}, {other.n_atoms} atoms, Rw {other.rw:.4g}"
        )
    return row


def _error_text(error: BaseException) -> str:
    """The type and message of an input's error, for the summary."""
    return f"{type(error).__name__}: {error}"


def _header(path: Path, user_q: dict) -> dict | None:
    """The numbers of a PDF file's header, or None if it cannot be read."""
    try:
        return _numbers(_validated(path, user_q).metadata)
    except (PDFInputError, OSError):
        return None


def _numbers(metadata: dict) -> dict:
    """The finite numbers of a header, which ``run.json`` can hold."""
    return {
        str(key): value
        for key, value in metadata.items()
        if isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    }


def _write_series_plot(path: Path, rows, records, key) -> None:
    """``summary.png``: the inputs against a header value or in order."""
    from diffpy.deepstruc.plotting import save

    headers = [record["input"].get("header") for record in records]
    axis = series_axis(headers, key)
    if axis is None and key is not None:
        warnings.warn(
            f"Not every input's header has a number under {key!r}; "
            f"{path.name} shows the inputs in the given order."
        )
    x, label = (None, None) if axis is None else (axis[1], axis[0])
    save(plot_series(rows, x, label), path)


def _show_warnings(caught) -> None:
    """Show the warnings that an input's task raised."""
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _remove(entry: Path) -> None:
    """Delete a file or a folder."""
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink()


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
        "header": _numbers(pdf.metadata),
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
    candidates: list[Candidate], pdf: PDFData, nets, folder: Path
) -> None:
    """Write the table, structures, fits and plots of one input.

    A latent map is drawn for each model of ``nets`` with its candidates
    (``latent_map.png``, or ``latent_map_<model>.png`` for several).
    """
    from diffpy.deepstruc.plotting import (
        plot_fit,
        plot_latent_map,
        plot_type_weights,
        save,
    )

    rows = [_row(c) for c in candidates]
    _write_csv(folder / "candidates.csv", CANDIDATE_COLUMNS, rows)
    if candidates and candidates[0].type_weights:
        best = candidates[0]
        rows = [
            {
                "type": name,
                "weight": f"{weight:.4g}",
                "best_rw": f"{best.type_rw[name]:.6g}",
            }
            for name, weight in best.type_weights.items()
        ]
        _write_csv(folder / "type_weights.csv", TYPE_COLUMNS, rows)
        save(plot_type_weights(best), folder / "type_weights.png")
    rows = [
        {"rank": c.rank, "step": k, **asdict(step), "rw": f"{step.rw:.6g}"}
        for c in candidates
        for k, step in enumerate(c.path)
    ]
    if rows:
        _write_csv(folder / "search_path.csv", PATH_COLUMNS, rows)
    for candidate in candidates:
        stem = folder / f"candidate_{candidate.rank:02d}"
        for suffix in STRUCTURE_SUFFIXES:
            candidate.write(stem.with_suffix(suffix))
        candidate.write_fit(stem.with_suffix(".fgr"))
    for candidate in candidates[:N_FIT_PLOTS]:
        save(plot_fit(candidate), folder / f"fit_{candidate.rank:02d}.png")
    features, _ = prior_input(pdf.r, pdf.g)
    for net in nets:
        mean, sigma = (a[0] for a in net.prior(features))
        fig = plot_latent_map(
            net.latent_map,
            prior_mean=mean,
            prior_sigma=sigma,
            sigma_multipliers=SIGMA_MULTIPLIERS,
            candidates=[c for c in candidates if c.model == net.name],
        )
        name = "latent_map" if len(nets) == 1 else f"latent_map_{net.name}"
        save(fig, folder / f"{name}.png")


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
    stacking = candidate.stacking
    return {
        "rank": candidate.rank,
        "rw": f"{candidate.rw:.6g}",
        "n_atoms": candidate.n_atoms,
        "type": candidate.type,
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
        "model": candidate.model,
        "label": candidate.label,
        "element": candidate.element,
        "flags": ";".join(candidate.flags),
        "type_weight": (
            f"{candidate.type_weights.get(candidate.type, 0.0):.4g}"
            if candidate.type_weights and candidate.type
            else ""
        ),
        "stacking": stacking.abc if stacking else "",
        "stacking_hc": stacking.hc if stacking else "",
        "strain": (
            " ".join(f"{e:+.4f}" for e in np.linalg.eigvalsh(candidate.strain))
            if candidate.strain is not None
            else ""
        ),
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
    if candidates and candidates[0].type_weights:
        weights = candidates[0].type_weights.items()
        lines += [
            "type weights: "
            + ", ".join(f"{name} {w:.2f}" for name, w in weights if w >= 0.01)
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
