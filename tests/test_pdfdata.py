"""Tests for reading, validating and resampling PDFs (pdfdata.py)."""

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffpy.deepstruc.pdfdata import (
    DEFAULT_QMAX,
    MODEL_R_GRID,
    PDFData,
    PDFInputError,
    PDFInputWarning,
    load_pdf,
    resample,
    write_pdf,
)

TESTDATA = Path(__file__).parent / "testdata"
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(64))


def good_arrays(rmax=30.0, rstep=0.01, rmin=0.0):
    """Return a plausible (r, G) pair with a uniform grid."""
    per_angstrom = round(1 / rstep)
    r = np.arange(round(rmin * per_angstrom), round(rmax * per_angstrom) + 1)
    r = r / per_angstrom
    g = np.sin(2.3 * r) * np.exp(-r / 8.0) * r
    return r, g


def table(r, g, header=""):
    """Return the text of a two-column file with an optional header."""
    rows = "".join(f"{float(x)!r} {float(y)!r}\n" for x, y in zip(r, g))
    return header + rows


def good_table(header="qmax = 25.0\n", **kwargs):
    """Return the text of a good_arrays file with a header."""
    return table(*good_arrays(**kwargs), header=header)


def flawed_table(array, index, value):
    """Return a good table with ``array`` ("r" or "g") changed at index."""
    r, g = good_arrays()
    {"r": r, "g": g}[array][index] = value
    return table(r, g, header="qmax = 25.0\n")


@pytest.fixture
def no_warnings():
    """Turn every warning into an error inside the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---------------------------------------------------------------- files


def test_read_experimental_xpdfsuite_file(experimental_dir, no_warnings):
    pdf = load_pdf(experimental_dir / "JQ_S1.gr")
    assert pdf.qmax == pytest.approx(22.0, abs=0.01)
    assert pdf.qmin == 1.0
    assert pdf.qdamp is None
    assert pdf.composition == "Pt"
    assert pdf.rmin == 0.0
    assert pdf.rmax == pytest.approx(50.0)
    assert pdf.rstep == pytest.approx(0.01)
    assert pdf.r.size == 5001
    assert pdf.g[1] == pytest.approx(0.00144704)
    assert pdf.metadata["inputfile"] == "JQ_S1.chi"
    assert pdf.source.endswith("JQ_S1.gr")


def test_read_reference_file(reference_dir, no_warnings):
    pdf = load_pdf(str(reference_dir / "pt_fcc_232.gr"))
    assert (pdf.qmax, pdf.qmin, pdf.qdamp) == (25.0, 0.7, 0.04)
    assert pdf.composition == "Pt"  # from the "element" header key
    assert pdf.metadata["name"] == "pt_fcc_232"
    assert (pdf.r.size, pdf.rmax) == (3000, 29.99)
    # the reference grid contains the model grid point for point
    np.testing.assert_array_equal(resample(pdf), pdf.g[200:])


def test_read_small_pdfgetx3_file(no_warnings):
    pdf = load_pdf(TESTDATA / "pt_small_pdfgetx3.gr")
    assert (pdf.qmax, pdf.qmin, pdf.composition) == (24.0, 0.8, "Pt")
    assert pdf.metadata["version"] == "pdfgetx3-2.1.1"
    assert (pdf.rmin, pdf.rmax, pdf.r.size) == (0.0, 12.0, 241)
    assert pdf.rstep == pytest.approx(0.05)
    assert 2.7 < pdf.r[np.argmax(pdf.g)] < 2.8


def test_read_plain_columns_with_comments(tmp_path, no_warnings):
    r, g = good_arrays()
    text = "# my sample\n# r G dr dG\n" + "".join(
        f"{x:.2f}  {y:.6f}  0.0  0.01\n" for x, y in zip(r, g)
    )
    path = tmp_path / "plain.dat"
    path.write_text(text)
    pdf = load_pdf(path, qmax=25.0, qdamp=0.04)
    np.testing.assert_allclose(pdf.g, g, atol=1e-6)
    assert (pdf.qmax, pdf.qdamp, pdf.composition) == (25.0, 0.04, None)
    assert pdf.metadata == {}


def test_write_pdf_round_trip(tmp_path, no_warnings):
    r, g = good_arrays()
    header = {"qmax": 25.0, "qdamp": 0.04, "composition": "Pt", "qmin": None}
    header["source"] = "deepstruc simulate"
    path = tmp_path / "sim.gr"
    write_pdf(path, r, g, header)
    pdf = load_pdf(path)
    np.testing.assert_array_equal(pdf.r, r)
    np.testing.assert_array_equal(pdf.g, g)
    assert (pdf.qmax, pdf.qdamp, pdf.qmin) == (25.0, 0.04, None)
    assert pdf.composition == "Pt"
    assert pdf.metadata["source"] == "deepstruc simulate"
    assert "qmin" not in pdf.metadata


@pytest.mark.parametrize(
    "r, g, header",
    [
        # C1: r and g of different lengths, expect ValueError
        (np.arange(5.0), np.arange(4.0), {}),
        # C2: a key with "=", expect ValueError
        (np.arange(5.0), np.arange(5.0), {"a=b": 1}),
        # C3: a value with a line break, expect ValueError
        (np.arange(5.0), np.arange(5.0), {"note": "two\nlines"}),
    ],
)
def test_write_pdf_refuses(tmp_path, r, g, header):
    with pytest.raises(ValueError, match="Please"):
        write_pdf(tmp_path / "bad.gr", r, g, header)


# ------------------------------------------------------ file errors


@pytest.mark.parametrize(
    "content, message",
    [
        # C1: empty file, expect "is empty"
        (b"", "is empty"),
        # C2: only blank lines, expect "is empty"
        (b"\n  \n\t\n", "is empty"),
        # C3: PNG image, expect "does not look like a text PDF file"
        (PNG_BYTES, "does not look like a text PDF file"),
        # C4: random bytes, expect "does not look like a text PDF file"
        (
            np.random.default_rng(0).bytes(500),
            "does not look like a text PDF file",
        ),
        # C5: Latin-1 text, not UTF-8, expect "does not look like a text"
        (b"# \xc5ngstr\xf6m\n" + good_table().encode(), "not look like"),
        # C6: header only, expect "no columns of numbers"
        (b"[PDF]\nqmax = 25\ncomposition = Pt\n", "no columns of numbers"),
        # C7: one column, expect "only one column"
        ("".join(f"{i}\n" for i in range(50)).encode(), "only one column"),
        # C8: one short column, expect "only one column"
        (b"1\n2\n3\n", "only one column"),
        # C9: five rows, expect "only 5 rows"
        (table(range(5), range(5)).encode(), "only 5 rows"),
        # C10: five rows, then text, expect "only 5 rows"
        (table(range(5), range(5), "#\n").encode() + b"end\n", "only 5 rows"),
        # C11: rows alternate 2 and 3 columns, expect "no block"
        (
            b"".join(b"%d 1\n%d 1 1\n" % (i, i + 1) for i in range(40)),
            "no block",
        ),
        # C12: text after the data, expect "cannot be read"
        (good_table().encode() + b"end of data\n", "cannot be read"),
        # C13: NaN in G, expect "NaN or infinite"
        (flawed_table("g", 50, np.nan).encode(), "G contains 1 NaN or inf"),
        # C14: inf in r, expect "NaN or infinite"
        (flawed_table("r", 50, np.inf).encode(), "r contains 1 NaN or inf"),
        # C15: r decreases at 0.5, expect "not strictly increasing"
        (
            flawed_table("r", 50, 0.45).encode(),
            r"point 51, r = 0\.45 follows r = 0\.49",
        ),
        # C16: G zero everywhere, expect "zero everywhere"
        (table(*good_arrays()[:1], [0.0] * 3001).encode(), "zero every"),
        # C17: r in nm, expect "r seems to be in nm"
        (good_table(rmax=3.0, rstep=0.001).encode(), "seems to be in nm"),
        # C18: rmax 8 A, expect "too short"
        (good_table(rmax=8.0).encode(), "too short"),
        # C19: rstep 0.2 A, expect "too coarse"
        (good_table(rstep=0.2).encode(), "too coarse"),
        # C20: negative r, expect "cannot be negative"
        (good_table(rmin=-1.0).encode(), "cannot be negative"),
        # C21: qmax 0, expect "not a sensible Qmax"
        (good_table("qmax = 0\n").encode(), "not a sensible Qmax"),
        # C22: qmax 250 (nm^-1?), expect "not a sensible Qmax"
        (good_table("# qmax = 250\n").encode(), "not a sensible Qmax"),
        # C23: qmax nan, expect "not a sensible Qmax"
        (good_table("qmax = nan\n").encode(), "not a sensible Qmax"),
        # C24: qmax not a number, expect "is not a number"
        (good_table("qmax = high\n").encode(), "'high' is not a number"),
        # C25: qmin above qmax, expect "not a sensible Qmin"
        (good_table("qmax = 20\nqmin = 30\n").encode(), "sensible Qmin"),
        # C26: negative qdamp, expect "not a sensible Q damping"
        (good_table("qmax=25\nqdamp=-0.1\n").encode(), "sensible Q damping"),
    ],
)
def test_bad_file_raises(tmp_path, content, message):
    path = tmp_path / "data.gr"
    path.write_bytes(content)
    with pytest.raises(PDFInputError, match=message) as info:
        load_pdf(path)
    assert "Please" in str(info.value)


def test_missing_file_raises(tmp_path):
    # C1: path that does not exist, expect "does not exist"
    with pytest.raises(PDFInputError, match="does not exist. Please"):
        load_pdf(tmp_path / "nothing.gr")


def test_directory_raises(tmp_path):
    # C1: a folder instead of a file, expect "cannot be read"
    with pytest.raises(PDFInputError, match="cannot be read"):
        load_pdf(tmp_path)


# ------------------------------------------------------- array errors


@pytest.mark.parametrize(
    "source, kwargs, message",
    [
        # C1: g shorter than r, expect "same length"
        ((np.arange(20.0), np.arange(19.0)), {}, "same length"),
        # C2: 2-D arrays, expect "1-D arrays"
        ((np.ones((20, 2)), np.ones((20, 2))), {}, "1-D arrays"),
        # C3: three arrays, expect "pair"
        ((np.arange(20.0),) * 3, {}, "Expected a pair"),
        # C4: (N, 2) array, expect "data.T"
        (np.ones((20, 2)), {}, r"data\.T"),
        # C5: 0-d array, expect "pair"
        (np.array(1.0), {}, "Expected a pair"),
        # C6: words, expect "arrays of numbers"
        ((["a"] * 20, ["b"] * 20), {}, "arrays of numbers"),
        # C7: ragged lists, expect "arrays of numbers"
        (([[1], [1, 2]], [1, 2]), {}, "arrays of numbers"),
        # C8: nine points, expect "only 9 points"
        (good_arrays(rmax=0.08), {}, "only 9 points"),
        # C9: an int, expect "Cannot read a PDF from a int"
        (5, {}, "from a int"),
        # C10: qmax keyword -1, expect "not a sensible Qmax"
        (good_arrays(), {"qmax": -1.0}, "sensible Qmax"),
        # C11: qmax keyword inf, expect "not a sensible Qmax"
        (good_arrays(), {"qmax": np.inf}, "sensible Qmax"),
        # C12: qdamp keyword 2, expect "not a sensible Q damping"
        (good_arrays(), {"qmax": 25, "qdamp": 2.0}, "sensible Q damping"),
        # C13: qmin keyword -0.5, expect "not a sensible Qmin"
        (good_arrays(), {"qmax": 25, "qmin": -0.5}, "sensible Qmin"),
    ],
)
def test_bad_arrays_raise(source, kwargs, message):
    with pytest.raises(PDFInputError, match=message):
        load_pdf(source, **kwargs)


def test_arrays_input(no_warnings):
    r, g = good_arrays()
    pdf = load_pdf((list(r), g), qmax=25.0, qdamp=0.04, qmin=0.7)
    assert isinstance(pdf.r, np.ndarray)
    np.testing.assert_array_equal(pdf.g, g)
    assert (pdf.qmax, pdf.qdamp, pdf.qmin) == (25.0, 0.04, 0.7)
    assert (pdf.source, pdf.metadata, pdf.composition) == ("arrays", {}, None)
    assert (pdf.rmin, pdf.rmax) == (0.0, 30.0)


def test_pdfdata_input_is_checked_again(no_warnings):
    pdf = load_pdf(PDFData(*good_arrays(), qmax=25.0, composition="Au"))
    assert (pdf.qmax, pdf.composition) == (25.0, "Au")
    with pytest.raises(PDFInputError, match="too short"):
        load_pdf(PDFData(*good_arrays(rmax=8.0), qmax=25.0))


# ------------------------------------------------- DiffractionObject


def diffraction_object(xtype, **kwargs):
    """Return a diffpy.utils DiffractionObject of a plausible G(r)."""
    from diffpy.utils.diffraction_objects import DiffractionObject

    r, g = good_arrays(rmin=0.01)
    with warnings.catch_warnings():  # no wavelength: a UserWarning
        warnings.simplefilter("ignore")
        return DiffractionObject(r, g, xtype, **kwargs)


def test_diffraction_object_input(no_warnings):
    metadata = {"qmax": 24.0, "qdamp": 0.03, "composition": "Pt"}
    obj = diffraction_object("d", name="Pt NP", metadata=metadata)
    pdf = load_pdf(obj)
    r, g = good_arrays(rmin=0.01)
    np.testing.assert_array_equal(pdf.r, r)
    np.testing.assert_array_equal(pdf.g, g)
    assert (pdf.qmax, pdf.qdamp, pdf.composition) == (24.0, 0.03, "Pt")
    assert pdf.source == "DiffractionObject 'Pt NP'"
    assert pdf.metadata == metadata


def test_reciprocal_space_diffraction_object_raises():
    with pytest.raises(PDFInputError, match="reciprocal-space.*xtype 'q'"):
        load_pdf(diffraction_object("q"))


# ------------------------------------------------------------ warnings


@pytest.mark.parametrize(
    "source, kwargs, message",
    [
        # C1: no qmax anywhere, expect "qmax is not known" and the default
        (good_arrays(), {}, f"model's training Qmax, {DEFAULT_QMAX:g}"),
        # C2: qmax keyword differs from the header, expect "as passed"
        (
            PDFData(*good_arrays(), qmax=22.0),
            {"qmax": 25.0},
            "qmax = 25 as passed.*says qmax = 22",
        ),
        # C3: non-uniform r grid, expect "not uniform"
        (
            (
                np.cumsum(np.r_[0, np.tile([0.01, 0.02], 1000)]),
                np.sin(np.arange(2001.0)),
            ),
            {"qmax": 25.0},
            "not uniform",
        ),
        # C4: G never negative (an S(Q)?), expect "no negative values"
        (
            (good_arrays()[0], 1 + 0.1 * np.sin(good_arrays()[0])),
            {"qmax": 25.0},
            "no negative values",
        ),
    ],
)
def test_suspicious_input_warns(source, kwargs, message):
    with pytest.warns(PDFInputWarning, match=message):
        pdf = load_pdf(source, **kwargs)
    assert pdf.qmax == kwargs.get("qmax")


def test_same_qmax_in_keyword_and_header_does_not_warn(no_warnings):
    pdf = load_pdf(PDFData(*good_arrays(), qmax=21.998), qmax=22.0)
    assert pdf.qmax == 22.0


# ------------------------------------------------------------ resample


def test_model_r_grid():
    assert MODEL_R_GRID.shape == (2800,)
    assert (MODEL_R_GRID[0], MODEL_R_GRID[-1]) == (2.0, 29.99)
    decimals = [float(f"{k // 100}.{k % 100:02d}") for k in range(200, 3000)]
    np.testing.assert_array_equal(MODEL_R_GRID, decimals)
    assert not MODEL_R_GRID.flags.writeable


def test_resample_on_matching_grid_is_exact(no_warnings):
    r, g = good_arrays(rmax=40.0)
    np.testing.assert_array_equal(resample(r, g), g[200:3000])


def test_resample_interpolates_linearly(no_warnings):
    r = np.arange(0, 601) / 20
    out = resample(r, 3.0 * r - 1.0)
    np.testing.assert_allclose(out, 3.0 * MODEL_R_GRID - 1.0)


def test_resample_pads_beyond_rmax_with_zeros():
    r, g = good_arrays(rmax=20.0)
    with pytest.warns(PDFInputWarning, match="9.99 Å beyond the data rmax"):
        out = resample(PDFData(r, g))
    np.testing.assert_array_equal(out[:1801], g[200:2001])
    assert not np.any(out[1801:])


def test_resample_pads_below_rmin_with_zeros():
    r, g = good_arrays(rmin=5.0)
    with pytest.warns(PDFInputWarning, match="3.00 Å below the data rmin"):
        out = resample(r, g)
    assert not np.any(out[:300])
    np.testing.assert_allclose(out[300:], g[:2500])


def test_resample_warn_false_is_silent(no_warnings):
    r, g = good_arrays(rmax=20.0, rmin=3.0)
    assert resample(r, g, warn=False).shape == MODEL_R_GRID.shape


def test_resample_box_averages_fine_data(no_warnings):
    r = np.arange(0, 31001) / 1000
    noise = np.where(np.arange(r.size) % 2, 1.0, -1.0)  # Nyquist noise
    out = resample(r, r + noise)
    # plain interpolation would keep the full +-1 noise on every point
    assert np.abs(out - MODEL_R_GRID).max() < 0.12


@pytest.mark.parametrize(
    "args, error",
    [
        # C1: r without g, expect ValueError
        ((np.arange(20.0),), ValueError),
        # C2: PDFData and g, expect ValueError
        ((PDFData(*good_arrays()), np.zeros(3001)), ValueError),
        # C3: unsorted r, expect PDFInputError
        ((np.arange(20.0)[::-1], np.arange(20.0)), PDFInputError),
    ],
)
def test_resample_refuses(args, error):
    with pytest.raises(error, match="Please"):
        resample(*args)


# -------------------------------------------------- property-based


finite = st.floats(-1e3, 1e3, allow_nan=False)
anything = st.floats(allow_nan=True, allow_infinity=True)
numbers = st.lists(anything, max_size=40)
words = st.sampled_from(
    ["nan", "inf", "-1", "0", "1e400", "#", "qmax", "=", "[PDF]", "x", ""]
)


HEADER_LINES = [
    "[PDF]",
    "qmax = 25",
    "# qmax = 0",
    "qmax = junk",
    "qmin = 30",
    "qdamp = 0.04",
    "composition = Pt",
    "#### start data",
    "#L r G",
]


@st.composite
def grids(draw):
    """(r, g) that often pass the checks, with random flaws mixed in."""
    n = draw(st.integers(0, 1500))
    r = draw(st.floats(-0.1, 1)) + np.arange(n) * draw(st.floats(0.005, 0.12))
    g = np.sin(r * draw(finite)) * draw(finite)
    flaws = st.lists(st.integers(0, n - 1), max_size=3) if n else st.just([])
    for i in draw(flaws):
        (r if draw(st.booleans()) else g)[i] = draw(anything)
    return r, g


@st.composite
def text_tables(draw):
    """Text of a table with a random header and random stray words."""
    r, g = draw(grids())
    header = draw(st.lists(st.sampled_from(HEADER_LINES), max_size=4))
    lines = [f"{x!r} {y!r}" for x, y in zip(r.tolist(), g.tolist())]
    for _ in range(draw(st.integers(0, 2))):
        i = draw(st.integers(0, len(lines)))
        lines.insert(i, str(draw(st.lists(words, max_size=3))))
    return "\n".join(header + lines)


sources = st.one_of(
    st.tuples(st.just("pair"), st.tuples(numbers, numbers)),
    st.tuples(st.just("pair"), grids()),
    st.tuples(st.just("bytes"), st.binary(max_size=400)),
    st.tuples(st.just("text"), st.text(max_size=400)),
    st.tuples(st.just("text"), text_tables()),
)
q_values = st.one_of(st.none(), anything)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / "input.gr"


@settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(source=sources, qmax=q_values, qdamp=q_values)
def test_load_pdf_raises_only_pdf_input_error(scratch, source, qmax, qdamp):
    kind, payload = source
    if kind == "bytes":
        scratch.write_bytes(payload)
    elif kind == "text":
        scratch.write_text(payload, encoding="utf-8", errors="surrogatepass")
    if kind != "pair":
        payload = scratch
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", PDFInputWarning)
        try:
            pdf = load_pdf(payload, qmax=qmax, qdamp=qdamp)
        except PDFInputError as err:
            assert "Please" in str(err)
            return
    assert pdf.r.size >= 10
    assert np.all(np.diff(pdf.r) > 0)
    assert np.all(np.isfinite(pdf.g))
