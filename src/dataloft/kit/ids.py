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


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    global _last
    with _lock:
        ms = time.time_ns() // 1_000_000
        last_ms, last_rand = _last
        # Within one millisecond, increment instead of drawing anew so ids from one
        # process stay strictly increasing.
        rand = last_rand + 1 if ms <= last_ms else int.from_bytes(os.urandom(10), "big") >> 1
        ms = max(ms, last_ms)
        _last = (ms, rand)
    return f"{prefix}_{_encode(ms, 10)}{_encode(rand, 16)}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def floor_id(prefix: str, ms: int) -> str:
    """The smallest id of `prefix` made at millisecond `ms`: ids greater than it were made
    then or later."""
    return f"{prefix}_{_encode(max(0, ms), 10)}{'0' * 16}"
