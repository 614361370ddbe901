"""Read, validate and resample a measured or simulated PDF G(r).

:func:`load_pdf` turns a file, ``(r, g)`` arrays or a diffpy.utils
``DiffractionObject`` into a checked :class:`PDFData`.  Input that cannot
be a usable G(r) raises :class:`PDFInputError` with a message that says
what to fix; input that is usable but suspicious gives a
:class:`PDFInputWarning`.  :func:`resample` puts G on the model's r grid
:data:`MODEL_R_GRID`, and :func:`write_pdf` writes a file that
:func:`load_pdf` reads back.

Units are Å for r, Å⁻² for G and Å⁻¹ for qmin, qmax and qdamp.
"""

import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from diffpy.deepstruc.debye import DebyeParameters

#: The model's input grid, r = 2.00, 2.01, ..., 29.99 Å (2800 points),
#: built from integers so that every point is the float nearest to k/100.
MODEL_R_GRID = np.arange(200, 3000) / 100.0
MODEL_R_GRID.flags.writeable = False

#: The Qmax (Å⁻¹) of the model's training PDFs.  Later steps assume it
#: when ``PDFData.qmax`` is None.
DEFAULT_QMAX = 25.0

#: Fewest data points accepted.
MIN_POINTS = 10
#: Coarsest accepted grid step in Å.
MAX_RSTEP = 0.1
#: Data ending below this r (Å) are taken to have r in nm.
NM_RMAX_LIMIT = 5.0
#: Data must reach at least this r (Å) for a nanoparticle fit.
MIN_RMAX = 10.0
#: Largest sensible Qmax in Å⁻¹.
MAX_QMAX = 100.0
#: Largest sensible qdamp in Å⁻¹.
MAX_QDAMP = 0.5

_FORMAT_HINT = (
    "Please pass a G(r) text file from PDFgetX3/xPDFsuite or a text file "
    "with the columns r (Å) and G(r)."
)


class PDFInputError(ValueError):
    """The PDF input cannot be used; the message says how to fix it."""


class PDFInputWarning(UserWarning):
    """The PDF input is usable but looks suspicious."""


@dataclass
class PDFData:
    """A validated pair distribution function G(r).

    Parameters
    ----------
    r : numpy.ndarray
        Strictly increasing r values in Å.
    g : numpy.ndarray
        G(r) in Å⁻² on ``r``.
    qmax : float or None
        Qmax (Å⁻¹) of the Fourier transform that gave G; None when unknown
        (later steps then assume :data:`DEFAULT_QMAX`).
    qmin : float or None
        Qmin in Å⁻¹, None when unknown.
    qdamp : float or None
        Instrumental Q resolution damping in Å⁻¹, None when unknown.
    composition : str or None
        Sample composition from the file header, for example ``"Pt"``.
    source : str
        Where the data came from: a file path, ``"arrays"`` or a
        description of the object.
    metadata : dict
        Every ``key = value`` pair read from the file header, numbers as
        floats (or the ``metadata`` of a ``DiffractionObject``).

    Examples
    --------
    >>> import numpy as np
    >>> pdf = PDFData(np.arange(3001) / 100, np.zeros(3001), qmax=25.0)
    >>> pdf.rmin, pdf.rmax, round(pdf.rstep, 6)
    (0.0, 30.0, 0.01)
    """

    r: np.ndarray
    g: np.ndarray
    qmax: float | None = None
    qmin: float | None = None
    qdamp: float | None = None
    composition: str | None = None
    source: str = "arrays"
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.r = np.asarray(self.r, dtype=float)
        self.g = np.asarray(self.g, dtype=float)

    @property
    def rmin(self) -> float:
        """float: The first r value in Å."""
        return float(self.r[0])

    @property
    def rmax(self) -> float:
        """float: The last r value in Å."""
        return float(self.r[-1])

    @property
    def rstep(self) -> float:
        """float: The grid step in Å (median spacing of ``r``)."""
        return float(np.median(np.diff(self.r)))


def load_pdf(
    source,
    *,
    qmax: float | None = None,
    qdamp: float | None = None,
    qmin: float | None = None,
) -> PDFData:
    """Read and validate a PDF G(r).

    Parameters
    ----------
    source : str, os.PathLike, tuple, list, PDFData or DiffractionObject
        One of

        - the path of a text file: a PDFgetX3/xPDFsuite ``.gr``/``.fgr``
          file, whose ``key = value`` header lines (also ``# key = value``;
          ini-style ``[section]`` lines are ignored) give qmax, qmin,
          qdamp and composition (or element), or any text file whose first
          block of numbers has two or more columns, of which the first two
          are r (Å) and G(r); ``#`` starts a comment;
        - a pair ``(r, g)`` of 1-D arrays;
        - a :class:`PDFData`, which is checked again;
        - a diffpy.utils ``DiffractionObject`` holding G(r) in real space.
          diffpy.utils 3.7 has no ``"r"`` xtype, so store r in Å with
          ``xtype="d"``; qmax, qmin, qdamp and composition are taken from
          its ``metadata``.
    qmax, qdamp, qmin : float, optional
        Values in Å⁻¹ that override those of the header.  A missing qmax
        stays None and later steps assume :data:`DEFAULT_QMAX`.

    Returns
    -------
    PDFData
        The checked data.

    Raises
    ------
    PDFInputError
        When the input is missing, unreadable or not a usable G(r): a
        missing, empty or binary file; fewer than two columns or fewer than
        ``MIN_POINTS`` points; NaN or inf values; r not strictly increasing
        or negative; G all zero; r apparently in nm (rmax < 5 Å); data
        ending below 10 Å; a grid step above 0.1 Å; qmax, qmin or qdamp out
        of range.

    Warns
    -----
    PDFInputWarning
        When qmax is unknown, a keyword overrides a different header value,
        the r grid is not uniform, or G has no negative values (it may be
        g(r), S(Q) or an intensity rather than G(r)).

    Examples
    --------
    >>> import numpy as np
    >>> r = np.arange(3001) / 100
    >>> pdf = load_pdf((r, np.sin(r) * np.exp(-r / 10)), qmax=25.0)
    >>> pdf.rmax, pdf.qmax
    (30.0, 25.0)
    """
    if isinstance(source, (str, os.PathLike)):
        r, g, metadata, name = _read_file(os.fspath(source))
    elif isinstance(source, PDFData):
        r, g, name = source.r, source.g, source.source
        metadata = source.metadata
    elif hasattr(source, "on_xtype") and hasattr(source, "input_xtype"):
        r, g, metadata, name = _read_diffraction_object(source)
    elif isinstance(source, (tuple, list, np.ndarray)):
        r, g, metadata, name = *_read_pair(source), {}, "arrays"
    else:
        raise PDFInputError(
            f"Cannot read a PDF from a {type(source).__name__}. "
            + _FORMAT_HINT
            + " Arrays can be passed as a pair (r, g)."
        )
    header = {str(k).lower(): v for k, v in metadata.items()}
    if isinstance(source, PDFData):
        header.update(
            qmax=source.qmax,
            qmin=source.qmin,
            qdamp=source.qdamp,
            composition=source.composition,
        )
    r, g = _as_checked_arrays(r, g)
    _check_physics(r, g)
    qmax = _choose("qmax", qmax, header)
    qmin = _choose("qmin", qmin, header)
    qdamp = _choose("qdamp", qdamp, header)
    _check_q_parameters(qmax, qmin, qdamp)
    composition = header.get("composition", header.get("element"))
    return PDFData(
        r=r,
        g=g,
        qmax=qmax,
        qmin=qmin,
        qdamp=qdamp,
        composition=None if composition is None else str(composition),
        source=name,
        metadata=dict(metadata),
    )


def resample(
    pdf_or_r,
    g=None,
    r_target=MODEL_R_GRID,
    *,
    warn: bool = True,
) -> np.ndarray:
    """Return G on a new r grid.

    G is linearly interpolated (:func:`numpy.interp`) inside the data's r
    range and set to zero outside it.  When the data are much finer than
    the target (data step below half the target step), every target point
    first gets the mean of the data points within half a target step of it
    (a box average), so that noise and sharp features do not alias.

    Parameters
    ----------
    pdf_or_r : PDFData or array_like
        The data, or their r values in Å.
    g : array_like, optional
        G on ``pdf_or_r``; required when ``pdf_or_r`` is an array.
    r_target : array_like, optional
        Increasing target grid in Å, by default :data:`MODEL_R_GRID`.
    warn : bool, optional
        Warn when the target reaches outside the data, by default True.

    Returns
    -------
    numpy.ndarray
        G on ``r_target``.

    Raises
    ------
    PDFInputError
        When the data are not finite, increasing 1-D arrays of the same
        length.
    ValueError
        When ``g`` is missing for array input or given with a PDFData.

    Warns
    -----
    PDFInputWarning
        When zeros are padded below the data rmin or beyond the data rmax;
        the message says over how many Å.

    Examples
    --------
    >>> import numpy as np
    >>> r = np.arange(2001) / 100
    >>> g_model = resample(r, np.sin(r), warn=False)
    >>> g_model.shape, float(g_model[-1])
    ((2800,), 0.0)
    """
    if isinstance(pdf_or_r, PDFData):
        if g is not None:
            raise ValueError(
                "g was given together with a PDFData. Please pass either a "
                "PDFData or the arrays r and g."
            )
        r, g = pdf_or_r.r, pdf_or_r.g
    elif g is None:
        raise ValueError("Please pass g together with the r values.")
    else:
        r = pdf_or_r
    r, g = _as_checked_arrays(r, g, min_points=2)
    r_target = np.asarray(r_target, dtype=float)
    if warn:
        _warn_padding(r, r_target)
    target_step = np.median(np.diff(r_target)) if r_target.size > 1 else 0
    if np.median(np.diff(r)) < target_step / 2:
        values = _box_average(r, g, r_target, target_step)
    else:
        values = np.interp(r_target, r, g)
    inside = (r_target >= r[0]) & (r_target <= r[-1])
    return np.where(inside, values, 0.0)


def write_pdf(path, r, g, header: dict) -> None:
    """Write G(r) as a two-column text file with a ``# key = value`` header.

    :func:`load_pdf` reads the file back exactly: numbers are written in
    their shortest exact form.  Header entries whose value is None are
    left out.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (overwritten when present).
    r : array_like
        r values in Å.
    g : array_like
        G(r) in Å⁻² on ``r``.
    header : dict
        Header entries, for example ``{"qmax": 25.0, "composition": "Pt"}``.

    Raises
    ------
    ValueError
        When r and g are not 1-D arrays of the same length, or a header key
        or value contains a line break, or a key contains ``=``.

    Examples
    --------
    >>> import numpy as np
    >>> r = np.arange(3001) / 100
    >>> write_pdf("sim.gr", r, np.sin(r), {"qmax": 25.0})  # doctest: +SKIP
    """
    r = np.asarray(r, dtype=float)
    g = np.asarray(g, dtype=float)
    if r.ndim != 1 or r.shape != g.shape:
        raise ValueError(
            f"r and g have shapes {r.shape} and {g.shape}. "
            "Please pass two 1-D arrays of the same length."
        )
    lines = []
    for key, value in header.items():
        if value is None:
            continue
        if "=" in str(key) or "\n" in f"{key}{value}":
            raise ValueError(
                f"Header entry {key!r} cannot be written. Please use keys "
                "without '=' and keys and values without line breaks."
            )
        lines.append(f"# {key} = {value}\n")
    lines.append("# r(A) G(A^-2)\n")
    lines.extend(f"{x!r} {y!r}\n" for x, y in zip(r.tolist(), g.tolist()))
    with open(path, "w", encoding="utf-8") as stream:
        stream.writelines(lines)


def _read_file(path: str) -> tuple[np.ndarray, np.ndarray, dict, str]:
    """Read r, G and the header dict from a text file."""
    try:
        with open(path, "rb") as stream:
            raw = stream.read()
    except FileNotFoundError:
        raise PDFInputError(
            f"PDF file '{path}' does not exist. Please check the path."
        ) from None
    except OSError as err:
        raise PDFInputError(
            f"PDF file '{path}' cannot be read ({err.strerror}). "
            "Please pass the path of a readable file."
        ) from None
    if not raw.strip():
        raise PDFInputError(
            f"PDF file '{path}' is empty. Please check that the data were "
            "saved."
        )
    text = _decode_text(raw)
    if text is None:
        raise PDFInputError(
            f"'{path}' does not look like a text PDF file (it holds binary "
            "or non-UTF-8 data). " + _FORMAT_HINT
        )
    # Deferred import: diffpy.utils is slow to import.
    from diffpy.utils.parsers.loaddata import load_data

    try:
        header = load_data(path, headers=True)
        data = load_data(path, minrows=MIN_POINTS, ndmin=2)
    except ValueError as err:
        raise PDFInputError(
            f"The numbers in '{path}' cannot be read ({err}). Please remove "
            "or comment out with '#' any text among or after the data."
        ) from None
    if data.ndim < 2 or len(data) < MIN_POINTS:
        raise PDFInputError(f"'{path}' {_describe_missing_block(text)}")
    if data.shape[1] < 2:
        raise PDFInputError(
            f"'{path}' has only one column of numbers. Please provide r "
            "and G(r) in two columns."
        )
    header = {str(k).lstrip("#").strip(): v for k, v in header.items()}
    return data[:, 0], data[:, 1], header, path


def _decode_text(raw: bytes) -> str | None:
    """Return the UTF-8 text of ``raw``, or None when it looks binary."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    controls = sum(ch < " " and ch not in "\t\n\r\f\v" for ch in text)
    return None if "\0" in text or controls > 0.05 * len(text) else text


def _describe_missing_block(text: str) -> str:
    """Say why a text holds no usable block of numbers, for an error."""
    rows = [line.split("#")[0].split() for line in text.splitlines()]
    widths = [len(row) for row in rows if row and _all_numbers(row)]
    if not widths:
        return "contains no columns of numbers. " + _FORMAT_HINT
    if max(widths) < 2:
        return (
            "has only one column of numbers. Please provide r and G(r) in "
            "two columns."
        )
    if len(widths) < MIN_POINTS:
        return (
            f"has only {len(widths)} rows of numbers. Please provide at "
            f"least {MIN_POINTS} data points."
        )
    return (
        f"has no block of {MIN_POINTS} or more consecutive rows with the "
        "same number of columns. Please check that the data rows are not "
        "interrupted by text or missing values."
    )


def _all_numbers(words: list[str]) -> bool:
    """Return True when every word parses as a float."""
    try:
        [float(word) for word in words]
    except ValueError:
        return False
    return True


def _read_diffraction_object(obj) -> tuple:
    """Take r, G, metadata and a name from a diffpy.utils object."""
    xtype = str(obj.input_xtype).lower()
    if xtype not in ("r", "d", "dspace"):
        raise PDFInputError(
            "The DiffractionObject holds reciprocal-space data "
            f"(xtype '{obj.input_xtype}'), not G(r). Please transform it "
            "to G(r) first (e.g. with PDFgetX3) and store r in Å with "
            "xtype='d'."
        )
    x, y = obj.on_xtype(obj.input_xtype)
    metadata = dict(getattr(obj, "metadata", None) or {})
    name = f"DiffractionObject {getattr(obj, 'name', '')!r}"
    return x, y, metadata, name


def _read_pair(pair) -> tuple:
    """Unpack a ``(r, g)`` pair."""
    if getattr(pair, "ndim", 1) == 0 or len(pair) != 2:
        raise PDFInputError(
            "Expected a pair (r, g). Please pass (r, g); for an (N, 2) "
            "array `data` pass data.T."
        )
    return pair[0], pair[1]


def _as_checked_arrays(r, g, min_points: int = MIN_POINTS) -> tuple:
    """Return r and g as float arrays after the structural checks."""
    try:
        r = np.asarray(r, dtype=float)
        g = np.asarray(g, dtype=float)
    except (TypeError, ValueError):
        raise PDFInputError(
            "r and g must be arrays of numbers. Please convert them to "
            "numeric 1-D arrays."
        ) from None
    if r.ndim != 1 or r.shape != g.shape:
        raise PDFInputError(
            f"r and g have shapes {r.shape} and {g.shape}. Please pass two "
            "1-D arrays of the same length."
        )
    if r.size < min_points:
        raise PDFInputError(
            f"The PDF has only {r.size} points. Please provide at least "
            f"{min_points} data points."
        )
    for name, values in (("r", r), ("G", g)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise PDFInputError(
                f"{name} contains {bad.size} NaN or infinite values, the "
                f"first at point {bad[0] + 1}. Please remove or fix them."
            )
    bad = np.flatnonzero(r[1:] <= r[:-1])  # np.diff can overflow
    if bad.size:
        i = bad[0]
        raise PDFInputError(
            f"r is not strictly increasing: at point {i + 2}, "
            f"r = {r[i + 1]:g} follows r = {r[i]:g}. Please sort the data "
            "by r and remove repeated points."
        )
    return r, g


def _check_physics(r: np.ndarray, g: np.ndarray) -> None:
    """Refuse data that cannot be a G(r) for a nanoparticle; warn on odd."""
    if r[0] < 0:
        raise PDFInputError(
            f"r starts at {r[0]:g} Å, but r cannot be negative. Please "
            "check the r column."
        )
    if not np.any(g):
        raise PDFInputError(
            "G(r) is zero everywhere. Please check the G column."
        )
    if r[-1] < NM_RMAX_LIMIT:
        raise PDFInputError(
            f"The data end at r = {r[-1]:g}; r seems to be in nm. Please "
            "convert r to Å (multiply by 10)."
        )
    if r[-1] < MIN_RMAX:
        raise PDFInputError(
            f"The data end at r = {r[-1]:g} Å, too short for a nanoparticle "
            f"fit. Please provide G(r) up to at least {MIN_RMAX:g} Å "
            "(30 Å or more is best)."
        )
    with np.errstate(over="ignore"):  # steps of huge r may overflow
        steps = np.diff(r)
    rstep = np.median(steps)
    if rstep > MAX_RSTEP:
        raise PDFInputError(
            f"The r step {rstep:g} Å is too coarse. Please compute G(r) "
            f"with rstep <= {MAX_RSTEP:g} Å (0.01 Å is best)."
        )
    if np.any(np.abs(steps - rstep) > 0.01 * rstep):
        warnings.warn(
            f"The r grid is not uniform (steps from {steps.min():g} to "
            f"{steps.max():g} Å); G will be linearly interpolated.",
            PDFInputWarning,
            stacklevel=3,
        )
    if g.min() >= 0:
        warnings.warn(
            "G has no negative values, but G(r) is negative below the "
            "first peak. Is this g(r), S(Q) or an intensity? Please check "
            "that the data are G(r).",
            PDFInputWarning,
            stacklevel=3,
        )


def _choose(key: str, given: float | None, header: dict) -> float | None:
    """Return the keyword value of ``key`` or else its header value."""
    value = header.get(key)
    try:
        from_header = None if value is None else float(value)
    except (TypeError, ValueError):
        if given is None:
            raise PDFInputError(
                f"The header value {key} = {value!r} is not a number. "
                f"Please fix the header or pass {key}=... instead."
            ) from None
        from_header = None
    if given is None:
        return from_header
    given = float(given)
    if from_header is not None and not np.isclose(
        given, from_header, rtol=1e-3, atol=0
    ):
        warnings.warn(
            f"Using {key} = {given:g} as passed, although the file header or "
            f"input says {key} = {from_header:g}.",
            PDFInputWarning,
            stacklevel=3,
        )
    return given


def _check_q_parameters(qmax, qmin, qdamp) -> None:
    """Refuse nonsense Q parameters and warn when qmax is unknown."""
    if qmax is None:
        warnings.warn(
            "qmax is not known (not in the header, not passed); later "
            "steps will assume the model's training Qmax, "
            f"{DEFAULT_QMAX:g} Å⁻¹. Please pass qmax=... (the Qmax used to "
            "compute G(r)).",
            PDFInputWarning,
            stacklevel=3,
        )
    elif not 0 < qmax <= MAX_QMAX:
        raise PDFInputError(
            f"qmax = {qmax:g} is not a sensible Qmax. Please give Qmax in "
            f"Å⁻¹, between 0 and {MAX_QMAX:g} (typically 20-30)."
        )
    if qmin is not None and not 0 <= qmin < (qmax or np.inf):
        raise PDFInputError(
            f"qmin = {qmin:g} is not a sensible Qmin. Please give Qmin in "
            "Å⁻¹, at least 0 and below qmax."
        )
    if qdamp is not None and not 0 <= qdamp <= MAX_QDAMP:
        raise PDFInputError(
            f"qdamp = {qdamp:g} is not a sensible Q damping. Please give "
            f"qdamp in Å⁻¹, between 0 and {MAX_QDAMP:g} (typically 0.01-0.06)."
        )


def _box_average(r, g, r_target, width) -> np.ndarray:
    """Mean of g over [t - width/2, t + width/2) for every t in r_target."""
    sums = np.concatenate(([0.0], np.cumsum(g)))
    lo = np.searchsorted(r, r_target - width / 2)
    hi = np.searchsorted(r, r_target + width / 2)
    return (sums[hi] - sums[lo]) / np.maximum(hi - lo, 1)


def _warn_padding(r: np.ndarray, r_target: np.ndarray) -> None:
    """Warn when r_target reaches below or beyond the data."""
    for side, padded in (
        ("below the data rmin", r[0] - r_target[0]),
        ("beyond the data rmax", r_target[-1] - r[-1]),
    ):
        if padded > 0:
            warnings.warn(
                f"G is padded with zeros over {padded:.2f} Å {side} "
                f"({r[0]:g}-{r[-1]:g} Å).",
                PDFInputWarning,
                stacklevel=3,
            )


def instrument_parameters(pdf: PDFData, model_params: dict) -> DebyeParameters:
    """Debye parameters for fitting ``pdf``: its header, else the model's.

    Qmax, Qmin and qdamp come from the data (header or user keywords) and
    fall back to the values the model was trained with; Biso is a start
    value only (Uiso is fitted).
    """
    values = dict(model_params)
    for key in ("qmax", "qmin", "qdamp"):
        value = getattr(pdf, key)
        if value is not None:
            values[key] = value
    if values["qmin"] >= values["qmax"]:
        values["qmin"] = 0.0
    values["rmax"] = max(values["rmax"], float(pdf.r[-1]) + values["rstep"])
    return DebyeParameters(**values)


def element_of(pdf: PDFData, element: str | None) -> str:
    """The element that labels the candidates' atoms."""
    if element:
        return element
    composition = (pdf.composition or "").strip()
    if composition.isalpha() and composition[:1].isupper():
        if sum(c.isupper() for c in composition) == 1:
            return composition
    warnings.warn(
        f"The data gives no single-element composition ({composition!r}); "
        "the candidates are labelled Au. Please pass element='Pt' (or "
        "the right metal); the PDF of a one-element cluster does not "
        "depend on it.",
        PDFInputWarning,
        stacklevel=3,
    )
    return "Au"
