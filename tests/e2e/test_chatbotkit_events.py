"""@chatbotkit/sdk's event log client, unmodified, against a live server (js/events.mjs):
`event.log.subscribe` receives a sync completion live; `event.log.export` answers as JSON
and as JSONL, filtered by meta. Skipped only when `node` is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_chatbotkit_sdk import node, sdk_installed  # noqa: F401 - fixtures
from tests.support.live import LiveServer
from tests.support.node import run_steps

SCRIPT = Path(__file__).resolve().parent / "js" / "events.mjs"


@pytest.mark.timeout(300)
def test_sdk_event_log_subscribe_and_export(node: str, sdk_installed: Path,  # noqa: F811
                                            tmp_path: Path) -> None:
    server = LiveServer(data_dir=tmp_path / "data",
                        env_extra={"DATALOFT_EVENT_POLL_SECONDS": "0.1"}).start()
    try:
        steps, _ = run_steps(node, SCRIPT, sdk_installed, server, timeout=240)
    finally:
        server.stop()
    live = next(s for s in steps if s["step"].startswith("event.log.subscribe"))
    assert live["seen"][-1] == "sync.completed"
