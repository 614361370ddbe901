#!/usr/bin/env python
##############################################################################
#
# (c) 2026 The diffpy.deepstruc developers.
# All rights reserved.
#
# See LICENSE.rst for license information.
#
##############################################################################
"""Propose nanoparticle structures from a PDF with a graph CVAE.

The public names are imported lazily so that ``import diffpy.deepstruc``
stays fast and never pulls in heavy optional libraries.
"""

from importlib import import_module

from diffpy.deepstruc.version import __version__  # noqa: F401

_PUBLIC = {
    "propose_structures": "diffpy.deepstruc.propose",
    "mine_library": "diffpy.deepstruc.mining",
    "solve_structure": "diffpy.deepstruc.solve",
    "propose_many": "diffpy.deepstruc.batch",
    "mine_many": "diffpy.deepstruc.batch",
    "map_pdfs": "diffpy.deepstruc.batch",
    "Candidate": "diffpy.deepstruc.candidate",
    "load_pdf": "diffpy.deepstruc.pdfdata",
    "PDFData": "diffpy.deepstruc.pdfdata",
    "PDFInputError": "diffpy.deepstruc.pdfdata",
    "PDFInputWarning": "diffpy.deepstruc.pdfdata",
    "simulate_pdf": "diffpy.deepstruc.debye",
    "DebyeParameters": "diffpy.deepstruc.debye",
    "enumerate_library": "diffpy.deepstruc.clusters",
    "example_pdf": "diffpy.deepstruc.report",
    "FitQualityWarning": "diffpy.deepstruc.plausibility",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(
        f"module 'diffpy.deepstruc' has no attribute {name!r}"
    )


def __dir__():
    return sorted(list(globals()) + __all__)
