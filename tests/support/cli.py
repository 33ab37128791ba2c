"""The `dataloft` command line as an operator runs it: a subprocess against a deployment's
database (a data directory, or DATALOFT_DATABASE_URL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from dataloft.config import Settings


def cli_env(settings: Settings | None = None, data_dir: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "200"}
    if settings is not None:
        env["DATALOFT_DATA_DIR"] = str(settings.data_dir)
        if settings.database_url:
            env["DATALOFT_DATABASE_URL"] = settings.database_url
    if data_dir is not None:
        env["DATALOFT_DATA_DIR"] = str(data_dir)
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dataloft.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def cli_json(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = run_cli(env, *args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    out: dict[str, Any] = json.loads(done.stdout)
    return out
