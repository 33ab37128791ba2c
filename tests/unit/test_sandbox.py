"""The extraction sandbox: results come back intact, every failure comes back typed, and no
input can hang, crash or exhaust the calling process.

Children run functions from this module (importable as tests.unit.test_sandbox), so the
hostile behaviours below are real code in a real child, not monkeypatches.
"""

from __future__ import annotations

import io
import os
import resource
import signal
import statistics
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from dataloft.ingest import confined as sandbox
from dataloft.ingest.extract import ExtractionError, Section, extract
from dataloft.kit import confine
from dataloft.kit.spool import Spool

MB = 1 << 20


def confined(fn: Any, *args: Any, memory_mb: int = 256, timeout_s: float = 10.0) -> Any:
    return sandbox.run_confined(fn, args, memory_bytes=memory_mb * MB, timeout_s=timeout_s)


def failure(fn: Any, *args: Any, **limits: Any) -> ExtractionError:
    with pytest.raises(ExtractionError) as info:
        confined(fn, *args, **limits)
    return info.value


def file(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


# ---- what the children run ----------------------------------------------------------------

def sleep_forever(pid_file: str) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(3600)


def trickle(path: str, seconds: float) -> int:
    """Writes a byte every 0.1 s for `seconds`: slow, but never stalled."""
    end, count = time.monotonic() + seconds, 0
    with open(path, "ab", buffering=0) as fh:
        while time.monotonic() < end:
            fh.write(b"x")
            count += 1
            time.sleep(0.1)
    return count


def spin() -> None:
    while True:
        pass


def allocate_at_once(size: int) -> int:
    return len(bytearray(size))


def allocate_gradually(step: int) -> None:
    hoard = []
    while True:
        hoard.append(bytearray(step))


def hold(size: int, shared: bool) -> None:
    """Keep `size` bytes resident: private (seen by RLIMIT_DATA) or shared (seen only by RSS)."""
    import mmap

    memory = mmap.mmap(-1, size) if shared else bytearray(size)
    for i in range(0, size, 4096):
        memory[i] = 1
    time.sleep(3600)


def crash(sig: int) -> None:
    os.kill(os.getpid(), sig)


def exit_silently(status: int) -> None:
    os._exit(status)


def raise_value_error() -> None:
    raise ValueError("the third table has no header")


def raise_extraction_error() -> None:
    raise ExtractionError("encrypted", "the PDF is password-protected")


def big_result(sections: int, size: int) -> list[Section]:
    return [Section(f"{i:08d}" + "x" * (size - 8), {"page": i}) for i in range(sections)]


def deeply_nested_result(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def inflate_member(path: str, member: str) -> int:
    with zipfile.ZipFile(path) as zf:
        return len(zf.read(member))  # what a naive OOXML reader does


def leave_a_thread_running() -> str:
    threading.Thread(target=time.sleep, args=(3600,)).start()  # not a daemon
    return "answered"


def limits_seen() -> dict[str, Any]:
    with open("/proc/self/oom_score_adj") as fh:
        oom = int(fh.read())
    return {"data": resource.getrlimit(resource.RLIMIT_DATA),
            "cpu": resource.getrlimit(resource.RLIMIT_CPU),
            "core": resource.getrlimit(resource.RLIMIT_CORE),
            "recursion": sys.getrecursionlimit(), "nice": os.nice(0), "oom": oom,
            "main": sys.modules["__main__"].__dict__.get("__file__")}


def ocr_text(text: str) -> str:
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont
    from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-untyped]

    image = Image.new("RGB", (1654, 2339), "white")  # an A4 page at 200 dpi
    ImageDraw.Draw(image).text((120, 200), text, fill="black",
                               font=ImageFont.load_default(size=48))
    found, _ = RapidOCR()(np.array(image))
    return " ".join(line[1] for line in found or [])


# ---- results ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, content", [
    ("notes.txt", "Plain text, with ünïcode.\nSecond line.".encode()),
    ("table.csv", b"city,population\nLyon,522000\nNantes,320000\n"),
    ("items.json", b'[{"a": 1, "b": "two"}, {"a": 3, "b": null}]'),
])
def test_extraction_in_the_sandbox_matches_extraction_in_process(
        tmp_path: Path, name: str, content: bytes) -> None:
    got = sandbox.run_extract(name, None, file(tmp_path, name, content))
    assert got == extract(name, None, content)
    assert got[1], got


def test_spooled_extraction_streams_every_item_in_batches(tmp_path: Path) -> None:
    """The child appends batches to the parent's spool; nothing but a count comes back."""
    content = b"n,word\n" + b"".join(b"%d,w%d\n" % (i, i) for i in range(2500))
    path = file(tmp_path, "rows.csv", content)
    with Spool() as spool:
        fmt, count, shapes = sandbox.run_extract_spooled("rows.csv", None, path, spool)
        batches = list(spool.batches())
        assert (fmt, count) == ("csv", 2500)
        assert shapes["rows"].rows == 2500
        assert shapes["rows"].schema == {"n": "integer", "word": "string"}
        assert [len(b) for b in batches] == [1000, 1000, 500]
        assert [i for b in batches for i in b] == extract("rows.csv", None, content)[1]
        assert list(spool.items()) == [i for b in batches for i in b]  # readable again


def test_spooled_extraction_past_its_disk_limit_is_resource_limit(tmp_path: Path) -> None:
    content = b"n,word\n" + b"".join(b"%d,w%d\n" % (i, i) for i in range(5000))
    with Spool() as spool, pytest.raises(ExtractionError) as err:
        sandbox.run_extract_spooled("rows.csv", None, file(tmp_path, "rows.csv", content),
                                    spool, spool_max_bytes=10_000)
    assert err.value.code == "resource_limit"


def test_a_large_result_comes_back_whole(tmp_path: Path) -> None:
    # 64 MB through a 64 KB pipe: the parent reads while the child writes, never deadlocks.
    sections = confined(big_result, 4096, 16 * 1024, memory_mb=1024)
    assert len(sections) == 4096 and sections[-1].meta == {"page": 4095}
    assert sections[1234].text.startswith("00001234") and len(sections[1234].text) == 16384


def test_the_child_runs_confined() -> None:
    seen = confined(limits_seen, memory_mb=300, timeout_s=7)
    assert seen["data"] == (450 * MB, 450 * MB)  # DATA_FACTOR x the limit
    assert seen["cpu"][0] >= 7 and seen["core"] == (0, 0)
    assert seen["recursion"] == confine.RECURSION_LIMIT
    assert seen["nice"] >= confine.NICENESS and seen["oom"] == 1000
    assert seen["main"] is None  # the parent's __main__ (here pytest's) is not re-run


def test_a_thread_left_running_does_not_hold_the_answer() -> None:
    started = time.monotonic()
    assert confined(leave_a_thread_running) == "answered"
    assert time.monotonic() - started < 3


def test_the_child_reads_the_descriptor_not_the_path(tmp_path: Path) -> None:
    path = tmp_path / "doomed.txt"
    path.write_bytes(b"still readable")
    with open(path, "rb") as fh:
        path.unlink()  # as when a newer upload deletes the blob mid-sync
        got = confined(sandbox.extract_fd, "doomed.txt", None, confine.Inherited(fh.fileno()))
    assert got == extract("doomed.txt", None, b"still readable")


def test_a_dead_forkserver_is_replaced(tmp_path: Path) -> None:
    path = file(tmp_path, "a.txt", b"before and after")
    expected = extract("a.txt", None, b"before and after")
    assert sandbox.run_extract("a.txt", None, path) == expected
    pid = confine._server(sandbox.PRELOAD)._forkserver_pid  # type: ignore[attr-defined]
    os.kill(pid, signal.SIGKILL)  # as the OOM killer might
    time.sleep(0.2)
    assert sandbox.run_extract("a.txt", None, path) == expected


def test_warm_overhead_is_a_few_milliseconds(tmp_path: Path) -> None:
    path = file(tmp_path, "tiny.txt", b"tiny")
    sandbox.run_extract("tiny.txt", None, path)  # the forkserver is up from here on
    times = []
    for _ in range(15):
        started = time.perf_counter()
        sandbox.run_extract("tiny.txt", None, path)
        times.append(time.perf_counter() - started)
    # ~4 ms on an idle 2-vCPU VM, ~45 ms at load 11 on it; spawn takes 1.4-3.6 s there.
    assert statistics.median(times) < 0.25, times


# ---- typed failures -----------------------------------------------------------------------

def test_extraction_errors_cross_with_their_code_and_message(tmp_path: Path) -> None:
    err = failure(raise_extraction_error)
    assert (err.code, err.message) == ("encrypted", "the PDF is password-protected")

    junk = bytes(range(256)) * 64
    with pytest.raises(ExtractionError) as direct:
        extract("junk.txt", None, junk)
    with pytest.raises(ExtractionError) as boxed:
        sandbox.run_extract("junk.txt", None, file(tmp_path, "junk.txt", junk))
    assert (boxed.value.code, boxed.value.message) == (direct.value.code, direct.value.message)


def test_any_other_exception_is_a_corrupted_file() -> None:
    err = failure(raise_value_error)
    assert err.code == "corrupted_file"
    assert err.message == "ValueError: the third table has no header"


def test_a_result_that_cannot_be_sent_is_a_corrupted_file() -> None:
    err = failure(deeply_nested_result, 100_000)
    assert err.code == "corrupted_file" and "RecursionError" in err.message


def test_a_hang_is_killed_at_the_deadline(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    # Long enough for the child to import this module even on a loaded machine.
    err = failure(sleep_forever, str(pid_file), timeout_s=4.0)
    assert time.monotonic() - started < 8
    assert err.code == "processing_timeout" and "longer than 4 s" in err.message
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists(), "the killed child was not reaped"


def test_a_busy_loop_is_killed_at_the_deadline() -> None:
    started = time.monotonic()
    err = failure(spin, timeout_s=1.5)
    assert err.code == "processing_timeout" and time.monotonic() - started < 4.5


@pytest.mark.parametrize("fn, arg", [(allocate_at_once, 8 << 30),
                                     (allocate_gradually, 8 * MB)])
def test_memory_beyond_the_limit_is_a_resource_limit(fn: Any, arg: int) -> None:
    err = failure(fn, arg, memory_mb=256)
    assert err.code == "resource_limit"
    assert err.message == "extraction exceeded the memory limit of 256 MB"


@pytest.mark.parametrize("shared", [False, True])
def test_resident_memory_over_the_limit_is_killed_by_the_watchdog(shared: bool) -> None:
    # 320 MB under a 256 MB limit: within RLIMIT_DATA (384 MB), or invisible to it (shared).
    started = time.monotonic()
    err = failure(hold, 320 * MB, shared, memory_mb=256, timeout_s=30)
    assert err.code == "resource_limit" and "256 MB" in err.message
    assert time.monotonic() - started < 10


def test_memory_within_the_limit_is_fine() -> None:
    assert confined(allocate_at_once, 100 * MB, memory_mb=256) == 100 * MB


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGABRT, signal.SIGKILL])
def test_death_by_signal_is_a_resource_limit(sig: int) -> None:
    err = failure(crash, sig)
    assert err.code == "resource_limit"
    assert signal.Signals(sig).name in err.message and "256 MB" in err.message


def test_exiting_without_an_answer_is_a_corrupted_file() -> None:
    err = failure(exit_silently, 3)
    assert err.code == "corrupted_file" and "exit status 3" in err.message


# ---- real hostile inputs ------------------------------------------------------------------

def test_200k_deep_json_fails_typed(tmp_path: Path) -> None:
    from tests.e2e.test_hostile_files import deep_json

    path = file(tmp_path, "deep.json", deep_json())
    with pytest.raises(ExtractionError) as info:
        sandbox.run_extract("deep.json", "application/json", path, memory_bytes=512 * MB,
                            timeout_s=30)
    assert info.value.code in {"corrupted_file", "resource_limit"}


def test_a_docx_zip_bomb_fails_typed(tmp_path: Path) -> None:
    from tests.e2e.test_hostile_files import office_bomb

    path = file(tmp_path, "bomb.docx", office_bomb("docx"))
    assert os.path.getsize(path) < 4 * MB  # 2 GiB inflated
    # Inflating it, as a naive reader would, hits the memory limit inside the child...
    err = failure(inflate_member, path, "word/document.xml", memory_mb=512, timeout_s=60)
    assert err.code == "resource_limit"
    # ...and the real extractor, whatever it does, ends typed and in time.
    started = time.monotonic()
    with pytest.raises(ExtractionError) as info:
        sandbox.run_extract("bomb.docx", None, path, memory_bytes=512 * MB, timeout_s=30)
    assert info.value.code in {"resource_limit", "processing_timeout", "corrupted_file",
                               "unsupported_format"}
    assert time.monotonic() - started < 40


def test_concurrent_extractions_do_not_disturb_each_other(tmp_path: Path) -> None:
    path = file(tmp_path, "ok.txt", b"calm text")
    outcomes: dict[str, Any] = {}

    def run(key: str, call: Any) -> None:
        try:
            outcomes[key] = call()
        except ExtractionError as exc:
            outcomes[key] = exc.code

    calls = {"hang": lambda: confined(spin, timeout_s=2),
             "hog": lambda: confined(allocate_gradually, 8 * MB),
             **{f"ok{i}": lambda: sandbox.run_extract("ok.txt", None, path) for i in range(4)}}
    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcomes.pop("hang") == "processing_timeout"
    assert outcomes.pop("hog") == "resource_limit"
    expected = extract("ok.txt", None, b"calm text")
    assert outcomes == {f"ok{i}": expected for i in range(4)}


def test_ocr_works_under_the_default_memory_limit() -> None:
    pytest.importorskip("rapidocr_onnxruntime")
    text = sandbox.run_confined(ocr_text, ("Sandboxed OCR 2024",),
                                memory_bytes=sandbox.DEFAULT_MEMORY_BYTES, timeout_s=120)
    assert "Sandboxed" in text and "2024" in text


def test_a_pixel_bomb_is_refused_typed_in_the_child(tmp_path: Path) -> None:
    from tests.support.files import make_pixel_bomb

    path = file(tmp_path, "bomb.png", make_pixel_bomb(60_000, 60_000))
    with pytest.raises(ExtractionError) as caught:
        sandbox.run_extract("bomb.png", "image/png", path)
    assert caught.value.code == "resource_limit" and "megapixels" in caught.value.message


def test_an_image_only_pdf_is_read_by_ocr_or_refused_typed(tmp_path: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (1275, 1650), "white")
    ImageDraw.Draw(image).text((100, 150), "Scanned lighthouse report", fill="black",
                               font=ImageFont.load_default(size=40))
    buf = io.BytesIO()
    image.save(buf, "PDF", resolution=150)
    path = file(tmp_path, "scan.pdf", buf.getvalue())
    try:
        _, items = sandbox.run_extract("scan.pdf", "application/pdf", path)
    except ExtractionError as exc:
        if exc.code == "unsupported_format":
            pytest.skip("no PDF extractor registered yet")
        raise
    text = " ".join(getattr(item, "text", "") for item in items)
    assert "lighthouse" in text.lower(), items


def test_a_child_that_keeps_writing_may_outlast_its_timeout_up_to_its_limit(
        tmp_path: Path) -> None:
    """A sync reads the extraction's spool as it is written, and its build shares the CPU
    with the (niced) child: each batch restarts the child's clock, up to the sync's limit.
    A child that stalls is still stopped `timeout_s` after its last progress."""
    out = tmp_path / "out"
    out.touch()
    size = lambda: out.stat().st_size  # noqa: E731
    run = lambda seconds, limit: confine.run(  # noqa: E731
        trickle, (str(out), seconds), preload=sandbox.PRELOAD, memory_bytes=256 * MB,
        timeout_s=2.0, progress=size, limit_s=limit)
    assert run(4.0, 30.0) > 10  # twice its timeout, progressing all along: completes
    started = time.monotonic()
    with pytest.raises(confine.Confined) as err:
        run(60.0, 5.0)  # progressing, but past its limit
    assert err.value.code == "timeout" and time.monotonic() - started < 9
    started = time.monotonic()
    with pytest.raises(confine.Confined) as err:
        confine.run(sleep_forever, (str(tmp_path / "pid"),), preload=sandbox.PRELOAD,
                    memory_bytes=256 * MB, timeout_s=2.0, progress=size, limit_s=30.0)
    assert err.value.code == "timeout" and time.monotonic() - started < 6  # no progress
