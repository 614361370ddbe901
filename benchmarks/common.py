"""Helpers shared by the benchmark scripts (run them from any folder)."""

import os
import time


def cpu_counts() -> str:
    """The machine's CPU count, the CPUs this process may use and OMP."""
    usable = (
        len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count()
    )
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    return (
        f"CPUs: {os.cpu_count()} on the machine, {usable} usable; "
        f"OMP_NUM_THREADS={threads}"
    )


def timed(func):
    """Result of func() and its wall time in s."""
    start = time.perf_counter()
    result = func()
    return result, time.perf_counter() - start
