"""Start a throwaway PostgreSQL server from Debian's binaries for the test run.

pytest-postgresql runs `initdb` as the current user, which PostgreSQL refuses
for root (our CI runs as root), so we start the server ourselves, as the
`postgres` system user when we are root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PgServer:
    """A running PostgreSQL server and how to stop it."""

    url: str
    datadir: Path
    pg_ctl: str
    run_as: list[str]

    def stop(self) -> None:
        subprocess.run([*self.run_as, self.pg_ctl, "-D", str(self.datadir), "-m", "immediate",
                        "stop"], capture_output=True, check=False)
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def find_bindir() -> Path | None:
    """Return the newest installed PostgreSQL bin directory, if any."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start() -> PgServer | None:
    """Start a server on a free loopback port; return None when PostgreSQL is not installed."""
    bindir = find_bindir()
    if bindir is None:
        return None
    root = Path(tempfile.mkdtemp(prefix="dpms-pg-"))
    datadir = root / "data"
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres",
                    "-A", "trust", "-E", "UTF8", "--no-sync"], check=True,
                   capture_output=True, env=env)
    port = _free_port()
    options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
               "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
               "-c max_connections=200")
    subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(datadir), "-o", options,
                    "-l", str(root / "log"), "-w", "start"], check=True, capture_output=True,
                   env=env)
    server = PgServer(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", datadir,
                      str(bindir / "pg_ctl"), run_as)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError("PostgreSQL did not start")
