"""Cost as the library grows: ``mine_library`` against ``propose``.

Run as ``python benchmarks/bench_scaling.py [--sizes N ...] [--plot PNG]``.
In one run it times, per PDF,

* ``mine_library`` over libraries of growing size: the 197 ``"mmnp"``
  shapes; the 3743 clusters of the MMNP set, each at its own lattice
  constant (the miner rescales every cluster to the data's d, so they
  are the 197 shapes again, 19 times over, but each is screened); and
  sets of clusters of at most 200 atoms generated here
  (:func:`generated_clusters`);
* ``propose_structures`` (latent search and snapping to the 197 shapes),
  whose cost does not depend on any library the user has.

The PDFs are simulated from clusters of the library (1 % noise, Qmax 23,
Biso 0.45, qdamp 0.03; the methods get Qmax only).  It prints a table,
where the two lines cross (log-log interpolation), and draws the plot.
"""

import argparse
import warnings

import numpy as np
from common import timed

from diffpy.deepstruc.clusters import enumerate_library
from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf
from diffpy.deepstruc.libraries import Library, load_library
from diffpy.deepstruc.mining import mine_library
from diffpy.deepstruc.propose import propose_structures

R = np.arange(3000) / 100
HIDDEN = DebyeParameters(qmax=23.0, qdamp=0.03, biso=0.45)
#: Sizes of the generated libraries.
SIZES = (10_000, 30_000, 100_000)
#: Most atoms of a generated cluster.
MAX_ATOMS = 200


def generated_clusters(n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` clusters of 5-200 atoms cut from ASE constructions.

    Each is a built-in cluster of the ``"large"`` library (ASE octahedra,
    decahedra, icosahedra and fcc, hcp, bcc and sc blocks) or of the
    197 shapes, cut by one to three random planes through its outer
    part until it has at most :data:`MAX_ATOMS` atoms (at least five),
    in units of the first-shell distance.  The same ``n`` and ``seed``
    give the same clusters.
    """
    bases = [
        entry.xyz
        for name in ("mmnp", "large")
        for entry in load_library(name)
        if entry.n_atoms <= 4 * MAX_ATOMS
    ]
    rng = np.random.default_rng(seed)
    clusters = []
    while len(clusters) < n:
        xyz = bases[int(rng.integers(len(bases)))]
        for _ in range(int(rng.integers(1, 4))):
            normal = rng.normal(size=3)
            height = xyz @ (normal / np.linalg.norm(normal))
            cut = np.quantile(height, rng.uniform(0.6, 1.0))
            xyz = xyz[height <= cut + 1e-9]
        if len(xyz) > MAX_ATOMS:
            radius = np.linalg.norm(xyz - xyz.mean(0), axis=1)
            xyz = xyz[np.argsort(radius, kind="stable")[:MAX_ATOMS]]
        if len(xyz) >= 5:
            clusters.append(xyz)
    return clusters


def test_pdfs(library: Library, n: int, seed: int):
    """``n`` noisy PDFs of members of the library at d = 2.77 Å."""
    rng = np.random.default_rng(seed)
    pdfs = []
    for _ in range(n):
        xyz = library[int(rng.integers(len(library)))].xyz * 2.77
        g = simulate_pdf(xyz, R, params=HIDDEN)[1]
        pdfs.append((R, g + rng.normal(0, 0.01 * np.abs(g).max(), g.size)))
    return pdfs


def libraries(sizes):
    """The libraries timed, smallest first: (name, build seconds, lib)."""
    yield "mmnp (197 shapes)", 0.0, load_library("mmnp")
    records, seconds = timed(enumerate_library)
    own_d = Library.from_structures(
        [rec.xyz * rec.nn_distance for rec in records],
        [f"{rec.type} {rec.nn_distance:.3f}" for rec in records],
        name="MMNP set at own d",
    )
    yield f"MMNP set ({len(own_d)} clusters)", seconds, own_d
    for size in sizes:
        clusters, seconds = timed(lambda: generated_clusters(size))
        library, more = timed(
            lambda: Library.from_structures(clusters, name=f"{size}")
        )
        yield f"generated ({size} clusters)", seconds + more, library


def crossing(sizes, mine, propose) -> float | None:
    """Library size where mining costs as much as propose (log-log)."""
    log_n, log_t = np.log(sizes), np.log(mine)
    for k in range(len(sizes) - 1):
        low, high = log_t[k] - np.log(propose), log_t[k + 1] - np.log(propose)
        if low <= 0 < high:
            share = -low / (high - low)
            return float(np.exp(log_n[k] + share * (log_n[k + 1] - log_n[k])))
    return None


def plot(sizes, mine, propose, cross, path) -> None:
    """Time per PDF against library size, log-log."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    ax.loglog(sizes, mine, "o-", label="mine_library")
    ax.axhline(propose, color="tab:red", label="propose_structures")
    if cross:
        ax.axvline(cross, color="0.5", ls=":", lw=1)
        ax.annotate(
            f"equal cost at ~{cross:,.0f} clusters",
            (cross, propose),
            xytext=(8, -18),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_xlabel("clusters in the library")
    ax.set_ylabel("time per PDF (s)")
    ax.set_title("Cost per PDF as the library grows (2 CPU cores)")
    ax.legend(frameon=False)
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=SIZES)
    parser.add_argument("--pdfs", type=int, default=3, help="PDFs per size")
    parser.add_argument("--plot", help="PNG of the plot")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    mmnp = load_library("mmnp")
    pdfs = test_pdfs(mmnp, args.pdfs, seed=0)
    propose_structures(pdfs[0], qmax=23.0, element="Pt")  # one-off costs
    propose = float(
        np.median(
            [
                timed(lambda: propose_structures(gr, qmax=23.0, element="Pt"))[
                    1
                ]
                for gr in pdfs
            ]
        )
    )
    print(f"propose_structures: {propose:.2f} s per PDF (median)")
    print(f"{'library':<32}{'build (s)':>10}{'mine (s/PDF)':>14}")
    sizes, mine = [], []
    for name, build, library in libraries(args.sizes):
        member_pdfs = test_pdfs(library, args.pdfs, seed=1)
        seconds = np.median(
            [
                timed(
                    lambda: mine_library(
                        gr,
                        library=library,
                        qmax=23.0,
                        element="Pt",
                        progress=False,
                    )
                )[1]
                for gr in member_pdfs
            ]
        )
        sizes.append(len(library))
        mine.append(float(seconds))
        print(f"{name:<32}{build:>10.1f}{seconds:>14.2f}")
    cross = crossing(sizes, mine, propose)
    if cross:
        print(
            f"mining costs as much as propose at about {cross:,.0f} clusters"
        )
    else:
        print("the lines do not cross over the sizes timed")
    if args.plot:
        plot(sizes, mine, propose, cross, args.plot)


if __name__ == "__main__":
    main()
