"""Shared fixtures and optional-dependency detection for the tests."""

import importlib.util
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTDATA = Path(__file__).resolve().parent / "testdata"
REFERENCE_DIR = TESTDATA / "reference"
EXPERIMENTAL_DIR = REPO_ROOT.parent / "shared" / "data" / "experimental"

HAS_SRREAL = importlib.util.find_spec("diffpy.srreal") is not None

needs_srreal = pytest.mark.skipif(
    not HAS_SRREAL,
    reason="diffpy.srreal (optional backend) is not installed; get it "
    "with 'conda install -c conda-forge diffpy.srreal'",
)


@pytest.fixture(scope="session")
def reference_dir():
    """Folder of the srreal-computed reference PDFs (tests/testdata)."""
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def experimental_dir():
    """Folder of measured Pt nanoparticle PDFs, or skip without it."""
    if not EXPERIMENTAL_DIR.is_dir():
        pytest.skip(
            f"the measured PDFs JQ_S1-3.gr are not in {EXPERIMENTAL_DIR}; "
            "copy them there from data/PDFs_experimental of "
            "https://github.com/EmilSkaaning/DeepStruc"
        )
    return EXPERIMENTAL_DIR
