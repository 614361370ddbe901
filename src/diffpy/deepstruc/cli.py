"""The ``deepstruc`` command-line tool.

Subcommands::

    deepstruc propose DATA.gr [DATA2.gr ...] -o OUTDIR   # solve structures
    deepstruc example [-o OUTDIR]                        # bundled Pt PDF
    deepstruc mine DATA.gr [...] -o OUTDIR [--library L] # fit a library
    deepstruc solve DATA.gr [...] -o OUTDIR              # site search
    deepstruc simulate CLUSTER.xyz -o OUT.gr             # Debye PDF
    deepstruc library [--type fcc | --set stacking] [-o library.csv]

``propose``, ``mine`` and ``solve`` take many inputs: files, shell
patterns that the shell left alone (``'data/*.gr'``) and
``--files-from LIST``; with ``--scheduler local:N`` or ``--scheduler
tcp://host:8786`` they run on Dask (:mod:`diffpy.deepstruc.batch`).  A
run on several inputs keeps going past a failing input and resumes in
the same output folder (:mod:`diffpy.deepstruc.report`).

Exit status (:data:`EXIT_CODES`): 0 on success, 1 when the data, a file
or the model cannot be used (the message says why) or when any input of
several failed, 2 for a wrong command line, 130 when interrupted and 141
when the reader of the output went away (``deepstruc library | head``),
as for other Unix tools.  Errors are printed as ``deepstruc: error:
...`` and warnings as ``deepstruc: warning: ...`` on standard error.
"""

import argparse
import dataclasses
import glob
import os
import re
import shlex
import sys
import warnings
from pathlib import Path

from diffpy.deepstruc.version import __version__

#: Exit status of each outcome.
EXIT_CODES = {
    "success": 0,
    "error": 1,
    "usage": 2,
    "interrupted": 130,
    "broken pipe": 141,
}
#: Keywords that warnings and errors may suggest, as Python arguments.
_OPTIONS = ("qmax", "qmin", "qdamp", "element", "rmin", "rmax")
_PYTHON_ADVICE = re.compile(
    rf"\b({'|'.join(_OPTIONS)})=(?:'([^']*)'|(\.\.\.|[^\s,)]+))"
)
#: Units of the Debye parameters, for the help of ``simulate``.
_UNITS = {
    "qmin": "Å⁻¹",
    "qmax": "Å⁻¹",
    "qdamp": "Å⁻¹",
    "delta2": "Å²",
    "biso": "Å²",
    "rmin": "Å",
    "rmax": "Å",
    "rstep": "Å",
}
#: Default output folder of ``deepstruc example``.
EXAMPLE_OUTPUT = Path("deepstruc-example")
#: ``deepstruc solve --strain`` values: solve_structure's strain.
SOLVE_STRAIN = {"off": False, "auto": "auto", "on": True}


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help with every set default shown, text kept as written."""

    def _get_help_string(self, action) -> str:
        text = action.help or ""
        if (
            action.option_strings
            and action.default is not None
            and action.default is not False
            and action.default != argparse.SUPPRESS
            and "default" not in text
        ):
            text += " (default: %(default)s)"
        return text


def command_line_words(text: str) -> str:
    """Rewrite Python keyword advice (``qmax=25``) as options (``--qmax 25``).

    Parameters
    ----------
    text : str
        A warning or error message.

    Returns
    -------
    str
        The message with ``name=value`` of the options qmax, qmin,
        qdamp, element, rmin and rmax written as ``--name value``.
    """
    return _PYTHON_ADVICE.sub(
        lambda m: f"--{m[1]} {m[2] if m[2] is not None else m[3]}", text
    )


def _simulate(args) -> int:
    from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf
    from diffpy.deepstruc.libraries import read_frames
    from diffpy.deepstruc.pdfdata import write_pdf

    params = DebyeParameters(
        **{
            f.name: getattr(args, f.name)
            for f in dataclasses.fields(DebyeParameters)
        }
    )
    xyz = read_frames(args.cluster)[-1]  # ASE's default: the last frame
    r, g = simulate_pdf(xyz, params=params)
    header = {
        "source": f"diffpy.deepstruc {__version__} Debye PDF simulator",
        "cluster": str(args.cluster),
        "n_atoms": len(xyz),
        **dataclasses.asdict(params),
        "uiso": params.uiso,
    }
    write_pdf(args.output, r, g, header)
    print(f"wrote {args.output} ({len(r)} points, {len(xyz)} atoms)")
    return 0


def _library(args) -> int:
    from diffpy.deepstruc.clusters import enumerate_library, write_library_csv
    from diffpy.deepstruc.stacking import (
        stacking_particles,
        write_stacking_csv,
    )

    if args.set == "stacking":
        if args.type:
            raise ValueError(
                "--type selects MMNP types; the stacking set has the kinds "
                "fcc, hcp and faulted in its 'kind' column."
            )
        records = stacking_particles()
        write_stacking_csv(records, args.output or sys.stdout)
    else:
        records = enumerate_library(args.type)
        write_library_csv(records, args.output or sys.stdout)
    if args.output:
        print(f"wrote {len(records)} clusters to {args.output}")
    return 0


def input_files(
    words: list[str], files_from: str | os.PathLike | None = None
) -> list[Path]:
    """The input files named on the command line and in a list file.

    Parameters
    ----------
    words : list of str
        Paths and shell patterns (``*``, ``?``, ``[...]``, ``**``) that
        the shell did not expand, e.g. because they were quoted; a word
        that names an existing file is taken as it is.
    files_from : str or os.PathLike, optional
        A text file with one path or pattern per line (``-`` for
        standard input); blank lines and lines starting with ``#`` are
        skipped, and relative paths are taken from the file's folder (the
        working folder for standard input).  Its inputs follow ``words``.

    Returns
    -------
    list of pathlib.Path
        The inputs, each pattern's matches sorted.

    Raises
    ------
    ValueError
        When a pattern matches no file or the list names no file.
    OSError
        When the list file cannot be read.
    """
    paths = [p for word in words for p in _expanded(word)]
    if files_from is None:
        return paths
    if str(files_from) == "-":
        lines, folder = sys.stdin.read().splitlines(), Path()
    else:
        lines = Path(files_from).read_text(encoding="utf-8").splitlines()
        folder = Path(files_from).parent
    listed = [line.strip() for line in lines]
    listed = [line for line in listed if line and not line.startswith("#")]
    if not listed:
        raise ValueError(f"The list {files_from} names no files.")
    return paths + [p for line in listed for p in _expanded(line, folder)]


def _expanded(word: str, folder: Path = Path()) -> list[Path]:
    """A path, or the sorted matches of a shell pattern, from ``folder``."""
    path = folder / Path(word).expanduser()
    if path.exists() or not any(c in str(word) for c in "*?["):
        return [path]
    matches = sorted(
        m for m in glob.glob(str(path), recursive=True) if os.path.isfile(m)
    )
    if not matches:
        raise ValueError(f"No file matches the pattern {str(path)!r}.")
    return [Path(m) for m in matches]


def _propose(args) -> int:
    from diffpy.deepstruc.report import run_propose

    return run_propose(
        input_files(args.data, args.files_from),
        args.output,
        force=args.force,
        model=args.model,
        top=args.top,
        n_samples=args.samples,
        seed=args.seed,
        qmax=args.qmax,
        qmin=args.qmin,
        qdamp=args.qdamp,
        element=args.element,
        search=not args.no_search,
        snap=not args.no_snap,
        fit_range=(args.rmin, args.rmax),
        noise=args.noise,
        strain=args.strain,
        command=args.command_line,
        scheduler=args.scheduler,
        series_key=args.series_key,
    )


def _solve(args) -> int:
    from diffpy.deepstruc.report import run_solve

    return run_solve(
        input_files(args.data, args.files_from),
        args.output,
        force=args.force,
        model=args.model,
        top=args.top,
        seed=args.seed,
        max_atoms=args.max_atoms,
        n_starts=args.starts,
        qmax=args.qmax,
        qmin=args.qmin,
        qdamp=args.qdamp,
        element=args.element,
        fit_range=(args.rmin, args.rmax),
        noise=args.noise,
        strain=SOLVE_STRAIN[args.strain],
        command=args.command_line,
        scheduler=args.scheduler,
        series_key=args.series_key,
    )


def _mine(args) -> int:
    from diffpy.deepstruc.report import run_mine

    return run_mine(
        input_files(args.data, args.files_from),
        args.output,
        force=args.force,
        library=args.library,
        top=args.top,
        qmax=args.qmax,
        qmin=args.qmin,
        qdamp=args.qdamp,
        element=args.element,
        fit_range=(args.rmin, args.rmax),
        noise=args.noise,
        strain=args.strain,
        command=args.command_line,
        scheduler=args.scheduler,
        series_key=args.series_key,
    )


def _free_folder(folder: Path) -> Path:
    """``folder``, or ``folder-2``, ``folder-3``, ... if it holds files."""
    candidate, k = folder, 1
    while candidate.exists() and (
        not candidate.is_dir() or any(candidate.iterdir())
    ):
        k += 1
        candidate = folder.with_name(f"{folder.name}-{k}")
    return candidate


def _example(args) -> int:
    from diffpy.deepstruc.report import example_pdf

    args.data = [example_pdf()]
    if args.output is None:
        args.output = EXAMPLE_OUTPUT
        if not args.force:
            args.output = _free_folder(EXAMPLE_OUTPUT)
            if args.output != EXAMPLE_OUTPUT:
                print(
                    f"note: {EXAMPLE_OUTPUT} exists, writing to "
                    f"{args.output} instead"
                )
    return _propose(args)


def _add_fit_options(
    parser, *, example: bool = False, top: int = 10, strain: bool = True
) -> None:
    """Options shared by ``propose``, ``example``, ``mine`` and ``solve``
    (``solve`` has its own ``--strain``: ``strain=False``)."""
    from diffpy.deepstruc.propose import FIT_RANGE

    if example:
        parser.add_argument(
            "-o",
            "--output",
            type=Path,
            help=f"output folder (default: {EXAMPLE_OUTPUT}, or "
            f"{EXAMPLE_OUTPUT}-2, -3, ... if that holds results)",
        )
    else:
        parser.add_argument(
            "-o", "--output", required=True, type=Path, help="output folder"
        )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace the output folder if it holds results",
    )
    parser.add_argument(
        "--top", type=int, default=top, help="number of candidates kept"
    )
    parser.add_argument(
        "--qmax", type=float, help="Qmax in Å⁻¹ (default: file header)"
    )
    parser.add_argument(
        "--qmin", type=float, help="Qmin in Å⁻¹ (default: file header)"
    )
    parser.add_argument(
        "--qdamp",
        type=float,
        help="Q-resolution damping in Å⁻¹, e.g. from a calibrant "
        "(default: file header, else the model's 0.04)",
    )
    parser.add_argument(
        "--element",
        help="element of the atoms, e.g. Pt (default: the file's "
        "composition)",
    )
    parser.add_argument(
        "--rmin", type=float, default=FIT_RANGE[0], help="fit from r in Å"
    )
    parser.add_argument(
        "--rmax", type=float, default=FIT_RANGE[1], help="fit up to r in Å"
    )
    parser.add_argument(
        "--noise",
        type=float,
        help="standard deviation of the noise of G in Å⁻², for the type "
        "weights (default: estimated from the fit residual beyond the "
        "particle)",
    )
    if strain:
        parser.add_argument(
            "--strain",
            action="store_true",
            help="fit a homogeneous strain of the particles too, kept "
            "where the data support it (slower), for particles strained "
            "unevenly",
        )


def _add_model_options(parser) -> None:
    """``--model`` and ``--seed``, of ``propose``, ``example``, ``solve``."""
    parser.add_argument(
        "--model",
        default="mmnp",
        help="shipped model (mmnp: seven structure types; stacking: fcc, "
        "hcp and stacking-faulted close-packed particles), a model folder, "
        "or auto: every shipped model, all candidates ranked together "
        "(default: mmnp)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the latent sampling (same seed, same results)",
    )


def _add_propose_options(parser, *, example: bool = False) -> None:
    """Options of ``propose`` and ``example``."""
    _add_fit_options(parser, example=example)
    _add_model_options(parser)
    parser.add_argument(
        "--samples",
        type=int,
        default=1000,
        help="latent points drawn around the prior mean",
    )
    parser.add_argument(
        "--no-search",
        action="store_true",
        help="decode only around the prior mean, no latent-plane search",
    )
    parser.add_argument(
        "--no-snap",
        action="store_true",
        help="do not rank the training library's shapes with the decodes",
    )


def _scheduler(text: str) -> str:
    """Check a ``--scheduler`` value (a usage error if it is bad)."""
    from diffpy.deepstruc.batch import local_workers

    try:
        local_workers(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _add_input_options(parser) -> None:
    """Inputs and batch options of ``propose``, ``mine`` and ``solve``."""
    parser.add_argument(
        "data",
        nargs="*",
        metavar="FILE",
        help="PDF files (.gr, .fgr, columns) or quoted shell patterns "
        "such as 'data/*.gr'",
    )
    parser.add_argument(
        "--files-from",
        metavar="LIST",
        help="text file with one PDF file or pattern per line, relative "
        "to its folder ('-': standard input)",
    )
    parser.add_argument(
        "--scheduler",
        type=_scheduler,
        help="run on Dask: 'local:N' for N local worker processes, or the "
        "address of a running scheduler such as tcp://host:8786 (needs "
        "the dask extra: pip install 'diffpy.deepstruc[dask]')",
    )
    parser.add_argument(
        "--series-key",
        metavar="KEY",
        help="header key that orders the inputs in summary.png (default: "
        "temperature, temp or T when every file has it, else input order)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``deepstruc`` command."""
    from diffpy.deepstruc.clusters import CLUSTER_TYPES
    from diffpy.deepstruc.debye import DebyeParameters

    parser = argparse.ArgumentParser(
        prog="deepstruc",
        description="Propose nanoparticle structures from a PDF G(r).",
        epilog="exit status: 0 success, 1 unusable data, file or model, or "
        "any input of several failed, 2 wrong command line, 130 "
        "interrupted, 141 output pipe closed",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND"
    )

    propose = commands.add_parser(
        "propose",
        help="propose candidate structures for PDF files",
        formatter_class=_Formatter,
    )
    _add_input_options(propose)
    _add_propose_options(propose)
    propose.set_defaults(run=_propose)

    example = commands.add_parser(
        "example",
        help="propose structures for the bundled Pt example PDF",
        formatter_class=_Formatter,
    )
    _add_propose_options(example, example=True)
    example.set_defaults(
        run=_example, files_from=None, scheduler=None, series_key=None
    )

    mine = commands.add_parser(
        "mine",
        help="fit every cluster of a library to PDF files",
        formatter_class=_Formatter,
    )
    _add_input_options(mine)
    _add_fit_options(mine)
    mine.add_argument(
        "--library",
        default="mmnp",
        help="'mmnp' (the 197 training shapes), 'large' (ASE clusters up "
        "to 2500 atoms), a folder of structure files or an ASE .db file",
    )
    mine.set_defaults(run=_mine)

    solve = commands.add_parser(
        "solve",
        help="solve structures: site searches from the best proposals",
        formatter_class=_Formatter,
    )
    _add_input_options(solve)
    _add_fit_options(solve, top=5, strain=False)
    _add_model_options(solve)
    solve.add_argument(
        "--max-atoms",
        type=int,
        default=200,
        help="most atoms of a solution; above 200 the 'large' library's "
        "best clusters are starts too",
    )
    solve.add_argument(
        "--starts",
        type=int,
        default=3,
        help="best proposals of a known structure family searched",
    )
    solve.add_argument(
        "--strain",
        nargs="?",
        choices=tuple(SOLVE_STRAIN),
        const="on",
        default="auto",
        help="fit a homogeneous strain, for particles strained unevenly: "
        "auto (default) starts from the proposals refitted with one "
        "where the data support it, and searches a start with one when "
        "it fits clearly better; "
        "on (the option alone) searches every start with and without one "
        "(slower); off: no strain",
    )
    solve.set_defaults(run=_solve)

    simulate = commands.add_parser(
        "simulate",
        help="Debye PDF of a cluster file (xyz, cif, pdb, stru, ...)",
        formatter_class=_Formatter,
    )
    simulate.add_argument("cluster", type=Path, help="structure file")
    simulate.add_argument(
        "-o", "--output", required=True, type=Path, help="output .gr file"
    )
    defaults = DebyeParameters()
    for f in dataclasses.fields(DebyeParameters):
        simulate.add_argument(
            f"--{f.name}",
            type=float,
            default=getattr(defaults, f.name),
            help=f"{f.name} in {_UNITS[f.name]}",
        )
    simulate.set_defaults(run=_simulate)

    library = commands.add_parser(
        "library",
        help="list the MMNP cluster library (or the stacking set) as CSV",
        formatter_class=_Formatter,
    )
    library.add_argument(
        "--set",
        choices=("mmnp", "stacking"),
        default="mmnp",
        help="the MMNP clusters, or the close-packed particles of the "
        "stacking set (layer sequences, see the docs)",
    )
    library.add_argument(
        "--type",
        action="append",
        choices=CLUSTER_TYPES,
        help="keep this type (repeat for several; default: all)",
    )
    library.add_argument(
        "-o", "--output", type=Path, help="CSV file (default: standard output)"
    )
    library.set_defaults(run=_library)
    return parser


def _show_warning(message, *args, **kwargs) -> None:
    text = command_line_words(str(message))
    print(f"deepstruc: warning: {text}", file=sys.stderr)


def _error(message: str) -> int:
    print(f"deepstruc: error: {command_line_words(message)}", file=sys.stderr)
    return EXIT_CODES["error"]


def main(argv=None) -> int:
    """Run the ``deepstruc`` command.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The exit status (:data:`EXIT_CODES`).
    """
    from diffpy.deepstruc.batch import SchedulerError
    from diffpy.deepstruc.model import ModelFileError

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("propose", "mine", "solve") and not (
        args.data or args.files_from
    ):
        parser.error(
            f"{args.command}: please give PDF files or --files-from LIST"
        )
    args.command_line = shlex.join(["deepstruc", *argv])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", UserWarning)
            warnings.showwarning = _show_warning
            status = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except (ValueError, OSError, ModelFileError, SchedulerError) as err:
        # PDFInputError is a ValueError; FileExistsError an OSError
        if isinstance(err, BrokenPipeError):
            return _closed_pipe()
        return _error(str(err))
    except KeyboardInterrupt:
        print("deepstruc: interrupted", file=sys.stderr)
        return EXIT_CODES["interrupted"]


def _closed_pipe() -> int:
    """Silence the rest of the output after the reader went away."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file (captured)
        pass
    return EXIT_CODES["broken pipe"]


if __name__ == "__main__":
    sys.exit(main())
