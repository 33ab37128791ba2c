"""docs/client.md's examples, run as written, in order, against a live server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.live import REPO, LiveServer


def examples() -> list[str]:
    text = (REPO / "docs" / "client.md").read_text()
    return re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)


def test_client_docs_examples_run(tmp_path: Path) -> None:
    blocks = examples()
    assert len(blocks) >= 4
    server = LiveServer(data_dir=tmp_path / "data").start()
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "DATALOFT_URL": server.url, "DATALOFT_API_KEY": server.key,
           "PYTHONPATH": str(REPO / "src")}
    try:
        for n, block in enumerate(blocks):
            run = subprocess.run([sys.executable, "-c", block], cwd=work, env=env,
                                 capture_output=True, text=True, timeout=180, check=False)
            assert run.returncode == 0, f"example {n + 1} failed:\n{block}\n{run.stderr}"
    finally:
        server.stop()
