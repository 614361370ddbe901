"""Throughput of propose on many PDFs: serially and on Dask.

Run as ``python benchmarks/bench_batch.py [--n-pdfs 50] [--samples N]``
(it needs the dask extra).  The PDFs are simulated, always the same
ones, from shapes of the ``"mmnp"`` library with varied nearest-neighbour
distance, Qmax and noise, and written to a temporary folder.  They are
then proposed (:func:`diffpy.deepstruc.batch.propose_many`) in a serial
loop, and on a LocalCluster of one and of two single-threaded worker
processes.  The serial loop runs twice, each in a fresh interpreter: as
a user runs it, with every CPU (numpy's, onnxruntime's and the fits'
threads), and with one thread, as each Dask worker runs (Dask sets
OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS to 1 in its
workers, and the package follows OMP_NUM_THREADS,
:func:`diffpy.deepstruc.fitting.worker_threads`).  The throughput is
printed in PDFs per minute; the per-task overhead of Dask is the
one-worker time minus the one-thread serial time, per PDF, and the start
of each cluster (until its workers are up) is timed on its own.  Each
run includes its one-off costs (the ONNX sessions, the library), once
per process.  The CPU count is printed so that figures from different
machines can be compared.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import cpu_counts

#: Thread settings that Dask's workers get, used here too.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
)


def simulate_inputs(folder: Path, n_pdfs: int) -> list[Path]:
    """Write ``n_pdfs`` simulated Pt PDFs to ``folder``, always the same."""
    import numpy as np

    from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf
    from diffpy.deepstruc.libraries import load_library
    from diffpy.deepstruc.pdfdata import write_pdf

    shapes = load_library("mmnp")
    rng = np.random.default_rng(2026)
    paths = []
    for k in range(n_pdfs):
        entry = shapes[(37 * k) % len(shapes)]
        d = 2.65 + 0.25 * rng.random()  # nearest-neighbour distance, Å
        qmax = float(rng.choice([18.0, 20.0, 22.0, 25.0]))
        noise = float(rng.choice([0.0, 0.01, 0.03]))
        params = DebyeParameters(qmax=qmax)
        r, g = simulate_pdf(entry.xyz * d, params=params)
        g = g + noise * np.abs(g).max() * rng.standard_normal(g.size)
        header = {
            "composition": "Pt",
            "qmax": qmax,
            "qmin": params.qmin,
            "temperature": 300.0 + 5 * k,
        }
        path = folder / f"pdf_{k:03d}.gr"
        write_pdf(path, r, g, header)
        paths.append(path)
    return paths


def run_serial(
    folder: Path, samples: int, one_thread: bool
) -> tuple[float, list]:
    """Seconds of the serial loop in a fresh interpreter; best Rw each.

    With ``one_thread`` the interpreter gets the thread settings of a
    Dask worker, else none of them.
    """
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    if one_thread:
        env.update({variable: "1" for variable in THREAD_VARIABLES})
    command = [sys.executable, __file__, "--serial-in", str(folder)]
    command += ["--samples", str(samples)]
    output = subprocess.run(
        command, env=env, capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(output.splitlines()[-1])
    return result["seconds"], result["best_rw"]


def serial_loop(folder: Path, samples: int) -> None:
    """Run the serial loop on the PDFs of ``folder``; print the outcome."""
    from diffpy.deepstruc.batch import propose_many

    paths = sorted(folder.glob("pdf_*.gr"))
    start = time.perf_counter()
    results = list(propose_many(paths, n_samples=samples))
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "best_rw": _best_rw(results)}))


def run_cluster(
    paths: list[Path], options: dict, n_workers: int
) -> tuple[float, float, list]:
    """Seconds to start a LocalCluster and to run on it; best Rw each.

    The cluster is the one of ``deepstruc ... --scheduler local:N``
    (:func:`diffpy.deepstruc.batch.scheduler_client`).
    """
    from diffpy.deepstruc.batch import propose_many, scheduler_client

    start = time.perf_counter()
    with scheduler_client(f"local:{n_workers}") as client:
        client.wait_for_workers(n_workers)
        started = time.perf_counter()
        results = list(propose_many(paths, client=client, **options))
        done = time.perf_counter()
    return started - start, done - started, _best_rw(results)


def _best_rw(results) -> list:
    """Best Rw of each input in input order (None for a failed one)."""
    results = sorted(results, key=lambda result: result.index)
    return [r.candidates[0].rw if r.ok else None for r in results]


def _compare(best: list, expected: list) -> str:
    """How the best Rw values of a Dask run compare with the serial ones."""
    if [b is None for b in best] != [e is None for e in expected]:
        return "failed for other inputs than serially"
    pairs = [(b, e) for b, e in zip(best, expected) if e is not None]
    largest = max((abs(b - e) for b, e in pairs), default=0.0)
    return "as serial" if largest == 0 else f"within {largest:.1e} of serial"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n-pdfs", type=int, default=50, help="number of PDFs (default 50)"
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=1000,
        help="latent points per PDF, as propose --samples (default 1000)",
    )
    parser.add_argument("--serial-in", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serial_in:
        serial_loop(args.serial_in, args.samples)
        return
    print(cpu_counts())
    options = {"n_samples": args.samples}
    n = args.n_pdfs
    with tempfile.TemporaryDirectory() as folder:
        paths = simulate_inputs(Path(folder), n)
        print(f"propose_many on {n} simulated PDFs, n_samples={args.samples}")
        serial, expected = {}, None
        for one_thread, name in ((False, "all CPUs"), (True, "one thread")):
            seconds, best = run_serial(Path(folder), args.samples, one_thread)
            serial[one_thread] = seconds
            note = ""
            if expected is None:
                expected = best
            else:
                note = f"; best Rw {_compare(best, expected)}"
            print(
                f"  serial, {name:<10}: {seconds:8.1f} s, "
                f"{60 * n / seconds:6.1f} PDFs/min{note}"
            )
        runs = {}
        for n_workers in (1, 2):
            startup, seconds, best = run_cluster(paths, options, n_workers)
            runs[n_workers] = seconds
            print(
                f"  Dask, {n_workers} worker{'s' if n_workers > 1 else ' '}"
                f"     : {seconds:8.1f} s, {60 * n / seconds:6.1f} PDFs/min "
                f"(cluster start {startup:.1f} s; best Rw "
                f"{_compare(best, expected)})"
            )
    overhead = (runs[1] - serial[True]) / n
    print(
        "  per-task overhead of Dask (1 worker minus the one-thread serial "
        f"loop, per PDF): {1000 * overhead:.0f} ms"
    )
    for one_thread, name in ((False, "all CPUs"), (True, "one thread")):
        print(
            f"  2 workers against the serial loop on {name}: "
            f"{serial[one_thread] / runs[2]:.2f} x the throughput"
        )


if __name__ == "__main__":
    main()
