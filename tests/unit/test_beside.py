"""kit/beside.py: work handed to an idle helper runs beside the caller; with no idle helper
the caller runs it itself when it collects, so nothing queues behind another's work."""

from __future__ import annotations

import contextvars
import threading

import pytest

from dataloft.kit.beside import Beside

WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def test_an_idle_helper_runs_the_work_while_the_caller_goes_on() -> None:
    beside = Beside(helpers=1)
    caller_went_on = threading.Event()

    def work() -> str:
        # Inline, this would wait for the caller, which is this thread: it times out.
        assert caller_went_on.wait(10)
        return threading.current_thread().name

    collect = beside.start(work)
    caller_went_on.set()
    assert collect().startswith("beside")


def test_with_every_helper_busy_the_collector_runs_the_work_itself() -> None:
    beside = Beside(helpers=1)
    release = threading.Event()
    busy = beside.start(lambda: release.wait(10))
    second = beside.start(lambda: threading.get_ident())
    assert second() == threading.get_ident()
    release.set()
    assert busy() is True
    # Done, the helper is idle again.
    assert beside.start(lambda: threading.get_ident())() != threading.get_ident()


def test_no_helpers_means_the_caller_runs_everything() -> None:
    beside = Beside(helpers=0)
    assert beside.start(lambda: threading.get_ident())() == threading.get_ident()


def test_an_error_reaches_the_collector_and_frees_the_helper() -> None:
    beside = Beside(helpers=1)

    def fail() -> None:
        raise LookupError("boom")

    collect = beside.start(fail)
    with pytest.raises(LookupError, match="boom"):
        collect()
    assert beside.start(lambda: threading.get_ident())() != threading.get_ident()


def test_the_helper_sees_the_callers_context_variables() -> None:
    beside = Beside(helpers=1)
    token = WHO.set("request-7")
    try:
        assert beside.start(WHO.get)() == "request-7"
    finally:
        WHO.reset(token)
