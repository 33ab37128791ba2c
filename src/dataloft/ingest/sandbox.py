"""Extraction in a confined child process: a hostile file can fail its own sync, nothing more.

Every extraction runs in a fresh child with a memory limit and a wall-clock kill; the
parent (the server) only waits on a pipe. Whatever happens in the child ends as an
`ExtractionError` with a typed code:

- the extractor's own `ExtractionError`      -> same code and message
- wall clock over `timeout_s` (parent SIGKILL), or the CPU backstop (SIGXCPU)
                                              -> `processing_timeout`
- `MemoryError`, an allocator failure in C/C++, death by a signal, RSS over the limit
                                              -> `resource_limit`
- any other exception                         -> `corrupted_file` ("<type>: <message>")

Why a forkserver. Plain `fork` from the server is unsafe: the server has threads (workers,
the SQLite writer, uvicorn), and a forked child can inherit a lock held mid-operation by a
thread that does not exist in the child. `spawn` is safe but starts an interpreter and
re-imports the extractors on every call (about a second). The forkserver is a
single-threaded process started once (by fork+exec) with `dataloft.ingest.extract`
preloaded; each extraction is a fork of *it*, which is safe and costs a few milliseconds
(see tests/unit/test_sandbox.py, which bounds it). A persistent pool would be cheaper still
but would carry one file's heap fragmentation, leaked memory and mutated module state into
the next file and needs the same kill-and-replace logic anyway; a fresh fork per file does
not. Consequence: the child sees the extractors as *imported*, so extractors (and plugins)
must register at import time of `dataloft.ingest.extract`, not later at run time.

What "memory limit" means. `memory_bytes` bounds the child's resident memory (RSS), which
the parent polls every POLL_S and answers with SIGKILL. RLIMIT_AS cannot be the limit:
onnxruntime, numpy and glibc's per-thread malloc arenas reserve far more address space than
they use, and OCR of one small image under RLIMIT_AS = 1 GiB fails with std::bad_alloc
(peak VmSize ~1.4 GB for ~0.7 GB resident). RLIMIT_DATA (Linux >= 4.7) counts only private
writable mappings, not PROT_NONE reservations, but still every thread stack and every
touched arena: OCR of a 300 dpi A4 page in this child peaks at ~965 MB of it for ~740 MB
resident, too close to a 1 GiB limit. So RLIMIT_DATA is set to DATA_FACTOR x the limit, as
the hard ceiling polling cannot be: one huge allocation (a zip bomb read whole) fails at
once with MemoryError inside the child, where it is still reported, and a fast climb can
overshoot the RSS limit by at most that factor. The RSS watchdog also sees what
RLIMIT_DATA does not (shared mappings). Finally the child puts itself first in line for the
kernel's OOM killer, so that under real memory pressure the server is never the one killed.

Memory budget of a deployment: `workers` x `memory_bytes` on top of the server itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import math
import multiprocessing
import os
import pickle
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerProcess, set_spawning_popen
from typing import Any

from dataloft.ingest.extract import ExtractionError, Row, Section, extract

DEFAULT_MEMORY_BYTES = 1 << 30
DEFAULT_TIMEOUT_S = 120.0
DATA_FACTOR = 1.5
# CPython's default; restated because extractor libraries may raise it at import, and a deep
# recursion in C code with a high limit overflows the C stack instead of raising.
RECURSION_LIMIT = 1000
# Extraction is batch work: under load the API must win the CPU, not the extractor.
NICENESS = 10
POLL_S = 0.025
# The CPU-time limit is only a backstop (the wall clock is the real limit); it lets a
# multi-threaded extractor use every core for the whole wall-clock budget, plus a grace.
CPU_GRACE_S = 10

# Imported once by the forkserver, so every child starts with the extractors loaded.
PRELOAD = (__name__, "dataloft.ingest.extract")
_PR_SET_PDEATHSIG = 1
_configure_lock = threading.Lock()
_configured = False


def run_extract(name: str | None, content_type: str | None, path: str, *,
                memory_bytes: int = DEFAULT_MEMORY_BYTES, timeout_s: float = DEFAULT_TIMEOUT_S
                ) -> tuple[str, list[Section | Row]]:
    """`extract(name, content_type, <bytes of path>)` in a confined child process.

    The parent opens `path` and hands the child the descriptor, never the bytes: nothing
    big crosses the pipe, the child needs no access to the blob directory, and a blob that
    a newer upload deletes meanwhile stays readable, as with `BlobStore.open`."""
    with open(path, "rb") as fh:
        result: tuple[str, list[Section | Row]] = run_confined(
            _extract_fd, (name, content_type, _Inherited(fh.fileno())),
            memory_bytes=memory_bytes, timeout_s=timeout_s)
    return result


def run_confined(fn: Callable[..., Any], args: tuple[Any, ...], *, memory_bytes: int,
                 timeout_s: float) -> Any:
    """Call `fn(*args)` in a confined child; `fn` must be importable (module-level)."""
    reader, writer = multiprocessing.Pipe(duplex=False)
    proc = SandboxProcess(target=_child, args=(fn, args, writer, memory_bytes, timeout_s),
                    name="dataloft-extract", daemon=True)
    try:
        proc.start()
    finally:
        writer.close()
    try:
        payload, killed_for = _await(proc, reader, memory_bytes, timeout_s)
    finally:
        reader.close()
        exitcode = reap(proc)
    if payload is not None:
        return _unpack(payload, memory_bytes)
    raise _death(exitcode, killed_for, memory_bytes, timeout_s)


def start() -> None:
    """Start the forkserver now (server start-up), so the first sync does not wait for it."""
    _configure()
    forkserver.ensure_running()


def _configure() -> None:
    global _configured
    with _configure_lock:
        if not _configured:
            # Global to multiprocessing, and read only when the forkserver (re)starts.
            multiprocessing.get_context("forkserver").set_forkserver_preload(list(PRELOAD))
            _configured = True


class _Popen(popen_forkserver.Popen):
    """The stdlib forkserver launch, minus re-running the server's `__main__` in each child.

    multiprocessing re-imports the parent's main module in every spawn/forkserver child;
    for the `dataloft` console script that re-imports the CLI (~190 ms and ~40 MB per
    extraction, measured), and runs whatever a main script does at import. The child
    needs nothing from `__main__`: its target and arguments live in importable modules.
    """

    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_name", None)
        prep_data.pop("init_main_from_path", None)
        buf = io.BytesIO()
        set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            set_spawning_popen(None)
        # Private in typeshed, not in CPython: the same lines as the method it overrides.
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)  # type: ignore[attr-defined]
        parent_w = os.dup(w)
        self.finalizer = util.Finalize(self, util.close_fds,  # type: ignore[attr-defined]
                                       (parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as fh:
            fh.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class _Inherited:
    """A descriptor that crosses to the child as a descriptor (SCM_RIGHTS via the
    forkserver), the way multiprocessing passes a Connection; it arrives as an int."""

    def __init__(self, fd: int):
        self.fd = fd

    def __reduce__(self) -> tuple[Any, ...]:
        return _detach, (reduction.DupFd(self.fd),)


def _detach(dup: Any) -> int:
    fd: int = dup.detach()
    return fd


class SandboxProcess(ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> _Popen:
        _configure()  # the preload list must be set before the forkserver starts
        return _Popen(process_obj)


def _await(proc: Any, reader: Connection, memory_bytes: int, timeout_s: float
           ) -> tuple[bytes | None, str | None]:
    """Read the child's answer while it runs (a big answer never blocks it); kill on limits."""
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            kill(proc)
            return None, "timeout"
        ready = wait([reader, proc.sentinel], timeout=min(remaining, POLL_S))
        if reader in ready:
            try:
                # The child had to hold the pickle within its own limit: no bigger can come.
                return reader.recv_bytes(maxlength=memory_bytes), None
            except EOFError:  # it died without answering
                return None, None
            except OSError:  # an answer over the limit, all the same
                kill(proc)
                return None, "memory"
        if proc.sentinel in ready:
            return None, None
        if rss(proc.pid) > memory_bytes:
            kill(proc)
            return None, "memory"


def rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def kill(proc: Any) -> None:
    with contextlib.suppress(ProcessLookupError, OSError):
        proc.kill()


def reap(proc: Any) -> int | None:
    proc.join(5)
    if proc.exitcode is None:
        kill(proc)
        proc.join(5)
    exitcode: int | None = proc.exitcode
    with contextlib.suppress(ValueError):
        proc.close()
    return exitcode


def _unpack(payload: bytes, memory_bytes: int) -> Any:
    # Trusting the child's pickle adds no exposure: it runs as the same user as the server.
    kind, *rest = pickle.loads(payload)
    if kind == "ok":
        return rest[0]
    code, message = rest
    if code == "resource_limit" and not message:
        message = _memory_message(memory_bytes)
    raise ExtractionError(code, message)


def _death(exitcode: int | None, killed_for: str | None, memory_bytes: int, timeout_s: float
           ) -> ExtractionError:
    if killed_for == "timeout" or exitcode == -signal.SIGXCPU:
        return ExtractionError("processing_timeout",
                               f"extraction took longer than {timeout_s:g} s and was stopped")
    if killed_for == "memory":
        return ExtractionError("resource_limit", _memory_message(memory_bytes))
    if exitcode is not None and exitcode < 0:
        sig = _signal_name(-exitcode)
        return ExtractionError("resource_limit", f"extraction was killed by {sig}, most likely "
                               f"over the memory limit of {memory_bytes // (1 << 20)} MB")
    return ExtractionError("corrupted_file",
                           f"the extractor stopped unexpectedly (exit status {exitcode})")


def _memory_message(memory_bytes: int) -> str:
    return f"extraction exceeded the memory limit of {memory_bytes // (1 << 20)} MB"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# ---- in the child -------------------------------------------------------------------------

_OOM = pickle.dumps(("error", "resource_limit", ""))
_ALLOCATOR_FAILURES = ("bad_alloc", "cannot allocate memory", "out of memory",
                       "failed to allocate")


def _extract_fd(name: str | None, content_type: str | None, fd: int
                ) -> tuple[str, list[Section | Row]]:
    with os.fdopen(fd, "rb") as fh:
        data = fh.read()
    return extract(name, content_type, data)


def _child(fn: Callable[..., Any], args: tuple[Any, ...], writer: Connection,
           memory_bytes: int, timeout_s: float) -> None:
    _confine(memory_bytes, timeout_s)
    try:
        payload = _outcome(fn, args)
    except MemoryError:
        payload = _OOM
    writer.send_bytes(payload)
    writer.close()
    # Exit now: a thread an extractor left running (non-daemon) would otherwise hold the
    # child in multiprocessing's shutdown until the parent's reaper kills it.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _outcome(fn: Callable[..., Any], args: tuple[Any, ...]) -> bytes:
    try:
        answer: tuple[Any, ...] = ("ok", fn(*args))
    except ExtractionError as exc:
        answer = ("error", exc.code, exc.message)
    except MemoryError:
        return _OOM
    except Exception as exc:  # noqa: BLE001 - every failure must come back typed
        answer = ("error", *_classify(exc))
    try:
        return pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    except MemoryError:
        return _OOM
    except Exception as exc:  # noqa: BLE001 - e.g. RecursionError on a deeply nested result
        return pickle.dumps(("error", "corrupted_file", f"the extracted content could not be "
                             f"returned: {type(exc).__name__}: {exc}"))


def _classify(exc: BaseException) -> tuple[str, str]:
    text = f"{type(exc).__name__}: {exc}"
    if any(marker in text.lower() for marker in _ALLOCATOR_FAILURES):
        return "resource_limit", ""
    return "corrupted_file", text[:2000]


def _confine(memory_bytes: int, timeout_s: float) -> None:
    data = int(memory_bytes * DATA_FACTOR)
    resource.setrlimit(resource.RLIMIT_DATA, (data, data))
    cpu = math.ceil(timeout_s) * (os.cpu_count() or 1) + CPU_GRACE_S
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + CPU_GRACE_S))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.setrecursionlimit(RECURSION_LIMIT)
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as fh:
        fh.write("1000")
    die_with_parent()


def die_with_parent() -> None:
    # The parent is the forkserver, which exits when the server does (even on kill -9):
    # without this an orphaned extraction would run on until its CPU limit.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
