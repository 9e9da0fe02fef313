"""A real `monitor` host for the tests, in a temporary data directory.

The binary is `$MONITOR_BIN`, else `target/debug/monitor` of the repository
this directory is in (build it with `cargo build -p monitor-host --bin monitor`).
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[3]


def monitor_bin() -> str:
    path = os.environ.get("MONITOR_BIN") or str(REPO / "target" / "debug" / "monitor")
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"no monitor binary at {path}; build it with 'cargo build -p monitor-host --bin monitor' or set MONITOR_BIN"
        )
    return path


def wait_for(what: str, limit: float, check: Any) -> Any:
    """Polls `check` until it returns something other than None; fails after `limit` seconds."""
    deadline = time.monotonic() + limit
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit} s waiting for {what}")
        time.sleep(0.02)


class Host:
    """`monitor run` on a data directory of its own, without plugins; `config`, the
    host configuration's text."""

    def __init__(self, root: Optional[str] = None, config: Optional[str] = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="monitor-py-") if root is None else None
        self.root = Path(root or self._tmp.name)  # type: ignore[union-attr]
        self.data = self.root / "data"
        self.plugins = self.root / "plugins"
        self.plugins.mkdir(parents=True, exist_ok=True)
        self.log_path = self.root / "host.log"
        self.process: Optional[subprocess.Popen] = None
        self.config = config

    def start(self, limit: float = 30.0) -> "Host":
        """Starts the host and waits until its API answers (its daemon.json names it and /v1/health is 200)."""
        env = {k: v for k, v in os.environ.items() if k not in ("MONITOR_URL", "MONITOR_TOKEN")}
        env.update(MONITOR_DATA_DIR=str(self.data), MONITOR_LOG="info", NO_COLOR="1")
        log = open(self.log_path, "ab")
        args = [monitor_bin(), "run", "--data-dir", str(self.data), "--plugins", str(self.plugins)]
        if self.config is not None:
            (self.root / "host.toml").write_text(self.config)
            args += ["--config", str(self.root / "host.toml")]
        self.process = subprocess.Popen(
            args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()
        wait_for("the host to answer", limit, self._ready)
        return self

    def _ready(self) -> Optional[bool]:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"monitor exited ({self.process.returncode}) while starting:\n{self.log()}")
        try:
            info = json.loads((self.data / "daemon.json").read_text())
        except (OSError, ValueError):
            return None
        if info.get("pid") != self.process.pid:
            return None  # a daemon.json left by an earlier host
        try:
            with urllib.request.urlopen(f"{self.url}/v1/health", timeout=2, context=self.tls) as response:
                return True if response.status == 200 else None
        except OSError:
            return None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stops the host (SIGKILL: as a crash would) and waits for it to exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        self.process = None

    def close(self) -> None:
        self.stop(signal.SIGKILL)
        if self._tmp is not None:
            self._tmp.cleanup()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def addr(self) -> str:
        return json.loads((self.data / "daemon.json").read_text())["addr"]

    @property
    def url(self) -> str:
        return f"{'https' if self.ca else 'http'}://{self.addr}"

    @property
    def ca(self) -> Optional[str]:
        """With TLS on the API: the certificate file to trust."""
        return json.loads((self.data / "daemon.json").read_text()).get("tls")

    @property
    def tls(self) -> Optional[ssl.SSLContext]:
        return ssl.create_default_context(cafile=self.ca) if self.ca else None

    @property
    def token(self) -> str:
        return (self.data / "api-token").read_text().strip()

    def get(self, path: str) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.tls) as response:
                return json.load(response)
        except urllib.error.HTTPError as e:
            raise AssertionError(f"GET {path}: {e.code} {e.read().decode(errors='replace')}") from None

    def tree(self, run: str) -> Dict[str, Dict[str, Any]]:
        """The run's nodes by path."""
        return {node["path"]: node for node in self.get(f"/v1/runs/{run}")}

    def events(self, run: str) -> List[Dict[str, Any]]:
        return self.get(f"/v1/runs/{run}/events")
