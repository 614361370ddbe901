"""Many PDFs at once: proposals and mining, serially or on Dask.

Beamlines record PDFs by the hundred: temperature series, titrations,
maps.  :func:`propose_many` and :func:`mine_many` run
:func:`~diffpy.deepstruc.propose.propose_structures` and
:func:`~diffpy.deepstruc.mining.mine_library` on every input and yield
one :class:`BatchResult` per input as soon as it is done.  A failing
input gives a result with its error; the others go on.  Both are built
on :func:`map_pdfs`, which runs any per-PDF function
``function(source, **options) -> list[Candidate]`` the same way, so a
structure solver for one PDF plugs in without changes here.

Without a Dask client the inputs run one after another in this process,
in the given order, and Dask need not be installed.  With a
``distributed.Client`` (:func:`scheduler_client` makes one) every input
is one task and the results come back in the order they finish; they
equal the serial ones.  What travels to the workers is small: the input
(a path, which the workers must be able to read, or the PDF's arrays)
and the keywords.  Models and libraries are named, not sent: each worker
process loads them once and keeps them
(:func:`~diffpy.deepstruc.model.load_model` keeps the ONNX sessions,
:func:`~diffpy.deepstruc.libraries.load_library` the built-in libraries
with their pair histograms, and this module the folder and database
libraries).  A :class:`~diffpy.deepstruc.libraries.Library` object is
sent to every worker once.

One PDF mined against a large library on more workers than inputs is
split over the library's clusters (:func:`mine_many`):

1. on the workers, each chunk of clusters is screened against the data
   as :func:`~diffpy.deepstruc.mining.fit_shapes` screens them, and of
   every structure type the best ``K = max(top + EXTRA_FITS, N_REFINE)
   + 1`` clusters are kept (``N_REFINE`` only for libraries that get the
   second screening);
2. one task mines the kept clusters, with the first cluster of each type
   (which keeps the order of the types) and, for libraries that get the
   second screening, padding up to its size threshold, with
   :func:`~diffpy.deepstruc.mining.mine_library`.

The clusters that the whole-library call would fit, screen a second time
or take the least Rw of a type from are all among the kept ones, whose
screening Rw does not depend on the other clusters, so the candidates
equal those of the whole-library call.
"""

import inspect
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from diffpy.deepstruc import mining
from diffpy.deepstruc.candidate import Candidate
from diffpy.deepstruc.fitting import EXTRA_FITS
from diffpy.deepstruc.libraries import LIBRARIES, Library, load_library
from diffpy.deepstruc.pdfdata import load_pdf
from diffpy.deepstruc.propose import propose_structures

#: How to get the optional Dask packages.
DASK_INSTALL = (
    "pip install 'diffpy.deepstruc[dask]' (or: conda install -c "
    "conda-forge dask distributed)"
)
#: Seconds to wait for a Dask scheduler given by its address.
CONNECT_TIMEOUT = 30
#: With a client and fewer inputs than worker threads, :func:`mine_many`
#: splits libraries of at least this many clusters over the workers.
AUTO_CHUNK_CLUSTERS = 4096
#: Fewest clusters of an automatic chunk (each chunk prepares the
#: screening of its PDF anew, which costs as much as screening a few
#: hundred clusters).
MIN_CHUNK_CLUSTERS = 1024
#: Header keys that may order a series of inputs (:func:`series_axis`),
#: in order of preference; case is ignored.
SERIES_KEYS = ("temperature", "temp", "T")
#: Dask settings of the workers of local clusters.  Dask sets
#: ``MALLOC_TRIM_THRESHOLD_`` in its worker processes, which makes glibc
#: map every large array afresh: ``propose`` then runs 1.6 times slower
#: (1.56 s against 0.98 s per PDF on one thread, measured); None unsets
#: it.  Its statistical profiler samples the running task every 10 ms,
#: which cost another 11 % (1.11 s against 0.99 s).
LOCAL_WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
}
#: The series plot names the inputs on its axis up to this many.
MAX_TICK_LABELS = 30


class SchedulerError(RuntimeError):
    """Dask is missing, or its scheduler cannot be started or reached."""


@dataclass
class BatchResult:
    """The outcome for one input of a batch.

    Attributes
    ----------
    index : int
        Position of the input among the given sources.
    source : object
        The input as given: a path, ``(r, G)`` arrays or a PDFData.
    candidates : list of Candidate
        The candidates, best first; empty when the input failed.
    error : Exception or None
        Why the input failed; None when it succeeded.
    warnings : list
        The warnings (``warnings.WarningMessage``) raised for this input;
        they are not shown again.
    seconds : float
        Time the per-PDF function took (on the worker).
    """

    index: int
    source: Any
    candidates: list[Candidate] = field(default_factory=list)
    error: Exception | None = None
    warnings: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """bool: True when the input succeeded."""
        return self.error is None


class _Outcome(NamedTuple):
    """What a task sends back: all of BatchResult but the input."""

    candidates: list
    error: Exception | None
    warnings: list
    seconds: float


def map_pdfs(
    function: Callable[..., list[Candidate]],
    sources: Iterable,
    *,
    client=None,
    **options: Any,
) -> Iterator[BatchResult]:
    """Run a per-PDF function on many PDFs, yielding results as they come.

    Parameters
    ----------
    function : callable
        Called as ``function(source, **options)`` for every input; it
        returns the candidates, best first.  With a client it must be
        importable by the workers (a module-level function).
    sources : iterable
        The inputs: paths of PDF files, ``(r, G)`` arrays or PDFData
        objects.
    client : ``distributed.Client``, optional
        Run every input as one task on this Dask client; by default the
        inputs run one after another in this process.
    **options
        Keywords of ``function``; a
        :class:`~diffpy.deepstruc.libraries.Library` among them is sent
        to every worker once.

    Returns
    -------
    iterator of BatchResult
        One result per input: in input order without a client, else in
        the order the tasks finish.  The exceptions of ``function`` are
        caught into :attr:`BatchResult.error`; KeyboardInterrupt is not.
        Without a client the work is done as the iterator is read; with
        one it starts at once, and closing the iterator cancels what is
        left.

    Raises
    ------
    TypeError
        When ``function`` does not take the keywords.
    """
    sources = list(sources)
    _bind(function, options)
    if client is None:
        return _serial(function, sources, options)
    options = _scatter(client, options)
    futures = {}
    for index, source in enumerate(sources):
        task = client.submit(_run_task, function, source, options, pure=False)
        futures[task] = (index, source)
    return _completed(futures)


def propose_many(
    sources: Iterable, *, client=None, **options: Any
) -> Iterator[BatchResult]:
    """Propose structures for many PDFs (:func:`map_pdfs`).

    Parameters
    ----------
    sources : iterable
        The inputs: paths of PDF files, ``(r, G)`` arrays or PDFData
        objects.
    client : ``distributed.Client``, optional
        Dask client to run the inputs on; by default they run one after
        another in this process.
    **options
        Keywords of :func:`~diffpy.deepstruc.propose.propose_structures`
        (``model``, ``n_samples``, ``top``, ``qmax``, ...).

    Returns
    -------
    iterator of BatchResult
        One result per input, as described for :func:`map_pdfs`.

    Raises
    ------
    TypeError
        For a keyword that ``propose_structures`` does not take.

    Examples
    --------
    >>> from diffpy.deepstruc.batch import propose_many
    >>> for result in propose_many(["a.gr", "b.gr"]):  # doctest: +SKIP
    ...     if result.ok:
    ...         print(result.source, result.candidates[0].rw)
    ...     else:
    ...         print(result.source, "failed:", result.error)
    """
    return map_pdfs(propose_structures, sources, client=client, **options)


def mine_many(
    sources: Iterable,
    *,
    client=None,
    library: "str | os.PathLike | Library" = "mmnp",
    chunk_size: int | None = None,
    **options: Any,
) -> Iterator[BatchResult]:
    """Mine a cluster library for many PDFs.

    Every input is one task (:func:`map_pdfs`), except that the library
    is split into chunks of clusters (see the module description) when
    ``chunk_size`` is given or, with a client, when there are fewer
    inputs than worker threads and the library has at least
    :data:`AUTO_CHUNK_CLUSTERS` clusters.  The candidates are those of
    :func:`~diffpy.deepstruc.mining.mine_library` either way.

    Parameters
    ----------
    sources : iterable
        The inputs: paths of PDF files, ``(r, G)`` arrays or PDFData
        objects.
    client : ``distributed.Client``, optional
        Dask client to run the inputs on; by default they run one after
        another in this process.
    library : str, os.PathLike or Library
        The library, as for ``mine_library``.  It is loaded here first,
        so that an unusable library fails at once; the workers load a
        named library themselves, once per process, and get a Library
        object once.
    chunk_size : int, optional
        Clusters per chunk; one chunk per worker thread by default (see
        above).
    **options
        Further keywords of ``mine_library`` (``top``, ``qmax``, ...);
        ``progress`` is False unless given.

    Returns
    -------
    iterator of BatchResult
        One result per input, as described for :func:`map_pdfs`.

    Raises
    ------
    diffpy.deepstruc.libraries.LibraryError
        For a library that cannot be loaded.
    TypeError
        For a keyword that ``mine_library`` does not take.
    ValueError
        For a chunk size below 1.
    """
    sources = list(sources)
    options = {"progress": False, **options, "library": library}
    keywords = _bind(mining.mine_library, options)
    n_clusters = len(_library(library))
    if chunk_size is None and client is not None:
        chunk_size = _auto_chunk_size(client, len(sources), n_clusters)
    if chunk_size is None:
        return map_pdfs(_mine_one, sources, client=client, **options)
    if chunk_size < 1:
        raise ValueError(f"Please give chunk_size >= 1 (got {chunk_size}).")
    bounds = [
        (start, min(start + chunk_size, n_clusters))
        for start in range(0, n_clusters, chunk_size)
    ]
    if client is None:
        return _serial(
            _mine_in_chunks, sources, {**keywords, "bounds": bounds}
        )
    keywords = _scatter(client, keywords)
    futures = {}
    for index, source in enumerate(sources):
        kept = [
            client.submit(
                _kept_or_error, source, start, stop, keywords, pure=False
            )
            for start, stop in bounds
        ]
        merge = {**keywords, "kept": kept}
        future = client.submit(
            _run_task, _mine_kept, source, merge, pure=False
        )
        futures[future] = (index, source)
    return _completed(futures)


@contextmanager
def scheduler_client(scheduler: str):
    """A Dask client of a new local cluster or of a running scheduler.

    Parameters
    ----------
    scheduler : str
        ``"local:N"``: a ``LocalCluster`` of N single-threaded worker
        processes (``"local"``: one per CPU), closed at the end; else the
        address of a running scheduler, e.g. ``"tcp://host:8786"``.

    Yields
    ------
    ``distributed.Client``
        The client, closed at the end.

    Raises
    ------
    SchedulerError
        When Dask is not installed or the scheduler cannot be reached.
    ValueError
        For a ``local`` scheduler with a bad worker count.
    """
    n_workers = local_workers(scheduler)
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SchedulerError(
            "Running on Dask needs the optional packages dask and "
            f"distributed; please install them: {DASK_INSTALL}."
        ) from None
    if n_workers is not None:
        import dask

        with (
            dask.config.set(LOCAL_WORKER_CONFIG),
            LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=True
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, ValueError) as error:
        raise SchedulerError(
            f"Cannot connect to the Dask scheduler {scheduler!r}: {error}. "
            "Please check that it runs and that its address (e.g. "
            "tcp://host:8786) is right."
        ) from None
    with client:
        yield client


def local_workers(scheduler: str) -> int | None:
    """The worker count of a ``local:N`` scheduler, None for an address.

    Parameters
    ----------
    scheduler : str
        ``"local"``, ``"local:N"`` or a scheduler address.

    Returns
    -------
    int or None
        N (the usable CPUs for ``"local"``), or None for an address.

    Raises
    ------
    ValueError
        When N is not a whole number of at least 1.
    """
    kind, colon, count = scheduler.partition(":")
    if kind != "local":
        return None
    if not colon:
        if hasattr(os, "sched_getaffinity"):
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1
    if not count.isdigit() or int(count) < 1:
        raise ValueError(
            f"Bad scheduler {scheduler!r}: please give local:N with N "
            "worker processes (N >= 1), or a scheduler address such as "
            "tcp://host:8786."
        )
    return int(count)


def series_axis(
    headers: Sequence[dict | None], key: str | None = None
) -> tuple[str, list[float]] | None:
    """The header value that orders a series of inputs, if all have it.

    Parameters
    ----------
    headers : sequence of dict or None
        The header of each input
        (the ``metadata`` of a PDFData); None for an
        input that could not be read, which is not counted.
    key : str, optional
        The header key to use; by default the first of
        :data:`SERIES_KEYS` that every header has.  Case is ignored.

    Returns
    -------
    tuple or None
        The key (as ``key`` or :data:`SERIES_KEYS` spell it) and each
        input's value (NaN for an unread input), or None when some
        header lacks a finite number under the key.
    """
    known = [h for h in headers if h is not None]
    for name in [key] if key is not None else SERIES_KEYS:
        values = [_number(h, name) for h in known]
        if known and all(v is not None for v in values):
            found = iter(values)
            return name, [
                math.nan if h is None else next(found) for h in headers
            ]
    return None


def plot_series(
    rows: Sequence[dict],
    x: Sequence[float] | None = None,
    x_label: str | None = None,
):
    """Plot the best candidate of every input of a batch as a series.

    Three panels share the x axis: the structure type of the best
    candidate, its atom count and its Rw.  Failed inputs are marked by
    dotted vertical lines.

    Parameters
    ----------
    rows : sequence of dict
        The rows of ``summary.csv`` (as ``csv.DictReader`` reads
        them), in input order: ``status``, ``folder``, ``nearest_type``,
        ``n_atoms`` and ``rw`` are used.
    x : sequence of float, optional
        The position of each input, e.g. its temperature
        (:func:`series_axis`); NaN leaves an input out.  By default the
        inputs are numbered in order, and named when there are at most
        :data:`MAX_TICK_LABELS`.
    x_label : str, optional
        Label of the x axis (with ``x``).

    Returns
    -------
    matplotlib.figure.Figure
        The figure, not attached to pyplot.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    from diffpy.deepstruc.clusters import CLUSTER_TYPES
    from diffpy.deepstruc.plotting import OTHER_COLOR, TYPE_COLORS

    by_order = x is None
    position = np.arange(1.0, len(rows) + 1) if by_order else np.array(x)
    ok = [
        k
        for k, row in enumerate(rows)
        if row.get("status", "ok") == "ok"
        and row.get("rw")
        and np.isfinite(position[k])
    ]
    ok.sort(key=lambda k: position[k])
    types = [rows[k]["nearest_type"] for k in ok]
    found = set(types)
    categories = [t for t in CLUSTER_TYPES if t in found]
    categories += sorted(found - set(categories))

    fig = Figure(figsize=(7.5, 6.5), layout="constrained")
    ax_type, ax_atoms, ax_rw = fig.subplots(
        3, 1, sharex=True, height_ratios=(max(len(categories), 2), 2, 2)
    )
    xs = position[ok]
    ax_type.scatter(
        xs,
        [categories.index(t) for t in types],
        c=[TYPE_COLORS.get(t, OTHER_COLOR) for t in types],
        s=36,
        zorder=3,
    )
    ax_type.set_yticks(range(len(categories)), categories)
    ax_type.set_ylim(-0.6, len(categories) - 0.4)
    ax_type.set_ylabel("type")
    ax_atoms.plot(xs, [int(rows[k]["n_atoms"]) for k in ok], "o-", ms=4)
    ax_atoms.set_ylabel("atoms")
    ax_atoms.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_rw.plot(xs, [float(rows[k]["rw"]) for k in ok], "o-", ms=4, c="C3")
    ax_rw.set_ylim(bottom=0)
    ax_rw.set_ylabel("Rw")
    failed = [
        position[k]
        for k, row in enumerate(rows)
        if row.get("status", "ok") != "ok" and np.isfinite(position[k])
    ]
    for ax in (ax_type, ax_atoms, ax_rw):
        ax.grid(alpha=0.3)
        for where in failed:
            ax.axvline(where, color="0.5", ls=":", lw=1.2)
    if failed:
        mark = Line2D([], [], color="0.5", ls=":", label="failed input")
        ax_type.legend(handles=[mark], loc="upper right", fontsize=8)
    if by_order and len(rows) <= MAX_TICK_LABELS:
        names = [row.get("folder") or str(k + 1) for k, row in enumerate(rows)]
        ax_rw.set_xticks(position, names, rotation=45, ha="right")
        ax_rw.set_xlabel("input")
    elif by_order:
        ax_rw.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_rw.set_xlabel("input (in the given order)")
    else:
        ax_rw.set_xlabel(x_label or "")
    n_failed = len(rows) - sum(row.get("status", "ok") == "ok" for row in rows)
    title = f"Best candidate of each of {len(rows)} inputs"
    if n_failed:
        title += f" ({n_failed} failed)"
    fig.suptitle(title)
    return fig


def _number(header: dict, name: str) -> float | None:
    """The finite number under ``name`` in ``header``, ignoring case."""
    for key, value in header.items():
        if str(key).lower() == name.lower():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value) if math.isfinite(value) else None
            return None
    return None


def _bind(function, options: dict) -> dict:
    """All keywords of ``function(source, **options)``, defaults filled."""
    try:
        bound = inspect.signature(function).bind(None, **options)
    except TypeError as error:
        raise TypeError(f"{function.__name__}(): {error}") from None
    bound.apply_defaults()
    keywords = dict(bound.arguments)
    del keywords[next(iter(keywords))]
    return keywords


def _scatter(client, options: dict) -> dict:
    """``options`` with every Library sent to all workers once."""
    return {
        key: (
            client.scatter(value, broadcast=True)
            if isinstance(value, Library)
            else value
        )
        for key, value in options.items()
    }


def _run_task(function, source, options: dict) -> _Outcome:
    """Run ``function`` on one input, catching its errors and warnings."""
    start = time.perf_counter()
    error, candidates = None, []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            candidates = list(function(source, **options))
        except Exception as raised:  # recorded for this input alone
            error = raised
    messages = [
        warnings.WarningMessage(w.message, w.category, w.filename, w.lineno)
        for w in caught
    ]
    return _Outcome(candidates, error, messages, time.perf_counter() - start)


def _result(index: int, source, outcome: _Outcome) -> BatchResult:
    return BatchResult(index, source, *outcome)


def _serial(function, sources: list, options: dict) -> Iterator[BatchResult]:
    for index, source in enumerate(sources):
        yield _result(index, source, _run_task(function, source, options))


def _completed(futures: dict) -> Iterator[BatchResult]:
    """Results of Dask futures, ``{future: (index, source)}``, as done."""
    from distributed import as_completed

    try:
        for future in as_completed(list(futures)):
            index, source = futures.pop(future)
            try:
                outcome = future.result()
            except Exception as error:  # a failed chunk, a lost worker
                outcome = _Outcome([], error, [], 0.0)
            yield _result(index, source, outcome)
    finally:
        for future in futures:
            future.cancel()


def _auto_chunk_size(client, n_sources: int, n_clusters: int) -> int | None:
    """Chunk size that gives every worker thread a share, or None."""
    slots = sum(client.nthreads().values())
    if n_sources >= slots or n_clusters < AUTO_CHUNK_CLUSTERS:
        return None
    share = math.ceil(n_clusters / (slots // max(n_sources, 1)))
    return max(share, MIN_CHUNK_CLUSTERS)


def _library(library) -> Library:
    """The library, loaded once per process for a name or path."""
    if isinstance(library, Library):
        return library
    name = os.fspath(library)
    stamp = None
    if name not in LIBRARIES and os.path.exists(name):
        stamp = os.stat(name).st_mtime_ns
    return _cached_library(name, stamp)


@lru_cache(maxsize=4)
def _cached_library(name: str, stamp: int | None) -> Library:
    """A loaded library; ``stamp`` (the path's mtime) renews the entry."""
    return load_library(name)


def _keep_per_type(top: int, n_clusters: int) -> int:
    """Clusters of each type that a chunk keeps (module description)."""
    refine = n_clusters > mining.REFINE_MIN_CLUSTERS
    return max(top + EXTRA_FITS, mining.N_REFINE if refine else 0) + 1


def _keep_from_chunk(source, start: int, stop: int, keywords: dict):
    """Library indices of clusters ``start:stop`` that may matter.

    The data are prepared and the clusters screened as
    :func:`~diffpy.deepstruc.mining.mine_library` does; ``keywords`` are
    its keywords with the defaults filled.
    """
    library = _library(keywords["library"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mine_library warns in the merge
        pdf = load_pdf(
            source,
            qmax=keywords["qmax"],
            qdamp=keywords["qdamp"],
            qmin=keywords["qmin"],
        )
    screen = mining._Screen(*mining.fit_data(pdf, keywords["fit_range"]))
    rw, (least, *_) = mining.screened(screen, library, start, stop)
    quota = _keep_per_type(keywords["top"], len(library))
    counts: dict[str, int] = {}
    kept = []
    for k in np.lexsort((rw.min(1), least)):
        kind = library[start + k].type
        if counts.get(kind, 0) < quota:
            counts[kind] = counts.get(kind, 0) + 1
            kept.append(start + int(k))
    return np.sort(np.array(kept, dtype=int))


def _kept_or_error(source, start: int, stop: int, keywords: dict):
    """:func:`_keep_from_chunk`, or its error for the merge to raise.

    An error returned, not raised, reaches the input's result without
    Dask logging it as a failed task.
    """
    try:
        return _keep_from_chunk(source, start, stop, keywords)
    except Exception as error:
        return error


def _mine_one(source, *, library, **keywords) -> list[Candidate]:
    """:func:`~diffpy.deepstruc.mining.mine_library` with a kept library."""
    return mining.mine_library(source, library=_library(library), **keywords)


def _mine_kept(source, *, kept, library, **keywords) -> list[Candidate]:
    """Mine the clusters that the chunks kept (module description)."""
    for part in kept:
        if isinstance(part, Exception):
            raise part
    library = _library(library)
    chosen = set(np.concatenate(kept).tolist())
    first: dict[str, int] = {}
    for index, entry in enumerate(library):
        first.setdefault(entry.type, index)
    chosen.update(first.values())
    if len(library) > mining.REFINE_MIN_CLUSTERS:
        padding = (i for i in range(len(library)) if i not in chosen)
        while len(chosen) <= mining.REFINE_MIN_CLUSTERS:
            chosen.add(next(padding))
    subset = Library(library.name, tuple(library[i] for i in sorted(chosen)))
    return mining.mine_library(source, library=subset, **keywords)


def _mine_in_chunks(source, *, bounds, **keywords) -> list[Candidate]:
    """Mine one input chunk by chunk in this process."""
    kept = [
        _keep_from_chunk(source, start, stop, keywords)
        for start, stop in bounds
    ]
    return _mine_kept(source, kept=kept, **keywords)
