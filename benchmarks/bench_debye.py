"""Time the Debye PDF simulator of diffpy.deepstruc on one CPU thread.

Run as ``python benchmarks/bench_debye.py``.  It prints the time of one
G(r) of a 201-atom cluster on the default grid, the batch rate of
`simulate_pdfs`, the cost of `PairHistogram.pdf` for a crystalline and a
blurred cluster, the rates of `IncrementalPDF` (atom moves, G(r) after
each, a fresh 201-atom and 1925-atom blurred cluster), the cost of the
first G(r) on a new grid (which computes the cached Debye kernel), the
speed-up over diffpy.srreal when it is installed, and last the three
figures of the speed targets of issue #10: moves per second with G(r)
after each for 201 atoms, the fresh G(r) of a 2075-atom disordered
cluster, and the fresh G(r) of a 201-atom crystalline and disordered
cluster.
"""

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_name] = "1"

import importlib.util  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from ase.cluster import FaceCenteredCubic, Octahedron  # noqa: E402

from diffpy.deepstruc import debye  # noqa: E402
from diffpy.deepstruc.debye import (  # noqa: E402
    DebyeParameters,
    IncrementalPDF,
    PairHistogram,
    r_grid,
    simulate_pdf,
    simulate_pdfs,
)


def median_time(func, repeats=30):
    """Return the median wall time of func() in seconds."""
    func()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def batch_clusters(n, rng):
    """Return n randomly perturbed fcc clusters of 13 to 201 atoms."""
    templates = [
        Octahedron("Pt", length, cutoff=cutoff).get_positions()
        for length, cutoff in ((3, 1), (4, 1), (5, 2), (6, 2), (7, 2))
    ]
    templates.append(
        FaceCenteredCubic(
            "Pt", [(1, 0, 0), (1, 1, 0), (1, 1, 1)], [2, 3, 2]
        ).get_positions()
    )
    picks = rng.integers(len(templates), size=n)
    return [
        templates[i] + rng.normal(0, 0.01, templates[i].shape) for i in picks
    ]


def incremental(blurred, r, params, rng) -> float:
    """Print the rates of IncrementalPDF on a blurred cluster.

    Returns the moves per second with G(r) after each.
    """
    calc = IncrementalPDF(blurred, r, params)
    steps = rng.normal(0, 0.05, (2000, 3))
    n = calc.n_atoms

    def moves(with_pdf):
        start = time.perf_counter()
        for k, step in enumerate(steps):
            calc.move(k % n, calc.xyz[k % n] + step)
            if with_pdf:
                calc.pdf()
        return len(steps) / (time.perf_counter() - start)

    with_pdf = moves(True)
    print(
        f"IncrementalPDF, {n} atoms: {moves(False):.0f} moves/s, "
        f"{with_pdf:.0f} moves/s with G(r) after each, G(r) alone "
        f"{median_time(calc.pdf) * 1e3:.2f} ms"
    )
    seconds = median_time(lambda: IncrementalPDF(blurred, r, params).pdf())
    print(
        f"IncrementalPDF, fresh {n}-atom cluster and G(r): "
        f"{seconds * 1e3:.2f} ms"
    )
    big = Octahedron("Pt", 15, cutoff=5).get_positions()
    big = big + rng.normal(0, 0.1, big.shape)
    seconds = median_time(lambda: IncrementalPDF(big, r, params).pdf(), 3)
    print(
        f"IncrementalPDF, fresh {len(big)}-atom cluster and G(r): "
        f"{seconds * 1e3:.0f} ms"
    )
    return with_pdf


def first_call(blurred, r, params) -> None:
    """Print the cost of the first G(r) on a grid, kernel included."""
    times = []
    for _ in range(5):
        debye._node_kernel.cache_clear()
        debye._filtered_node_kernel.cache_clear()
        debye._interpolation.cache_clear()
        start = time.perf_counter()
        IncrementalPDF(blurred, r, params).pdf()
        times.append(time.perf_counter() - start)
    print(
        "first G(r) on a new grid and Uiso (Debye kernel computed): "
        f"{np.median(times) * 1e3:.1f} ms"
    )


def large(r, params, rng) -> tuple[float, float]:
    """Return the times of a fresh G(r) of a 2075-atom blurred cluster.

    The first through `simulate_pdf`, the second through a new
    `IncrementalPDF`.
    """
    xyz = Octahedron("Pt", 15, cutoff=4).get_positions()
    xyz = xyz + rng.normal(0, 0.1, xyz.shape)
    return (
        median_time(lambda: simulate_pdf(xyz, r, params=params), 10),
        median_time(lambda: IncrementalPDF(xyz, r, params).pdf(), 10),
    )


def main():
    rng = np.random.default_rng(0)
    params = DebyeParameters()
    r = r_grid(params.rmin, params.rmax, params.rstep)
    crystal = Octahedron("Pt", 7, cutoff=2).get_positions()
    blurred = crystal + rng.normal(0, 0.1, crystal.shape)
    print(f"cluster: {len(crystal)} atoms, grid {r.size} points, 1 thread")

    fresh = median_time(lambda: simulate_pdf(crystal))
    print(f"simulate_pdf, crystalline: {fresh * 1e3:8.2f} ms")
    fresh_blurred = median_time(lambda: simulate_pdf(blurred))
    print(f"simulate_pdf, blurred:     {fresh_blurred * 1e3:8.2f} ms")

    for name, cluster in (("crystalline", crystal), ("blurred", blurred)):
        pairs = PairHistogram.from_cluster(cluster)
        seconds = median_time(
            lambda: pairs.pdf(r, params, zoom=1.01, uiso=0.005)
        )
        print(
            f"PairHistogram.pdf, {name} ({pairs.distances.size} distances):"
            f" {seconds * 1e3:.2f} ms"
        )

    rate = incremental(blurred, r, params, rng)
    first_call(blurred, r, params)

    clusters = batch_clusters(1000, rng)
    mean_atoms = np.mean([len(c) for c in clusters])
    zooms = rng.uniform(0.95, 1.05, len(clusters))
    seconds = median_time(
        lambda: simulate_pdfs(clusters, params=params, zooms=zooms), 3
    )
    print(
        f"simulate_pdfs, 1000 clusters of {mean_atoms:.0f} atoms on average:"
        f" {seconds:.2f} s = {1000 / seconds:.0f} clusters/s"
    )

    if importlib.util.find_spec("diffpy.srreal") is None:
        print("srreal comparison skipped: diffpy.srreal is not installed")
    else:
        reference = median_time(
            lambda: simulate_pdf(crystal, backend="srreal"), 5
        )
        seconds = median_time(lambda: simulate_pdf(crystal))
        print(
            f"srreal DebyePDFCalculator: {reference * 1e3:.1f} ms, "
            f"numpy is {reference / seconds:.0f}x faster"
        )

    big_simulate, big_incremental = large(r, params, rng)
    print("speed targets of issue #10, one thread:")
    print(
        f"  201 atoms: {rate:.0f} moves/s with G(r) after each"
        " (target >= 5000)"
    )
    print(
        f"  2075-atom disordered cluster, fresh G(r): simulate_pdf "
        f"{big_simulate * 1e3:.1f} ms, IncrementalPDF "
        f"{big_incremental * 1e3:.1f} ms (target <= 20 ms)"
    )
    print(
        f"  201-atom cluster, fresh G(r) (simulate_pdf): crystalline "
        f"{fresh * 1e3:.2f} ms, disordered {fresh_blurred * 1e3:.2f} ms"
        " (target <= 1 ms)"
    )


if __name__ == "__main__":
    main()
