"""Sphinx configuration of the diffpy.deepstruc documentation."""

import inspect
import sys
from pathlib import Path

import numpy as np

# Build from the source tree when the package is not installed.
SOURCE = Path(__file__).resolve().parents[2] / "src"
if str(SOURCE) not in sys.path:
    sys.path.insert(0, str(SOURCE))

from diffpy.deepstruc.version import __version__  # noqa: E402

# -- Project ---------------------------------------------------------------

project = "diffpy.deepstruc"
copyright = "2026, The diffpy.deepstruc developers"
author = "The diffpy.deepstruc developers"
version = ".".join(__version__.split(".")[:2])
release = __version__

# -- General ---------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]
exclude_patterns = ["_build", "_inventories"]
nitpicky = True
default_role = "py:obj"

# -- autodoc and napoleon --------------------------------------------------

# Heavy or optional libraries are not needed to read the docstrings.
autodoc_mock_imports = [
    "torch",
    "onnxruntime",
    "onnx",
    "diffpy.srfit",
    "diffpy.srreal",
    "diffpy.structure",
    "diffpy.utils",
    "ase",
    "matplotlib",
    "entrypoints",
    "scipy",
]
autodoc_member_order = "bysource"
# The numpydoc sections carry the types; signatures stay short.
autodoc_typehints = "none"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_preprocess_types = True
# Words of the numpydoc type vocabulary that are not class names.
napoleon_type_aliases = {
    "array_like": ":data:`array_like <numpy.typing.ArrayLike>`",
    "path-like": ":class:`path-like <os.PathLike>`",
    "sequence": ":class:`sequence <collections.abc.Sequence>`",
    "iterable": ":class:`iterable <collections.abc.Iterable>`",
    "iterator": ":class:`iterator <collections.abc.Iterator>`",
    "callable": ":class:`callable <collections.abc.Callable>`",
    "text file": ":class:`text file <io.TextIOBase>`",
    # Classes named without their module in other modules' docstrings.
    "Candidate": ":class:`~diffpy.deepstruc.candidate.Candidate`",
    "DebyeParameters": ":class:`~diffpy.deepstruc.debye.DebyeParameters`",
    "PairHistogram": ":class:`~diffpy.deepstruc.debye.PairHistogram`",
    "PairVectors": ":class:`~diffpy.deepstruc.debye.PairVectors`",
    "PDFData": ":class:`~diffpy.deepstruc.pdfdata.PDFData`",
    "Library": ":class:`~diffpy.deepstruc.libraries.Library`",
    "LibraryEntry": ":class:`~diffpy.deepstruc.libraries.LibraryEntry`",
}
# Long module-level arrays (grids) are shown abbreviated.
np.set_printoptions(threshold=10, edgeitems=3)

# -- intersphinx -----------------------------------------------------------

# Each project's online inventory is tried first; the small inventories in
# _inventories/ (plain-text, version 1 format) list the names these pages
# use, so that an offline build resolves them to the same pages.
_INVENTORIES = Path(__file__).parent / "_inventories"
intersphinx_mapping = {
    "python": (
        "https://docs.python.org/3",
        (None, str(_INVENTORIES / "python.inv")),
    ),
    "numpy": (
        "https://numpy.org/doc/stable",
        (None, str(_INVENTORIES / "numpy.inv")),
    ),
    "scipy": (
        "https://docs.scipy.org/doc/scipy",
        (None, str(_INVENTORIES / "scipy.inv")),
    ),
}
intersphinx_timeout = 10

nitpick_ignore = [
    # Types of optional libraries that have no intersphinx inventory here.
    ("py:class", "ase.Atoms"),
    ("py:obj", "ase.Atoms"),
    ("py:class", "diffpy.structure.Structure"),
    ("py:class", "DiffractionObject"),
    ("py:class", "diffpy.srfit.fitbase.FitRecipe"),
    ("py:class", "FitRecipe"),
    ("py:class", "matplotlib.axes.Axes"),
    ("py:class", "matplotlib.figure.Figure"),
]

# -- HTML ------------------------------------------------------------------

try:
    import sphinx_rtd_theme  # noqa: F401

    html_theme = "sphinx_rtd_theme"
except ImportError:
    html_theme = "alabaster"
html_title = f"diffpy.deepstruc {release}"


# -- Signatures of classes with a mocked base class --------------------------


def _signature_from_init(app, what, name, obj, options, signature, ret):
    """Show ``__init__``'s parameters for classes with a mocked base.

    A class that derives from a mocked class (diffpy.srfit's
    ``ProfileGenerator``) inherits the mock's ``__new__``, so autodoc
    would show ``(*args, **kwargs)``.
    """
    if what != "class" or signature != "(*args, **kwargs)":
        return None
    init = vars(obj).get("__init__")
    if init is None:
        return None
    parameters = list(inspect.signature(init).parameters.values())[1:]
    plain = [p.replace(annotation=inspect.Parameter.empty) for p in parameters]
    return str(inspect.Signature(plain)), ret


def setup(app):
    app.connect("autodoc-process-signature", _signature_from_init)
