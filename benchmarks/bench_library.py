"""Time a cold enumeration of the MMNP library and print its counts.

Run with ``python benchmarks/bench_library.py``.
"""

import time
from collections import Counter


def main() -> None:
    """Print import time, cold and warm enumeration time and counts."""
    start = time.perf_counter()
    from diffpy.deepstruc.clusters import CLUSTER_TYPES, enumerate_library

    imported = time.perf_counter()
    records = enumerate_library()
    cold = time.perf_counter()
    enumerate_library()
    warm = time.perf_counter()

    print(f"import:     {imported - start:8.3f} s")
    print(f"cold build: {cold - imported:8.3f} s")
    print(f"cached:     {warm - cold:8.3f} s")
    counts = Counter(r.type for r in records)
    for cluster_type in CLUSTER_TYPES:
        print(f"{cluster_type:12s} {counts[cluster_type]:5d}")
    print(f"{'total':12s} {len(records):5d}")


if __name__ == "__main__":
    main()
