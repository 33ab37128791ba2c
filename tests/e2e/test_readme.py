"""The README's first-run walkthrough, run literally against a live server: the shell block
under "A first dataset, with curl", with only its two placeholders (`DL`, `KEY`) set to
the test server's. It must end with a search that finds the sentence it uploaded."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.support.live import REPO, LiveServer


def walkthrough() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("### A first dataset, with curl", 1)[1]
    return section.split("```sh\n", 1)[1].split("\n```", 1)[0]


def test_readme_walkthrough_finds_the_sentence(tmp_path: Path) -> None:
    script = walkthrough()
    lines = script.splitlines()
    # The placeholders the reader fills in; everything else runs as written.
    assert lines[0].startswith("export DL=") and lines[1].startswith("export KEY=dlk_...")
    server = LiveServer(data_dir=tmp_path / "data").start()
    try:
        env = {**os.environ, "DL": server.url, "KEY": server.key}
        run = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(lines[2:])],
                             env=env, capture_output=True, text=True, timeout=120, check=False)
    finally:
        server.stop()
    assert run.returncode == 0, run.stderr
    out = run.stdout.splitlines()
    assert all(line.strip() for line in out), "every answer ends with its own newline"
    synced = json.loads(out[-2])
    assert synced["done"] is True and synced["status"] == "completed", synced
    found = json.loads(out[-1])
    assert found["records"], f"the search found nothing: {found}"
    assert "cobalt blue" in found["records"][0]["text"]
