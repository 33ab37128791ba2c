"""Confined child processes: a function that may blow up runs where only it can fail.

Each call runs in a fresh child with a memory limit and a wall-clock kill; the parent only
waits on a pipe. Whatever happens in the child ends as a `Confined` error with a typed code,
which each caller maps to its own vocabulary (extraction: `ingest/confined.py`):

- the function's own `Confined` (or subclass)   -> same code and message
- wall clock over `timeout_s` (parent SIGKILL), or the CPU backstop (SIGXCPU)
                                                -> `timeout`
- `MemoryError`, an allocator failure in C/C++, death by a signal, RSS over the limit
                                                -> `memory`
- any other exception, or an unexplained exit   -> `crashed` ("<type>: <message>")

Why a forkserver. Plain `fork` from the server is unsafe: the server has threads (workers,
the SQLite writer, uvicorn), and a forked child can inherit a lock held mid-operation by a
thread that does not exist in the child. `spawn` is safe but starts an interpreter and
re-imports the extractors on every call (about a second). The forkserver is a
single-threaded process started once (by fork+exec) with the caller's `preload` modules
imported; each call is a fork of *it*, which is safe and costs a few milliseconds
(see tests/unit/test_sandbox.py, which bounds it). A persistent pool would be cheaper still
but would carry one file's heap fragmentation, leaked memory and mutated module state into
the next file and needs the same kill-and-replace logic anyway; a fresh fork per file does
not. Consequence: the child sees the preloaded modules as *imported*, so extractors (and
plugins) must register at import time of their module, not later at run time.

Each preload list gets a forkserver of its own (a `multiprocessing.forkserver.ForkServer`
instance, not the interpreter-wide one), so nothing here changes multiprocessing's global
state. The servers are per process, like the interpreter's own: apps built in one process
(the test suite builds hundreds) share them instead of each paying the preload.

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
from collections.abc import Callable, Sequence
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerProcess, set_spawning_popen
from multiprocessing.process import BaseProcess
from typing import Any

DATA_FACTOR = 1.5
# CPython's default; restated because libraries may raise it at import, and a deep recursion
# in C code with a high limit overflows the C stack instead of raising.
RECURSION_LIMIT = 1000
# Confined work is batch work: under load the API must win the CPU, not the child.
NICENESS = 10
POLL_S = 0.025
# The CPU-time limit is only a backstop (the wall clock is the real limit); it lets a
# multi-threaded child use every core for the whole wall-clock budget, plus a grace.
CPU_GRACE_S = 10
_PR_SET_PDEATHSIG = 1


class Confined(Exception):
    """A typed failure of confined work: `timeout`, `memory`, `crashed`, or the code of a
    `Confined` the function itself raised (subclasses cross the boundary as this class)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.code, self.message))


_servers: dict[tuple[str, ...], forkserver.ForkServer] = {}
_servers_lock = threading.Lock()


def _server(preload: Sequence[str]) -> forkserver.ForkServer:
    key = tuple(preload)
    with _servers_lock:
        server = _servers.get(key)
        if server is None:
            server = _servers[key] = forkserver.ForkServer()
            server.set_forkserver_preload([__name__, *key])
        return server


def start(preload: Sequence[str]) -> None:
    """Start the forkserver for `preload` now (at start-up), so the first call won't wait."""
    _server(preload).ensure_running()


def process(target: Callable[..., Any], args: tuple[Any, ...], *, preload: Sequence[str],
            name: str) -> BaseProcess:
    """An unstarted daemon child forked from the `preload` forkserver."""
    proc = ConfinedProcess(target=target, args=args, name=name, daemon=True)
    proc.preload = tuple(preload)
    return proc


class ConfinedProcess(ForkServerProcess):
    preload: tuple[str, ...] = ()

    @staticmethod
    def _Popen(process_obj: Any) -> _Popen:
        return _Popen(process_obj, _server(process_obj.preload))


def run(fn: Callable[..., Any], args: tuple[Any, ...], *, preload: Sequence[str],
        memory_bytes: int, timeout_s: float,
        progress: Callable[[], object] | None = None, limit_s: float | None = None,
        niceness: int = NICENESS) -> Any:
    """`fn(*args)` in a confined child; `fn` must be importable (module-level).

    With `progress` (a value that changes while the child makes headway, such as the size
    of a file it writes), the wall clock allows `timeout_s` without progress, up to
    `limit_s` in all: a child whose output is consumed as it comes (and whose CPU that
    consumer shares) is not cut off for being slow while it advances."""
    reader, writer = multiprocessing.Pipe(duplex=False)
    proc = process(_child, (fn, args, writer, memory_bytes, timeout_s, niceness),
                   preload=preload, name="dataloft-confined")
    try:
        proc.start()
    finally:
        writer.close()
    try:
        payload, killed_for = _await(proc, reader, memory_bytes, timeout_s, progress,
                                     limit_s)
    finally:
        reader.close()
        exitcode = reap(proc)
    if payload is not None:
        return _unpack(payload, memory_bytes)
    raise _death(exitcode, killed_for, memory_bytes, timeout_s)


class _Popen(popen_forkserver.Popen):
    """The stdlib forkserver launch through our own server, minus re-running the parent's
    `__main__` in each child.

    multiprocessing re-imports the parent's main module in every spawn/forkserver child;
    for the `dataloft` console script that re-imports the CLI (~190 ms and ~40 MB per
    call, measured), and runs whatever a main script does at import. The child needs
    nothing from `__main__`: its target and arguments live in importable modules.
    """

    def __init__(self, process_obj: Any, server: forkserver.ForkServer) -> None:
        self._server = server
        super().__init__(process_obj)

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
        # The same lines as the method this overrides, with our server's connection.
        self.sentinel, w = self._server.connect_to_new_process(self._fds)  # type: ignore[attr-defined]
        parent_w = os.dup(w)
        self.finalizer = util.Finalize(self, util.close_fds,  # type: ignore[attr-defined]
                                       (parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as fh:
            fh.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class Inherited:
    """A descriptor that crosses to the child as a descriptor (SCM_RIGHTS via the
    forkserver), the way multiprocessing passes a Connection; it arrives as an int."""

    def __init__(self, fd: int):
        self.fd = fd

    def __reduce__(self) -> tuple[Any, ...]:
        return _detach, (reduction.DupFd(self.fd),)


def _detach(dup: Any) -> int:
    fd: int = dup.detach()
    return fd


def _await(proc: BaseProcess, reader: Connection, memory_bytes: int, timeout_s: float,
           progress: Callable[[], object] | None = None, limit_s: float | None = None
           ) -> tuple[bytes | None, str | None]:
    """Read the child's answer while it runs (a big answer never blocks it); kill on limits."""
    started = time.monotonic()
    deadline = started + timeout_s
    hard = started + (timeout_s if limit_s is None else max(limit_s, timeout_s))
    seen = progress() if progress is not None else None
    while True:
        now = time.monotonic()
        if progress is not None and (value := progress()) != seen:
            seen, deadline = value, min(now + timeout_s, hard)
        remaining = deadline - now
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
        if proc.pid is not None and rss(proc.pid) > memory_bytes:
            kill(proc)
            return None, "memory"


def rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def kill(proc: BaseProcess) -> None:
    with contextlib.suppress(ProcessLookupError, OSError):
        proc.kill()


def reap(proc: BaseProcess) -> int | None:
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
    if code == "memory" and not message:
        message = _memory_message(memory_bytes)
    raise Confined(code, message)


def _death(exitcode: int | None, killed_for: str | None, memory_bytes: int, timeout_s: float
           ) -> Confined:
    if killed_for == "timeout" or exitcode == -signal.SIGXCPU:
        return Confined("timeout", f"took longer than {timeout_s:g} s and was stopped")
    if killed_for == "memory":
        return Confined("memory", _memory_message(memory_bytes))
    if exitcode is not None and exitcode < 0:
        sig = _signal_name(-exitcode)
        return Confined("memory", f"was killed by {sig}, most likely over the memory limit of "
                        f"{memory_bytes // (1 << 20)} MB")
    return Confined("crashed", f"stopped unexpectedly (exit status {exitcode})")


def _memory_message(memory_bytes: int) -> str:
    return f"exceeded the memory limit of {memory_bytes // (1 << 20)} MB"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# ---- in the child -------------------------------------------------------------------------

_OOM = pickle.dumps(("error", "memory", ""))
_ALLOCATOR_FAILURES = ("bad_alloc", "cannot allocate memory", "out of memory",
                       "failed to allocate")


def _child(fn: Callable[..., Any], args: tuple[Any, ...], writer: Connection,
           memory_bytes: int, timeout_s: float, niceness: int = NICENESS) -> None:
    _confine(memory_bytes, timeout_s, niceness)
    try:
        payload = _outcome(fn, args)
    except MemoryError:
        payload = _OOM
    writer.send_bytes(payload)
    writer.close()
    # Exit now: a thread the function left running (non-daemon) would otherwise hold the
    # child in multiprocessing's shutdown until the parent's reaper kills it.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _outcome(fn: Callable[..., Any], args: tuple[Any, ...]) -> bytes:
    try:
        answer: tuple[Any, ...] = ("ok", fn(*args))
    except Confined as exc:
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
        return pickle.dumps(("error", "crashed", f"the result could not be returned: "
                             f"{type(exc).__name__}: {exc}"))


def _classify(exc: BaseException) -> tuple[str, str]:
    text = f"{type(exc).__name__}: {exc}"
    if any(marker in text.lower() for marker in _ALLOCATOR_FAILURES):
        return "memory", ""
    return "crashed", text[:2000]


def _confine(memory_bytes: int, timeout_s: float, niceness: int = NICENESS) -> None:
    data = int(memory_bytes * DATA_FACTOR)
    resource.setrlimit(resource.RLIMIT_DATA, (data, data))
    cpu = math.ceil(timeout_s) * (os.cpu_count() or 1) + CPU_GRACE_S
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + CPU_GRACE_S))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.setrecursionlimit(RECURSION_LIMIT)
    with contextlib.suppress(OSError):
        os.nice(niceness)
    first_to_be_killed()
    die_with_parent()


def first_to_be_killed() -> None:
    """Under real memory pressure the kernel's OOM killer takes this child, not the server."""
    with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as fh:
        fh.write("1000")


def die_with_parent() -> None:
    # The parent is the forkserver, which exits when the server does (even on kill -9):
    # without this an orphaned child would run on until its CPU limit.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
