"""Definition of __version__."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("diffpy.deepstruc")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"
