"""Time ``import diffpy.deepstruc`` in fresh interpreters.

Run as ``python benchmarks/bench_import.py [--repeats N]``.  It prints the
median wall time of the import alone (measured inside the child, so the
interpreter start-up is excluded), the median of the whole child process
for comparison, and whether the import pulled in torch or other heavy
modules.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

HEAVY = ("torch", "onnxruntime", "ase", "scipy", "matplotlib", "diffpy.srfit")

CHILD = """
import json, sys, time
start = time.perf_counter()
import diffpy.deepstruc
elapsed = time.perf_counter() - start
heavy = {heavy!r}
loaded = sorted(
    name for name in heavy
    if any(m == name or m.startswith(name + ".") for m in sys.modules)
)
print(json.dumps({{"import": elapsed, "loaded": loaded}}))
"""


def run_child() -> tuple[float, float, list]:
    """Import time inside a fresh interpreter, total time, heavy modules."""
    start = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-c", CHILD.format(heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total = time.perf_counter() - start
    result = json.loads(output.strip().splitlines()[-1])
    return result["import"], total, result["loaded"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runs = [run_child() for _ in range(args.repeats)]
    loaded = sorted({name for _, _, names in runs for name in names})
    print(f"import diffpy.deepstruc, {args.repeats} fresh interpreters:")
    import_ms = statistics.median(r[0] for r in runs) * 1e3
    process_ms = statistics.median(r[1] for r in runs) * 1e3
    print(f"  import alone   median {import_ms:7.1f} ms")
    print(f"  whole process  median {process_ms:7.1f} ms")
    print(f"  torch imported: {'yes' if 'torch' in loaded else 'no'}")
    print(f"  heavy modules imported: {', '.join(loaded) or 'none'}")


if __name__ == "__main__":
    main()
