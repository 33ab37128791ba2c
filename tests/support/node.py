"""Running a Node script of an official SDK against a live server, one JSON line per step."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.live import LiveServer


def run_steps(node: str, script: Path, cwd: Path, server: LiveServer,
              timeout: float) -> tuple[list[dict[str, Any]], str]:
    """Run the script; fail unless it exits 0 and every step, ending with 'done', is ok.
    Returns the steps and the report printed on failure."""
    env = {**os.environ, "BASE_URL": server.url, "API_KEY": server.key, "NODE_NO_WARNINGS": "1"}
    try:
        proc = subprocess.run([node, str(script)], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
        pytest.fail(f"{script.name} timed out\n--- stdout\n{out}\n"
                    f"--- server log\n{server.log()[-8000:]}")
    steps = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    report = (f"{script.name} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n"
              f"--- stderr\n{proc.stderr}\n--- server log (tail)\n{server.log()[-8000:]}")
    assert proc.returncode == 0, report
    assert steps and steps[-1] == {"step": "done", "ok": True}, report
    assert all(s.get("ok") is True for s in steps), report
    return steps, report
