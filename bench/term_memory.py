"""Peak and kept memory and CPU of one term index build, in process, no database.

The texts are `sync_memory.py`'s CSV rows as the sync renders them (`id: 0\\nname: ...`):
every row's id is a term of its own, the case that grows the vocabulary with the rows.
The kernel's high-water mark is reset before the build (`/proc/self/clear_refs` 5): peak =
VmHWM - RSS before, kept = RSS after - RSS before. Run it under each tree's PYTHONPATH:

    PYTHONPATH=/work/base7/src .venv/bin/python bench/term_memory.py --rows 1000000
    PYTHONPATH=src .venv/bin/python bench/term_memory.py --rows 1000000
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Iterator
from pathlib import Path

from inproc import WORDS, status_mib


def records(rows: int) -> Iterator[tuple[int, str, str]]:
    rnd = random.Random(7)
    for i in range(rows):
        a, b, c = rnd.choice(WORDS), rnd.choice(WORDS), rnd.choice(WORDS)
        yield (i + 1, f"id: {i}\nname: {a} {b}\ncity: {c}\namount: "
               f"{rnd.randint(0, 99999) / 100}\nnote: {b} {c} {i % 97}", f"#{i + 1}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    from dataloft.storage.index.rows import RowTerms

    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    before = status_mib()["VmRSS"]
    cpu = time.process_time()
    index = RowTerms.build(records(args.rows))
    after = status_mib()
    print(f"rows {args.rows}  terms {len(index.rows.vocab)}  peak {after['VmHWM'] - before} MiB"
          f"  kept {after['VmRSS'] - before} MiB  CPU {time.process_time() - cpu:.2f} s",
          flush=True)


if __name__ == "__main__":
    main()
