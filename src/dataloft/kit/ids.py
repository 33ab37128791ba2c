"""Identifiers that sort by creation time.

An id is `{prefix}_{26 chars}`: 48 bits of milliseconds then 80 random bits, Crockford
base32. Ordering by id therefore orders by creation, which gives listings a stable cursor
that survives concurrent inserts without a second sort column.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_lock = threading.Lock()
_last = (0, 0)


# Two characters (10 bits) a lookup: a big sync makes a million ids.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


def _encode(value: int, length: int) -> str:
    """`length` (even) Crockford base32 characters of `value`, most significant first."""
    out = []
    for _ in range(length // 2):
        out.append(_PAIRS[value & 1023])
        value >>= 10
    return "".join(reversed(out))


def _reserve(count: int) -> tuple[int, int]:
    """(ms, first random part) of `count` consecutive ids."""
    global _last
    with _lock:
        ms = time.time_ns() // 1_000_000
        last_ms, last_rand = _last
        # Within one millisecond, increment instead of drawing anew so ids from one
        # process stay strictly increasing.
        rand = last_rand + 1 if ms <= last_ms else int.from_bytes(os.urandom(10), "big") >> 1
        ms = max(ms, last_ms)
        _last = (ms, rand + count - 1)
    return ms, rand


def new_id(prefix: str) -> str:
    ms, rand = _reserve(1)
    return f"{prefix}_{_encode(ms, 10)}{_encode(rand, 16)}"


def new_ids(prefix: str, count: int) -> list[str]:
    """`count` ids, increasing, as `new_id` would make them one after another."""
    ms, rand = _reserve(count)
    head = f"{prefix}_{_encode(ms, 10)}"
    return [head + _encode(rand + i, 16) for i in range(count)]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def floor_id(prefix: str, ms: int) -> str:
    """The smallest id of `prefix` made at millisecond `ms`: ids greater than it were made
    then or later."""
    return f"{prefix}_{_encode(max(0, ms), 10)}{'0' * 16}"
