"""Shared fixtures and optional-dependency detection for the tests."""

import importlib.util
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
REFERENCE_DIR = SHARED / "data" / "reference"
EXPERIMENTAL_DIR = SHARED / "data" / "experimental"

HAS_SRREAL = importlib.util.find_spec("diffpy.srreal") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None

needs_srreal = pytest.mark.skipif(
    not HAS_SRREAL, reason="diffpy.srreal is not installed (optional backend)"
)
needs_torch = pytest.mark.skipif(
    not HAS_TORCH, reason="torch is not installed (training extra)"
)


@pytest.fixture(scope="session")
def reference_dir():
    """Folder of srreal-computed reference PDFs, or skip without it."""
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f"{REFERENCE_DIR} is absent (a user's clone has none)")
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def experimental_dir():
    """Folder of measured Pt nanoparticle PDFs, or skip without it."""
    if not EXPERIMENTAL_DIR.is_dir():
        pytest.skip(f"{EXPERIMENTAL_DIR} is absent (a user's clone has none)")
    return EXPERIMENTAL_DIR
