"""Time propose_structures on the bundled Pt example.

Run as ``python benchmarks/bench_propose.py [--repeats N] [--model M]``
(``mmnp``, ``stacking`` or ``auto``; default ``mmnp``).  Each setting
(the default latent search, ``search=False``, and ``strain=True``, which
refits the best candidates with a strain) runs in a fresh
interpreter, so its first call includes the one-off costs (reading and
checking the ONNX files, starting onnxruntime); the median of the later
calls is the steady cost.  Thread counts are left at the library
defaults (OMP_NUM_THREADS is not set here), and the CPU count is printed
so that figures from different machines can be compared.
"""

import argparse
import json
import subprocess
import sys
import time

from common import cpu_counts

#: Keywords of propose_structures of each setting.
SETTINGS = {
    "search": {},
    "no-search": {"search": False},
    "strain": {"strain": True},
}


def measure(setting: str, repeats: int, model: str) -> dict:
    """Time one cold and ``repeats`` warm calls in this process."""
    from importlib import resources

    import numpy as np

    from diffpy.deepstruc.propose import propose_structures

    data = resources.files("diffpy.deepstruc.data") / "Pt_1.8nm_JQ_S1.gr"
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        candidates = propose_structures(data, model=model, **SETTINGS[setting])
        times.append(time.perf_counter() - start)
    best = candidates[0]
    return {
        "first": times[0],
        "median": float(np.median(times[1:])),
        "spread": [min(times[1:]), max(times[1:])],
        "best_rw": best.rw,
        "best_atoms": len(best.xyz),
        "n_candidates": len(candidates),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="mmnp")
    parser.add_argument("--child", choices=list(SETTINGS))
    args = parser.parse_args()
    if args.child:
        result = measure(args.child, args.repeats, args.model)
        print(json.dumps(result))
        return
    print(cpu_counts())
    print(
        f"propose_structures(Pt_1.8nm_JQ_S1.gr, model={args.model!r}), "
        "n_samples=1000, "
        f"{args.repeats} warm calls after the first"
    )
    for child, label in (
        ("search", "search=True "),
        ("no-search", "search=False"),
        ("strain", "strain=True "),
    ):
        output = subprocess.run(
            [sys.executable, __file__, "--child", child]
            + ["--repeats", str(args.repeats), "--model", args.model],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        result = json.loads(output.strip().splitlines()[-1])
        low, high = result["spread"]
        print(
            f"  {label}: first call {result['first']:7.2f} s, "
            f"median {result['median']:6.2f} s "
            f"(range {low:.2f}-{high:.2f} s); best Rw "
            f"{result['best_rw']:.3f} with {result['best_atoms']} atoms"
        )


if __name__ == "__main__":
    main()
