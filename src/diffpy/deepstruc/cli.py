"""The ``deepstruc`` command-line tool.

Subcommands::

    deepstruc propose DATA.gr [DATA2.gr ...] -o OUTDIR   # solve structures
    deepstruc example -o OUTDIR                          # bundled Pt PDF
    deepstruc simulate CLUSTER.xyz -o OUT.gr             # Debye PDF
    deepstruc library [--type fcc] [-o library.csv]      # cluster library
"""

import argparse
import dataclasses
import sys
import warnings
from pathlib import Path

from diffpy.deepstruc.version import __version__


def _simulate(args) -> int:
    from ase.io import read

    from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf
    from diffpy.deepstruc.pdfdata import write_pdf

    params = DebyeParameters(
        **{
            f.name: getattr(args, f.name)
            for f in dataclasses.fields(DebyeParameters)
        }
    )
    try:
        atoms = read(args.cluster)
    except Exception as err:  # ASE raises many types for unreadable files
        raise SystemExit(f"deepstruc: cannot read {args.cluster}: {err}")
    r, g = simulate_pdf(atoms, params=params)
    header = {
        "source": f"diffpy.deepstruc {__version__} Debye PDF simulator",
        "cluster": str(args.cluster),
        "n_atoms": len(atoms),
        **dataclasses.asdict(params),
        "uiso": params.uiso,
    }
    write_pdf(args.output, r, g, header)
    print(f"wrote {args.output} ({len(r)} points, {len(atoms)} atoms)")
    return 0


def _library(args) -> int:
    from diffpy.deepstruc.clusters import enumerate_library, write_library_csv

    records = enumerate_library(args.type)
    write_library_csv(records, args.output or sys.stdout)
    if args.output:
        print(f"wrote {len(records)} clusters to {args.output}")
    return 0


def _propose(args) -> int:
    from diffpy.deepstruc.report import run_propose

    return run_propose(
        args.data,
        args.output,
        force=args.force,
        model=args.model,
        top=args.top,
        n_samples=args.samples,
        seed=args.seed,
        qmax=args.qmax,
        qdamp=args.qdamp,
        element=args.element,
    )


def _example(args) -> int:
    from diffpy.deepstruc.report import example_pdf

    args.data = [example_pdf()]
    return _propose(args)


def _add_propose_options(parser):
    parser.add_argument(
        "-o", "--output", required=True, type=Path, help="output folder"
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite the output folder"
    )
    parser.add_argument("--model", default="mmnp", help="model name or folder")
    parser.add_argument("--top", type=int, default=10, help="candidates kept")
    parser.add_argument(
        "--samples", type=int, default=1000, help="latent samples"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--qmax", type=float, help="Qmax (Å⁻¹), else header")
    parser.add_argument("--qdamp", type=float, help="qdamp (Å⁻¹), else header")
    parser.add_argument("--element", help="element of the atoms")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``deepstruc`` command."""
    from diffpy.deepstruc.debye import DebyeParameters

    parser = argparse.ArgumentParser(
        prog="deepstruc",
        description="Propose nanoparticle structures from a PDF G(r).",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    propose = commands.add_parser(
        "propose", help="propose candidate structures for PDF files"
    )
    propose.add_argument("data", nargs="+", type=Path, help="PDF files")
    _add_propose_options(propose)
    propose.set_defaults(run=_propose)

    example = commands.add_parser(
        "example", help="propose structures for the bundled Pt example PDF"
    )
    _add_propose_options(example)
    example.set_defaults(run=_example)

    simulate = commands.add_parser(
        "simulate", help="Debye PDF of a cluster file (xyz or any ASE format)"
    )
    simulate.add_argument("cluster", type=Path, help="cluster file")
    simulate.add_argument(
        "-o", "--output", required=True, type=Path, help="output .gr file"
    )
    defaults = DebyeParameters()
    for f in dataclasses.fields(DebyeParameters):
        simulate.add_argument(
            f"--{f.name}",
            type=float,
            default=getattr(defaults, f.name),
            help=f"default {getattr(defaults, f.name)}",
        )
    simulate.set_defaults(run=_simulate)

    library = commands.add_parser(
        "library", help="list the MMNP cluster library as CSV"
    )
    library.add_argument("--type", action="append", help="keep this type")
    library.add_argument("-o", "--output", type=Path, help="CSV file")
    library.set_defaults(run=_library)
    return parser


def main(argv=None) -> int:
    """Run the ``deepstruc`` command."""
    from diffpy.deepstruc.model import ModelFileError
    from diffpy.deepstruc.pdfdata import PDFInputError, PDFInputWarning

    args = build_parser().parse_args(argv)
    warnings.simplefilter("always", PDFInputWarning)
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
    try:
        return args.run(args)
    except (
        PDFInputError,
        ValueError,
        FileExistsError,
        ModelFileError,
    ) as err:
        print(f"deepstruc: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
