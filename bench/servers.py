"""Starting the three servers under one gunicorn configuration, and stopping them all."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from bench.config import Settings


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gunicorn_args(settings: Settings, port: int) -> list[str]:
    """Return the gunicorn options every server runs with (the same for all three)."""
    return [
        "--workers", str(settings.workers), "--worker-class", settings.worker_class,
        "--threads", "2" if settings.worker_class == "gthread" else "1",
        "--bind", f"127.0.0.1:{port}", "--preload", "--no-control-socket",
        "--timeout", "120", "--graceful-timeout", "5", "--log-level", "warning",
    ]


@dataclass
class Server:
    """One running gunicorn master, its port and the URL prefix of its SCIM endpoints."""

    name: str
    port: int
    base_path: str
    process: subprocess.Popen[bytes]
    log_path: Path
    note: str = ""
    manifest: dict[str, object] = field(default_factory=dict)

    def worker_pids(self) -> list[int]:
        """Return the pids of the gunicorn workers (children of the master)."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children")
        try:
            return [int(p) for p in children.read_text().split()]
        except OSError:
            return _children_by_scan(pid)

    def stop(self) -> None:
        """Stop the master and its workers (the process group we started), then reap it."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _children_by_scan(parent: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                pids.append(int(entry.name))
    return pids


class ServerSet:
    """Every server this run started; `close()` stops them all, whatever happened."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.servers: list[Server] = []

    def start(self, name: str, command: list[str], *, cwd: Path, env: dict[str, str], port: int,
              base_path: str, ready_path: str, ready_timeout: float, note: str = "") -> Server:
        """Start a server in its own process group and wait until it answers."""
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("ab")
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        server = Server(name, port, base_path, process, log_path, note)
        self.servers.append(server)
        wait_ready(server, ready_path, ready_timeout)
        return server

    def stop(self, server: Server) -> None:
        """Stop one server and forget it."""
        server.stop()
        if server in self.servers:
            self.servers.remove(server)

    def close(self) -> None:
        """Stop every server still running."""
        while self.servers:
            self.stop(self.servers[-1])


def wait_ready(server: Server, path: str, timeout: float) -> None:
    """Poll the server until it answers HTTP (any status), with bounded retries."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}; "
                               f"see {server.log_path}:\n{_tail(server.log_path)}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            if len(server.worker_pids()) > 0:
                return
        except OSError:
            pass
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    raise RuntimeError(f"{server.name} did not answer within {timeout:.0f}s; see {server.log_path}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class RssSampler:
    """Samples VmHWM/VmRSS of every worker of the watched servers in the background."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peaks: dict[str, int] = {}  # server name -> peak KiB of any one worker
        self._watched: list[Server] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def watch(self, server: Server) -> None:
        with self._lock:
            self._watched.append(server)

    def unwatch(self, server: Server) -> None:
        with self._lock:
            if server in self._watched:
                self._watched.remove(server)

    def sample(self) -> None:
        """Take one sample now."""
        with self._lock:
            watched = list(self._watched)
        for server in watched:
            for pid in server.worker_pids():
                peak = max(_status_kib(pid, "VmHWM"), _status_kib(pid, "VmRSS"))
                if peak > self.peaks.get(server.name, 0):
                    self.peaks[server.name] = peak

    def peak_mb(self, name: str) -> float | None:
        kib = self.peaks.get(name)
        return round(kib / 1024, 1) if kib else None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    @contextmanager
    def running(self) -> Iterator[RssSampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=2)
