"""A real `ringfence serve` process on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from ringfence.testing.ports import free_port


class ServerProcess:
    def __init__(
        self, db: str, *, admin_token: str = "rf_test_admin", port: int | None = None,
        log_path: Path | None = None, env: dict[str, str] | None = None,
    ) -> None:
        self.db = db
        self.admin_token = admin_token
        self.port = port or free_port()
        self.log_path = log_path
        self.extra_env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        env = {**os.environ, "RINGFENCE_ADMIN_TOKEN": self.admin_token, "RINGFENCE_LOG_LEVEL": "warning",
               **self.extra_env}
        self._close_log()
        self._log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ringfence.cli.main", "serve", "--port", str(self.port), "--db", self.db],
            env=env, stdout=self._log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ringfence serve exited with {self.process.returncode}; log: {self.log_path}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"ringfence serve did not become ready within {timeout}s")

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0,
                            headers={"Authorization": f"Bearer {token or self.admin_token}"})

    def kill(self) -> None:
        """kill -9: no clean-up, no flush, as a crash would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
