"""The peer scim2-server: a throwaway venv (bench/.peer-venv) and how to start it under gunicorn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from bench.config import BENCH_DIR, Settings
from bench.servers import Server, ServerSet, free_port, gunicorn_args

PEER_VENV = BENCH_DIR / ".peer-venv"
PEER_PACKAGE = "scim2-server==0.8.3"
PEER_NOTE = (
    "scim2-server 0.8.3 (in memory) as a WSGI app under the same gunicorn configuration; "
    "its own `scim2-server` command serves one process with wsgiref. Data is preloaded in the "
    "gunicorn master, so each worker holds a copy and a write lands in one worker's memory."
)

TOO_BIG = (
    "it keeps every user as a pydantic model in each worker's memory; measured here on "
    "2026-11-28: loading 100,000 users took 192 s, a worker held 705-738 MB, one PATCH of the "
    "10,000-member group took 18.5 s and no request completed in a 4 s window "
    "(bench/results/peer-100k.md)."
)


def ensure_venv() -> Path:
    """Create bench/.peer-venv with scim2-server and our gunicorn version; return its bin dir."""
    gunicorn = f"gunicorn=={metadata.version('gunicorn')}"
    wanted = f"{PEER_PACKAGE} {gunicorn}"
    marker = PEER_VENV / ".bench-installed"
    bindir = PEER_VENV / "bin"
    if marker.exists() and marker.read_text() == wanted:
        return bindir
    print(f"Installing {wanted} into {PEER_VENV} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True,
                   timeout=300)
    subprocess.run([str(bindir / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", PEER_PACKAGE, gunicorn],
                   check=True, timeout=600)
    marker.write_text(wanted)
    return bindir


def start_peer(servers: ServerSet, settings: Settings, users: int, token: str,
               spares: int) -> Server:
    """Start scim2-server preloaded with `users` users and the two groups."""
    bindir = ensure_venv()
    port = free_port()
    fd, manifest_path = tempfile.mkstemp(prefix="peer-manifest-", suffix=".json",
                                         dir=servers.log_dir)
    os.close(fd)
    env = {
        "PATH": f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PEER_USERS": str(users), "PEER_SPARES": str(spares),
        "PEER_BIG_GROUP": str(settings.big_group), "PEER_TOKEN": token,
        "PEER_MANIFEST": manifest_path, "SCIM2_SERVER_SECRET": "bench-cursor-secret",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    command = [str(bindir / "gunicorn"), *gunicorn_args(settings, port), "peer_app:app"]
    # Loading is single-threaded pydantic work: about 0.5 ms a user here.
    timeout = 120 + users / 500
    server = servers.start("scim2-server", command, cwd=BENCH_DIR, env=env, port=port,
                           base_path="/v2", ready_path="/v2/ServiceProviderConfig",
                           ready_timeout=timeout, note=PEER_NOTE)
    server.manifest = json.loads(Path(manifest_path).read_text())
    return server
