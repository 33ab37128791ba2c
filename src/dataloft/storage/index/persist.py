"""Persisted copies of the embedded index's structures, so a restart loads them instead of
rebuilding them from every record (issue 16, item 3).

Layout: `<root>/<dataset id>/<index_version>-<tag>/` holds one copy of a dataset's term
index and vector matrix as they were at that index_version: their arrays as .npy files
(loaded memory-mapped, so loading costs no copy), the vocabulary as text, the HNSW graph
as usearch saved it (viewed in place), and `meta.json` with each file's size and checksum.
`tag` says how good the graph is (`n` none, `r` an older graph remapped, `g` the matrix's
own), so a better copy of the same version replaces a worse one.

A copy is written into a temporary directory beside the others and renamed into place,
then the dataset's other copies are deleted: a reader sees a whole copy or none, and a
dataset holds one copy on disk. Nothing is fsynced: a copy torn by a crash fails its
checksums and is deleted and rebuilt, never served. A copy is used only through the
version check and the fingerprint diff of the caller (sqlite.py, delta.py): the current
version is served as is, an older one as the base of a delta.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataloft.storage.index import ann, mapped
from dataloft.storage.index.delta import Catalog
from dataloft.storage.index.rows import RowTerms
from dataloft.storage.index.structures import Approx, Matrix, Terms
from dataloft.storage.index.terms import make
from dataloft.storage.index.vocab import Vocab

FORMAT = 1
_META = "meta.json"
_VOCAB = "vocab.txt"
_GRAPH = "graph.usearch"
_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_COPY = re.compile(r"^(-?\d+)-([nrg])$")
# Smaller files are read into memory; a memory map of a few pages buys nothing.
_MAP_BYTES = 1 << 16
# 8-byte words summed per chunk by `checksum` (32 MiB).
_SUM_WORDS = 1 << 22
# A temporary directory left this long is a dead writer's.
_ABANDONED_S = 3600.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Saved:
    version: int
    terms: Terms | None
    matrix: Matrix | None


def tag(approx: Approx | None) -> str:
    if approx is None:
        return "n"
    return "r" if approx.remap is not None else "g"


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _home(self, dataset_id: str) -> Path:
        if not _SAFE.match(dataset_id):
            raise ValueError(f"not a dataset id: {dataset_id!r}")
        return self.root / dataset_id

    def has(self, dataset_id: str) -> bool:
        """Whether some copy of the dataset is on disk (unchecked)."""
        return bool(self._copies(self._home(dataset_id)))

    def save(self, dataset_id: str, version: int, terms: Terms | None,
             matrix: Matrix | None) -> bool:
        """Write this version's copy unless it is on disk already; False if it was."""
        home = self._home(dataset_id)
        # Read once: the graph builder may set a new graph meanwhile.
        approx = None if matrix is None else matrix.approx
        target = home / f"{version}-{tag(approx)}"
        if target.exists():
            return False
        home.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=home))
        try:
            meta = _write(tmp, dataset_id, version, terms, matrix, approx)
            (tmp / _META).write_text(json.dumps(meta), encoding="utf-8")
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if approx is not None:
            approx.graph.saved = str(target / _GRAPH)  # later copies link it instead of writing it
        for other in self._copies(home):
            if other != target:
                shutil.rmtree(other, ignore_errors=True)
        _sweep(home)
        return True

    def load(self, dataset_id: str) -> Saved | None:
        """The dataset's copy on disk, checked; None if there is none or it fails a check
        (then it is deleted, and the caller rebuilds)."""
        copies = self._copies(self._home(dataset_id))
        if not copies:
            return None
        newest = max(copies, key=lambda p: p.stat().st_mtime_ns)
        try:
            return _read(newest, dataset_id)
        except Exception as exc:  # any damage: never served, rebuilt instead
            log.warning("persisted index copy %s is unusable (%s); rebuilding", newest, exc)
            shutil.rmtree(newest, ignore_errors=True)
            return None

    def drop(self, dataset_id: str) -> None:
        shutil.rmtree(self._home(dataset_id), ignore_errors=True)

    def datasets(self) -> list[str]:
        """The datasets that have a directory here."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if _SAFE.match(p.name))

    @staticmethod
    def _copies(home: Path) -> list[Path]:
        if not home.is_dir():
            return []
        return [p for p in home.iterdir() if _COPY.match(p.name) and (p / _META).is_file()]


def _sweep(home: Path) -> None:
    now = time.time()
    for p in home.iterdir():
        if p.name.startswith(".tmp-") and now - p.stat().st_mtime > _ABANDONED_S:
            shutil.rmtree(p, ignore_errors=True)


def _arrays(terms: Terms | None, matrix: Matrix | None, approx: Approx | None
            ) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if terms is not None:
        t = terms.index.rows
        out |= {"t_pks": terms.index.pks, "t_row_of": terms.index.row_of, "t_fps": terms.fps,
                "r_pks": t.pks, "r_starts": t.starts, "r_docs": t.docs, "r_tf": t.tf,
                "r_length": t.length}
    if matrix is not None:
        out |= {"m_pks": matrix.pks, "m_vectors": matrix.vectors, "m_fps": matrix.fps,
                "m_seen_pks": matrix.seen.pks, "m_seen_fps": matrix.seen.fps}
        if approx is not None and approx.remap is not None and approx.extra is not None:
            out |= {"g_remap": approx.remap, "g_extra": approx.extra}
    return out


def _write(tmp: Path, dataset_id: str, version: int, terms: Terms | None,
           matrix: Matrix | None, approx: Approx | None) -> dict[str, Any]:
    for name, array in _arrays(terms, matrix, approx).items():
        _save_array(tmp / f"{name}.npy", array)
    if terms is not None:
        (tmp / _VOCAB).write_bytes(terms.index.rows.vocab.blob)
    graph = None if approx is None else approx.graph
    if graph is not None:
        linked = False
        if graph.saved is not None:  # unchanged since an earlier copy: share its file
            try:
                os.link(graph.saved, tmp / _GRAPH)
                linked = True
            except OSError:
                pass
        if not linked:
            graph.save(str(tmp / _GRAPH))
    return {"format": FORMAT, "dataset": dataset_id, "version": version,
            "terms": terms is not None, "matrix": matrix is not None,
            "dimension": None if matrix is None else int(matrix.vectors.shape[1]),
            "graph": graph is not None,
            "graph_width": None if graph is None else graph.width,
            "files": {p.name: [p.stat().st_size, checksum(p)] for p in sorted(tmp.iterdir())}}


def _save_array(path: Path, array: np.ndarray) -> None:
    if not mapped.mapped(array):
        np.save(path, np.ascontiguousarray(array), allow_pickle=False)
        return
    # A mapped matrix is copied a chunk at a time, so saving it never makes it resident.
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, np.lib.format.header_data_from_array_1_0(
            array))
        for _, rows in mapped.chunks(array):
            f.write(np.ascontiguousarray(rows).tobytes())


def checksum(path: Path) -> str:
    """The 64-bit wrapping sum of the file's 8-byte words, and its tail: any truncated,
    zeroed or flipped block changes it, at memory speed (~10 ms per 100 MB, a tenth of
    crc32's time), which matters at start-up. Not a defence against a deliberate edit:
    whoever can write the data directory can write the database too."""
    size = path.stat().st_size
    if not size:
        return "0"
    data = np.memmap(path, dtype=np.uint8, mode="r")
    whole = size // 8 * 8
    words = data[:whole].view(np.uint64)
    total = np.zeros(1, dtype=np.uint64)  # an array: its sums wrap without a warning
    # In chunks, each let go once summed: a 1 GiB matrix is read, not made resident.
    for start in range(0, len(words), _SUM_WORDS):
        total += words[start : start + _SUM_WORDS].sum(dtype=np.uint64)
        mapped.release(data)
    return f"{int(total[0]):016x}{bytes(data[whole:]).hex()}"


def _read(copy: Path, dataset_id: str) -> Saved:
    meta = json.loads((copy / _META).read_text(encoding="utf-8"))
    match = _COPY.match(copy.name)
    assert match is not None
    if meta.get("format") != FORMAT or meta.get("dataset") != dataset_id \
            or str(meta.get("version")) != match.group(1):
        raise ValueError("written by another format or for another dataset or version")
    files: dict[str, list[Any]] = meta["files"]
    present = {p.name for p in copy.iterdir()} - {_META}
    if present != set(files):
        raise ValueError(f"files differ from the list: {sorted(present ^ set(files))}")
    for name, (size, sums) in files.items():
        path = copy / name
        if path.stat().st_size != size or checksum(path) != sums:
            raise ValueError(f"{name} fails its checksum")

    def array(name: str) -> np.ndarray:
        path = copy / f"{name}.npy"
        loaded: np.ndarray = np.load(path, mmap_mode="r" if path.stat().st_size > _MAP_BYTES
                                     else None, allow_pickle=False)
        return loaded

    terms = _terms(copy, array) if meta["terms"] else None
    matrix = _matrix(copy, array, meta) if meta["matrix"] else None
    return Saved(int(meta["version"]), terms, matrix)


def _terms(copy: Path, array: Any) -> Terms:
    vocab = Vocab((copy / _VOCAB).read_bytes())
    rows = make(array("r_pks"), vocab, array("r_starts"), array("r_docs"), array("r_tf"),
                array("r_length"))
    index = RowTerms(array("t_pks"), rows, array("t_row_of"))
    terms = Terms(index, array("t_fps"))
    n, postings = len(rows.pks), len(rows.docs)
    if not (vocab.sound() and len(rows.starts) == len(vocab) + 1
            and len(rows.length) == n and len(rows.tf) == postings
            and (not len(rows.starts) or int(rows.starts[-1]) == postings)
            and len(index.row_of) == len(index.pks) == len(terms.fps)
            and (not postings or int(rows.docs.max()) < n)
            and (not len(index.row_of) or int(index.row_of.max()) < n)):
        raise ValueError("term index arrays disagree")
    return terms


def _matrix(copy: Path, array: Any, meta: dict[str, Any]) -> Matrix:
    pks, vectors = array("m_pks"), array("m_vectors")
    matrix = Matrix(pks, vectors, array("m_fps"), Catalog(array("m_seen_pks"),
                                                          array("m_seen_fps")))
    if not (vectors.ndim == 2 and vectors.shape == (len(pks), meta["dimension"])
            and len(matrix.fps) == len(pks) and len(matrix.seen.pks) == len(matrix.seen.fps)):
        raise ValueError("vector matrix arrays disagree")
    if meta["graph"]:
        graph = ann.Graph(None, saved=str(copy / _GRAPH),
                          width=int(meta.get("graph_width") or ann.LEGACY_WIDTH))
        remap = array("g_remap") if (copy / "g_remap.npy").exists() else None
        extra = array("g_extra") if remap is not None else None
        if graph.dimension != vectors.shape[1] or (
                graph.size != len(pks) if remap is None else graph.size != len(remap)):
            raise ValueError("graph disagrees with the matrix")
        if remap is not None and extra is not None and len(pks) and (
                int(remap.max(initial=-1)) >= len(pks) or int(extra.max(initial=-1)) >= len(pks)):
            raise ValueError("graph remap out of range")
        matrix.approx = Approx(graph, remap, extra)
    return matrix
