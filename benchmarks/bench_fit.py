"""Time the quick fit (``fit_cluster``) on one CPU thread.

Run as ``python benchmarks/bench_fit.py``.  For three Pt clusters (an
icosahedron of 55 atoms, one of 147 and an octahedron of 201) fitted to
their own noisy G(r) (Qmax 24 Å⁻¹, 1.2 % expanded, 1 % noise), it prints
the median time of the fits that ``propose``, ``mine`` and ``solve``
make: scale, zoom and Uiso; with qdamp, as the site search refits; with
qdamp and a strain from the uniaxial scan, as the strained refits and a
search's first strained refit; and with qdamp and a strain from zero, as
a strained search refits.  The Rw of each fit is printed beside its time.
"""

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_name] = "1"

import time  # noqa: E402

import numpy as np  # noqa: E402
from ase.cluster import Icosahedron, Octahedron  # noqa: E402

from diffpy.deepstruc.debye import DebyeParameters, simulate_pdf  # noqa: E402
from diffpy.deepstruc.fitting import fit_cluster  # noqa: E402

FITS = {
    "scale, zoom, Uiso": {},
    "with qdamp": {"fit_qdamp": True},
    "with qdamp and a strain (scan)": {"fit_qdamp": True, "fit_strain": True},
    "with qdamp and a strain (from 0)": {
        "fit_qdamp": True,
        "fit_strain": True,
        "strain": np.zeros((3, 3)),
    },
}


def main() -> None:
    data = DebyeParameters(qmax=24.0, qdamp=0.05, biso=0.4)
    start = DebyeParameters(qmax=24.0, qdamp=0.04)
    rng = np.random.default_rng(0)
    clusters = {
        "icosahedron 55": Icosahedron("Pt", 3),
        "icosahedron 147": Icosahedron("Pt", 4),
        "octahedron 201": Octahedron("Pt", 7, 2),
    }
    print("fit_cluster, one thread; median of 5 (first call not timed)")
    for name, atoms in clusters.items():
        xyz = atoms.get_positions() - atoms.get_positions().mean(0)
        r, g = simulate_pdf(xyz * 1.012, params=data)
        g = g + rng.normal(0, 0.01 * np.abs(g).max(), g.shape)
        for fit, options in FITS.items():

            def run():
                return fit_cluster(xyz, r, g, start, uiso=0.004, **options)

            run()
            times = []
            for _ in range(5):
                begin = time.perf_counter()
                result = run()
                times.append(time.perf_counter() - begin)
            print(
                f"{name:16s} {fit:34s} {1e3 * np.median(times):8.1f} ms"
                f"  Rw {result.rw:.5f}"
            )


if __name__ == "__main__":
    main()
