"""Complexity checks that hold on a busy machine.

A test must not bound wall or CPU time: CI boxes are shared and a slow one fails a
correct build (test_csv_100k_rows_streams_fast took 12 s of CPU on one). What a test can
check is how cost grows with input. Linear work on ten times the input costs about ten
times as much, quadratic work a hundred; the best of a few runs of each, measured in one
process, tells them apart however loaded the box is. The figures themselves belong in bench/.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def cpu_seconds(work: Callable[[], object], repeats: int = 3) -> float:
    """The least CPU time of a few runs: noise only ever adds."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def growth(small: Callable[[], object], large: Callable[[], object], repeats: int = 3) -> float:
    """How many times more CPU the large input costs than the small one."""
    return cpu_seconds(large, repeats) / max(cpu_seconds(small, repeats), 1e-6)
