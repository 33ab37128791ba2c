"""A real dataloft server in a subprocess, on a free loopback port; or, with
`command="worker"`, a `dataloft worker` process (no port: ready once it says so)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]


def backend_env(backend: str, settings: Any, request: Any) -> dict[str, str]:
    """The environment that points a live server at the test backend's database and blobs
    (PostgreSQL + the moto S3 server); empty for the embedded default."""
    if backend != "postgres":
        return {}
    return {**request.getfixturevalue("moto_s3_server").env,
            "DATALOFT_DATABASE_URL": str(settings.database_url),
            "DATALOFT_BLOB_URL": str(settings.blob_url)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    data_dir: Path
    key: str = "dlk_live_test_key_0123456789abcdef"
    env_extra: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    command: str = "serve"

    @property
    def role(self) -> str:
        return "server" if self.command == "serve" else self.command

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def start(self, timeout: float = 60.0) -> LiveServer:
        env = {
            **os.environ,
            "DATALOFT_DATA_DIR": str(self.data_dir),
            "DATALOFT_PORT": str(self.port),
            "DATALOFT_HOST": "127.0.0.1",
            "DATALOFT_BOOTSTRAP_KEY": self.key,
            "DATALOFT_LOG_LEVEL": "warning",
            **self.env_extra,
        }
        self.log_path = self.data_dir.parent / f"{self.role}-{self.port}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        if self.command == "worker":
            env.setdefault("COLUMNS", "200")  # rich would wrap its ready line
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dataloft.cli", self.command], env=env, stdout=log,
            stderr=subprocess.STDOUT, cwd=str(REPO), start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.role} exited early:\n{self.log()}")
            if self._ready():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"{self.role} did not become ready:\n{self.log()}")

    def _ready(self) -> bool:
        if self.command == "worker":  # its ready line, not a traceback quoting the code
            return re.search(r"^dataloft worker \S+: \d+ threads", self.log(), re.M) is not None
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers run, like a crash or an OOM kill."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, the graceful stop; SIGKILL after 15 s."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=30, **kwargs)  # type: ignore[arg-type]
