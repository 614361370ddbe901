"""Time and check library mining (`diffpy.deepstruc.mine_library`).

Run as ``python benchmarks/bench_mining.py [--pdfs N] [--user N]``.  It
prints

1. the 197 ``"mmnp"`` shapes: the cost of the first call and the time
   per PDF (target 1.0 s), with the exact-count, type and shape rates on
   simulated PDFs of random library shapes at lattice constants that the
   library does not hold, clean and with varied Qmax, Biso, qdamp and
   1 % noise; the miner is told Qmax only, as a file header would;
2. a user library of 10 000 clusters of at most 200 atoms, generated
   deterministically (random subsets, rotations and 0.02 d jitter of the
   library shapes) and written as xyz files: time to read the folder,
   time to mine one PDF (target: both together 60 s), and whether the
   cluster a PDF was simulated from ranks first;
3. the ``"large"`` library: build (``--build-large``) or cache load,
   time per PDF on the bundled Pt example and on simulated PDFs of its
   clusters.

Thread counts are left at the library defaults; the CPU count is printed
so that figures from different machines can be compared.
"""

import argparse
import tempfile
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
from common import cpu_counts, timed

from diffpy.deepstruc.clusters import METALLIC_RADII
from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf
from diffpy.deepstruc.libraries import LARGE_CACHE, _build_large, load_library
from diffpy.deepstruc.mining import mine_library

R = np.arange(3000) / 100
#: Nearest-neighbour distances of the MMNP library (Å).
LIBRARY_D = sorted({2 * radius for radius in METALLIC_RADII.values()})


def off_library_d(rng) -> float:
    """A distance in 2.3-3.0 Å at least 0.01 Å from every library d."""
    while True:
        d = rng.uniform(2.3, 3.0)
        if min(abs(d - x) for x in LIBRARY_D) > 0.01:
            return d


def simulated(xyz, d, rng, varied: bool):
    """G(r) of a unit-d cluster at d and its Qmax: clean or varied."""
    if varied:
        params = DebyeParameters(
            qmax=rng.uniform(18, 28),
            qdamp=rng.uniform(0.02, 0.06),
            biso=rng.uniform(0.2, 0.8),
        )
    else:
        params = DebyeParameters()
    g = simulate_pdf(xyz * d, R, params=params)[1]
    if varied:
        g = g + rng.normal(0, 0.01 * np.abs(g).max(), g.shape)
    return (R, g), params.qmax


def bench_mmnp(n_pdfs: int) -> None:
    library, load = timed(lambda: load_library("mmnp"))
    print(f"mmnp library (197 shapes): first load {load:.2f} s")
    for varied in (False, True):
        rng = np.random.default_rng(1 if varied else 0)
        times, count, kind, shape = [], 0, 0, 0
        for _ in range(n_pdfs):
            truth = library[int(rng.integers(len(library)))]
            gr, qmax = simulated(truth.xyz, off_library_d(rng), rng, varied)
            candidates, seconds = timed(
                lambda: mine_library(gr, element="Pt", qmax=qmax)
            )
            times.append(seconds)
            best = candidates[0]
            count += best.n_atoms == truth.n_atoms
            kind += best.nearest_reference.type == truth.type
            shape += best.label == truth.label
        setting = (
            "varied (Qmax 18-28, Biso 0.2-0.8, qdamp 0.02-0.06, 1 % noise)"
            if varied
            else "clean (Qmax 25, Biso 0.3, qdamp 0.04)"
        )
        print(f"  {n_pdfs} PDFs, off-library d, {setting}:")
        print(
            f"    exact count {count}/{n_pdfs}, type {kind}/{n_pdfs}, "
            f"shape {shape}/{n_pdfs}; time per PDF: first "
            f"{times[0]:.2f} s, median {np.median(times[1:]):.2f} s, "
            f"max {max(times[1:]):.2f} s (target 1.0 s)"
        )


def user_clusters(n: int) -> list[np.ndarray]:
    """n jittered, rotated subsets of the library shapes at d = 2.8 Å."""
    from scipy.spatial.transform import Rotation

    shapes = load_library("mmnp")
    rng = np.random.default_rng(2)
    clusters = []
    for _ in range(n):
        xyz = shapes[int(rng.integers(len(shapes)))].xyz
        if len(xyz) > 12:
            xyz = xyz[rng.random(len(xyz)) > 0.05]
        rotation = Rotation.random(random_state=rng).as_matrix()
        xyz = xyz @ rotation.T + rng.normal(0, 0.02, xyz.shape)
        clusters.append(xyz * 2.8)
    return clusters


def bench_user(n: int, n_pdfs: int) -> None:
    from ase import Atoms
    from ase.io import write

    clusters = user_clusters(n)
    with tempfile.TemporaryDirectory() as folder:
        for i, xyz in enumerate(clusters):
            write(Path(folder, f"c{i:05d}.xyz"), Atoms(f"Au{len(xyz)}", xyz))
        library, load = timed(lambda: load_library(folder))
    sizes = [entry.n_atoms for entry in library]
    print(
        f"user library: {n} xyz files of {min(sizes)}-{max(sizes)} atoms; "
        f"reading the folder {load:.1f} s"
    )
    rng = np.random.default_rng(3)
    times, first = [], 0
    for _ in range(n_pdfs):
        index = int(rng.integers(n))
        params = DebyeParameters(biso=rng.uniform(0.2, 0.8))
        xyz = clusters[index] * rng.uniform(0.9, 1.05)
        gr = simulate_pdf(xyz, R, params=params)
        candidates, seconds = timed(
            lambda: mine_library(
                gr, library=library, element="Au", qmax=25, progress=False
            )
        )
        times.append(seconds)
        first += candidates[0].label == f"c{index:05d}.xyz"
    print(
        f"  {n_pdfs} PDFs of library members: source ranked first "
        f"{first}/{n_pdfs}; time per PDF median {np.median(times):.1f} s, "
        f"max {max(times):.1f} s; reading + one PDF "
        f"{load + np.median(times):.1f} s (target 60 s)"
    )


def bench_large(n_pdfs: int, build: bool) -> None:
    cached = LARGE_CACHE.is_file()
    library, load = timed(lambda: load_library("large"))
    sizes = [entry.n_atoms for entry in library]
    print(
        f"large library: {len(library)} clusters of {min(sizes)}-"
        f"{max(sizes)} atoms; {'cache load' if cached else 'first build'} "
        f"{load:.1f} s"
    )
    if build:
        _, seconds = timed(_build_large)
        print(f"  building it without the cache: {seconds:.1f} s")
    data = resources.files("diffpy.deepstruc.data") / "Pt_1.8nm_JQ_S1.gr"
    for name in ("mmnp", "large"):
        mine_library(data, library=name)
        candidates, seconds = timed(lambda: mine_library(data, library=name))
        best = candidates[0]
        print(
            f"  Pt_1.8nm_JQ_S1.gr with {name}: best {best.label} "
            f"({best.n_atoms} atoms) Rw {best.rw:.3f}, {seconds:.2f} s"
        )
    rng = np.random.default_rng(4)
    times, shape = [], 0
    for _ in range(n_pdfs):
        truth = library[int(rng.integers(len(library)))]
        gr, qmax = simulated(truth.xyz, off_library_d(rng), rng, False)
        candidates, seconds = timed(
            lambda: mine_library(gr, library=library, element="Pt", qmax=qmax)
        )
        times.append(seconds)
        shape += candidates[0].label == truth.label
    print(
        f"  {n_pdfs} clean PDFs of its clusters: shape {shape}/{n_pdfs}; "
        f"time per PDF median {np.median(times):.2f} s, max "
        f"{max(times):.2f} s"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdfs", type=int, default=20)
    parser.add_argument("--user", type=int, default=10_000)
    parser.add_argument(
        "--build-large",
        action="store_true",
        help="also time a build of the large library without its cache",
    )
    args = parser.parse_args()
    print(cpu_counts())
    warnings.simplefilter("ignore")
    bench_mmnp(args.pdfs)
    bench_user(args.user, 5)
    bench_large(10, args.build_large)


if __name__ == "__main__":
    main()
