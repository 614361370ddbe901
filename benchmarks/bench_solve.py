"""Time `diffpy.deepstruc.solve_structure` per PDF.

Run as ``python benchmarks/bench_solve.py``.  It prints the wall time of
one call (after a first call that loads the model and builds the
libraries' caches) on

1. simulated PDFs of three clusters that no library holds (13-200
   atoms, Qmax 24 Å⁻¹, qdamp 0.05 Å⁻¹ not given to the solver), with the
   defaults (``max_atoms=200``, ``strain="auto"``, which starts from
   the proposals of ``propose(strain=True)`` and searches a start with a
   strain when its strain gains 5 %; target: 10 s per PDF) and with
   ``strain=False``;
2. the same clusters stretched by 3 % along a direction of no symmetry,
   with the defaults and with ``strain=True`` (every start searched with
   and without a strain);
3. the bundled Pt example with ``max_atoms=2000`` (target: 60 s per
   PDF), with each ``strain``, and with the default 200;
4. with ``model="stacking"``: simulated PDFs of three close-packed
   particles (fcc, hcp, faulted) of an in-plane outline that the
   stacking library does not use, with the stacking sequence found;

with the atom count, Rw and source of the top candidate.  Thread counts
are left at the library defaults; the CPU count is printed so that
figures from different machines can be compared.
"""

import warnings

import numpy as np
from ase.cluster import Decahedron, Icosahedron, Octahedron
from common import cpu_counts, timed

from diffpy.deepstruc import example_pdf, solve_structure
from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf

A_PT = 2.77 * np.sqrt(2)  # fcc lattice constant of Pt, Å
#: Uniaxial strain of the strained clusters, and its direction.
STRAIN = 0.03
STRAIN_AXIS = np.array([1.0, 2.0, 0.5]) / np.linalg.norm([1.0, 2.0, 0.5])


def outside_clusters() -> dict:
    """Three clusters that neither shipped library holds."""
    ico = Icosahedron("Pt", 4, latticeconstant=A_PT).get_positions()
    radius = np.linalg.norm(ico - ico.mean(0), axis=1)
    return {
        "octahedron 6, cutoff 1 (140 atoms)": Octahedron(
            "Pt", 6, 1, latticeconstant=A_PT
        ).get_positions(),
        "Marks decahedron 2-3-1": Decahedron(
            "Pt", 2, 3, 1, latticeconstant=A_PT
        ).get_positions(),
        "Mackay icosahedron 147 less its 12 vertices": ico[
            np.argsort(radius)[:-12]
        ],
    }


def outside_stacked() -> dict:
    """Three close-packed particles that the stacking library lacks."""
    from diffpy.deepstruc.stacking import build_particle, polygon

    return {
        f"{sequence}, outline {m1}-{m2}": build_particle(
            sequence, polygon(m1, m2)
        )
        * A_PT
        / np.sqrt(2)
        for sequence, (m1, m2) in (
            ("ABCABC", (5, 7)),
            ("ABABAB", (4, 5)),
            ("ABACB", (6, 7)),
        )
    }


def stacked_section(params) -> None:
    """Solve the close-packed particles with the stacking model."""
    print("stacking model, particles outside its library (target 10 s):")
    header = {"qmax": params.qmax, "qmin": params.qmin, "element": "Pt"}
    times = []
    for name, xyz in outside_stacked().items():
        data = simulate_pdf(xyz, params=params)
        found, seconds = timed(
            lambda: solve_structure(data, model="stacking", **header)
        )
        times.append(seconds)
        report(f"{name}, truth {len(xyz)} atoms", seconds, found)
        stacking = found[0].stacking
        print(f"    sequence found: {stacking.abc if stacking else None}")
    print(f"  mean {np.mean(times):.1f} s per PDF")


def report(name: str, seconds: float, candidates) -> None:
    best = candidates[0]
    print(
        f"  {name}: {seconds:.1f} s; top {best.n_atoms} atoms, "
        f"Rw {best.rw:.4f}, {best.source}"
    )


def section(title: str, params, stretch: bool, **options) -> None:
    """Solve the three clusters (stretched or not); print times and mean."""
    print(title)
    header = {"qmax": params.qmax, "qmin": params.qmin, "element": "Pt"}
    times = []
    for name, xyz in outside_clusters().items():
        if stretch:
            xyz = xyz + STRAIN * np.outer(xyz @ STRAIN_AXIS, STRAIN_AXIS)
        data = simulate_pdf(xyz, params=params)
        found, seconds = timed(
            lambda: solve_structure(data, **header, **options)
        )
        times.append(seconds)
        report(f"{name}, truth {len(xyz)} atoms", seconds, found)
    print(f"  mean {np.mean(times):.1f} s per PDF")


def main() -> None:
    warnings.simplefilter("ignore")
    print(cpu_counts())
    params = DebyeParameters(qmax=24.0, qdamp=0.05, biso=0.4)
    header = {"qmax": params.qmax, "qmin": params.qmin, "element": "Pt"}
    first = outside_clusters()["octahedron 6, cutoff 1 (140 atoms)"]
    _, seconds = timed(
        lambda: solve_structure(simulate_pdf(first, params=params), **header)
    )
    print(f"first call (model, caches): {seconds:.1f} s")
    section(
        "clusters outside the libraries, defaults (target 10 s):",
        params,
        stretch=False,
    )
    section("the same, strain=False:", params, stretch=False, strain=False)
    section(
        f"the same, stretched {STRAIN:.0%}, defaults:", params, stretch=True
    )
    section(
        f"the same, stretched {STRAIN:.0%}, strain=True:",
        params,
        stretch=True,
        strain=True,
    )
    stacked_section(params)
    print("bundled Pt example (JQ_S1):")
    for max_atoms, strain in (
        (200, "auto"),
        (2000, "auto"),
        (2000, False),
        (2000, True),
    ):
        found, seconds = timed(
            lambda: solve_structure(
                example_pdf(), max_atoms=max_atoms, strain=strain
            )
        )
        target = " (target 60 s)" if max_atoms > 200 else ""
        report(
            f"max_atoms={max_atoms}, strain={strain!r}{target}", seconds, found
        )


if __name__ == "__main__":
    main()
