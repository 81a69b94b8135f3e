"""The benchmark run: start the servers, load each N, drive every test, report, clean up."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import FrameType

from bench import dataset, load, peer, report, scenarios
from bench.config import ROOT, Settings, parse
from bench.dataset import AppData
from bench.report import APP, HELLO, PEER, Row
from bench.servers import RssSampler, Server, ServerSet, free_port, gunicorn_args

ROUND_SECONDS = 2  # wrk takes whole seconds
SLOW_BLOCK_MAX = 60.0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    settings = parse(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="dpms-bench-"))
    servers = ServerSet(log_dir)
    previous = signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    ok = False
    try:
        with RssSampler().running() as sampler, dataset.fresh_database(settings) as data:
            try:
                rows, notes = _run(settings, servers, sampler, data)
            finally:
                servers.close()  # before a PostgreSQL database is dropped
            minutes = (time.monotonic() - started) / 60
            notes.insert(0, _activity_note(data))
            _write(settings, data, rows, notes, sampler.peak_mb(APP), minutes)
        ok = True
        return 0
    except KeyboardInterrupt:
        print("\nInterrupted: servers stopped.", file=sys.stderr)
        return 130
    finally:
        servers.close()
        signal.signal(signal.SIGTERM, previous)
        if ok:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            print(f"Server logs kept in {log_dir}", file=sys.stderr)


def _activity_note(data: AppData) -> str:
    """Say whether the provisioning activity log recorded the run's SCIM requests."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(data.database_url)
    try:
        if not inspect(engine).has_table("provisioning_activity"):
            return "Provisioning activity log: not present in this version of the app."
        with engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM provisioning_activity")).scalar()
        return (f"Provisioning activity log: on; it recorded {count:,} SCIM requests "
                "during the run.")
    finally:
        engine.dispose()


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _say(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", flush=True)


def _start_app(servers: ServerSet, settings: Settings, data: AppData) -> Server:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": data.database_url, "SECRET_KEY": "bench-secret-key",
           "EXTERNAL_URL": f"http://127.0.0.1:{port}", "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "gunicorn", *gunicorn_args(settings, port), "app:app"]
    return servers.start(APP, command, cwd=ROOT, env=env, port=port,
                         base_path=f"/scim/v2/{data.org_key}",
                         ready_path=f"/scim/v2/{data.org_key}/ServiceProviderConfig",
                         ready_timeout=60)


def _start_hello(servers: ServerSet, settings: Settings) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", *gunicorn_args(settings, port),
               "bench.hello_app:app"]
    return servers.start(HELLO, command, cwd=ROOT, env={**os.environ}, port=port, base_path="",
                         ready_path="/", ready_timeout=60)


def _run(settings: Settings, servers: ServerSet, sampler: RssSampler,
         data: AppData) -> tuple[list[Row], list[str]]:
    notes: list[str] = []
    _say(f"database: {data.backend}; preparing schema, organisation and token")
    dataset.prepare(data)
    app = _start_app(servers, settings, data)
    hello = _start_hello(servers, settings)
    for server in (app, hello):
        sampler.watch(server)
    rows: list[Row] = []
    for n in settings.sizes:
        started = time.monotonic()
        dataset.grow(data, n, settings.big_group)
        _say(f"N = {n:,}: app loaded in {time.monotonic() - started:.1f}s "
             f"({data.groups[dataset.BIG_GROUP]['members']:,} members in the big group)")
        targets = [_target(app, data), _hello_target(hello, data)]
        peer_server = None
        if settings.peer and n > settings.peer_max:
            notes.append(f"N = {n:,}: scim2-server not run (N > BENCH_PEER_MAX = "
                         f"{settings.peer_max:,}): {peer.TOO_BIG}")
        if settings.peer and n <= settings.peer_max:
            started = time.monotonic()
            peer_server = peer.start_peer(servers, settings, n, data.token, dataset.SPARES)
            sampler.peaks.pop(PEER, None)
            sampler.watch(peer_server)
            _say(f"N = {n:,}: scim2-server loaded in {time.monotonic() - started:.1f}s")
            notes.append(f"N = {n:,}: scim2-server took {time.monotonic() - started:.0f}s to "
                         f"start and load (in-process storage calls).")
            targets.insert(1, _peer_target(peer_server, data, n))
        try:
            for test in settings.tests:
                rows.append(_run_test(settings, sampler, test, n, targets, data, notes))
        finally:
            if peer_server is not None:
                sampler.unwatch(peer_server)
                servers.stop(peer_server)
    if settings.peer:
        notes.append(peer.PEER_NOTE)
    return rows, notes


def _target(server: Server, data: AppData) -> scenarios.Target:
    return scenarios.Target(APP, server.port, server.base_path, data.token, data.users,
                            data.spares, data.groups)


def _hello_target(server: Server, data: AppData) -> scenarios.Target:
    return scenarios.Target(HELLO, server.port, f"/scim/v2/{data.org_key}", data.token,
                            data.users, data.spares, data.groups, hello=True)


def _peer_target(server: Server, data: AppData, n: int) -> scenarios.Target:
    manifest = server.manifest
    return scenarios.Target(PEER, server.port, server.base_path, data.token, n,
                            list(manifest["spares"]), dict(manifest["groups"]))  # type: ignore[call-overload]


def _run_test(settings: Settings, sampler: RssSampler, test: str, n: int,
              targets: list[scenarios.Target], data: AppData, notes: list[str]) -> Row:
    """Check each server's answer, warm it up, then drive the servers in alternating rounds.

    Rounds of a few seconds, taking turns, expose the servers to the same
    background noise. A server slower than a quarter of a round per request runs
    alone, under the Python generator, which waits for the requests in flight at
    the end instead of cutting them off (wrk would count none of them).
    """
    label = scenarios.LABELS[test]
    if test == "patch_big":
        label += f" ({data.groups[dataset.BIG_GROUP]['members']:,} members)"
    row = Row(n, test, label)
    slice_s = ROUND_SECONDS if settings.duration >= 2 * ROUND_SECONDS else settings.duration
    rounds = max(1, round(settings.duration / slice_s))
    fast: list[scenarios.Target] = []
    slow: list[scenarios.Target] = []
    timing: dict[str, float] = {}
    for target in targets:
        spec, check = scenarios.build(test, target)
        started = time.monotonic()
        try:
            problem = check(*load.one(target.port, spec, 0))  # counter 0: the load never uses it
        except OSError as exc:
            problem = f"no answer ({exc})"
        first = time.monotonic() - started
        if problem:
            notes.append(f"N = {n:,}, {test}, {target.name}: not measured, wrong answer: {problem}")
            _say(f"N = {n:,} {test:<12} {target.name:<12} WRONG ANSWER: {problem[:200]}")
            row.results[target.name] = None
            continue
        if first <= slice_s / 4:
            load.run(settings.load_generator, target.port, scenarios.build(test, target)[0],
                     min(1.0, slice_s), settings.connections)
            _drain(target)
        started = time.monotonic()
        load.one(target.port, scenarios.build(test, target)[0], 0)
        timing[target.name] = time.monotonic() - started
        (slow if timing[target.name] > slice_s / 4 else fast).append(target)
    parts: dict[str, list[load.LoadResult]] = {t.name: [] for t in fast + slow}
    for r in range(rounds):
        for target in fast[r % len(fast):] + fast[:r % len(fast)] if fast else []:
            spec = scenarios.build(test, target)[0]
            parts[target.name].append(load.run(settings.load_generator, target.port, spec,
                                               slice_s, settings.connections))
            sampler.sample()
            _drain(target)
    for target in slow:
        spec = scenarios.build(test, target)[0]
        block = min(SLOW_BLOCK_MAX, max(rounds * slice_s, 3 * timing[target.name]))
        parts[target.name].append(load.run("python", target.port, spec, block,
                                           settings.connections))
        sampler.sample()
        notes.append(f"N = {n:,}, {test}, {target.name}: slow ({timing[target.name]:.1f} s for "
                     f"one request): measured alone for {block:.0f} s by the Python generator, "
                     "counting the requests in flight at the end.")
    for target in fast + slow:
        result = load.merge(parts[target.name])
        row.results[target.name] = result
        row.rss_mb[target.name] = sampler.peak_mb(target.name)
        if result.error_count:
            notes.append(f"N = {n:,}, {test}, {target.name}: {result.error_count} failed requests "
                         f"{result.errors}")
        if result.requests == 0:
            notes.append(f"N = {n:,}, {test}, {target.name}: no request completed in "
                         f"{result.seconds:.0f} s.")
        _say(f"N = {n:,} {test:<12} {target.name:<12} {result.rps:8.1f} req/s  "
             f"p50 {_ms(result.p50_ms)}  p99 {_ms(result.p99_ms)}"
             + (f"  errors {result.errors}" if result.error_count else ""))
    return row


def _drain(target: scenarios.Target) -> None:
    """Wait until the requests the load generator left behind are served (sync workers finish
    them even after the client is gone), so they do not slow the next measurement."""
    spec = load.RequestSpec("GET", f"{target.base_path}/ServiceProviderConfig", {})
    for _ in range(2):
        with suppress(OSError):
            load.one(target.port, spec)


def _ms(value: float | None) -> str:
    return "       –" if value is None else f"{value:8.2f} ms"


def _generator_label(settings: Settings) -> str:
    if settings.load_generator == "wrk":
        out = subprocess.run([load.WRK, "-v"], capture_output=True, text=True, check=False)
        version = (out.stdout or out.stderr).split("[")[0].strip() or "wrk"
        return f"{version} (1 thread, Lua script bench/wrk.lua)"
    return "bounded Python generator (a thread and http.client connection per connection)"


def _write(settings: Settings, data: AppData, rows: list[Row], notes: list[str],
           app_peak: float | None, minutes: float) -> None:
    big_members = {n: min(settings.big_group, n) for n in settings.sizes}
    verdicts = report.evaluate(rows, settings.sizes, app_peak, big_members)
    backend = data.backend + (f" {sqlite3.sqlite_version}" if data.backend == "SQLite" else "")
    header = [
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}; run took {minutes:.1f} min",
        f"- Machine: {os.cpu_count()} CPUs (nproc), {platform.platform()}, "
        f"Python {platform.python_version()}",
        f"- Database: {backend}",
        f"- Servers: gunicorn {metadata.version('gunicorn')}, {settings.workers} "
        f"{settings.worker_class} workers, --preload, 127.0.0.1; the same for all three",
        f"- Load: {_generator_label(settings)}, {settings.connections} connections, "
        f"{settings.duration:g} s per test and server (after a short warm-up)",
        "- app = this project (`app:app`); hello = bare Flask answering `{\"hello\": \"world\"}` "
        "(bench/hello_app.py), the ceiling; scim2-server = the peer",
        "- Only ratios within this run mean anything: the machine is shared and noisy.",
    ]
    document = report.document(header, rows, verdicts, notes)
    settings.out.parent.mkdir(parents=True, exist_ok=True)
    settings.out.write_text(document)
    raw_dir = settings.out.parent / "raw"
    raw_dir.mkdir(exist_ok=True)
    raw = [{"n": r.n, "test": r.test, "rss_mb": r.rss_mb,
            "results": {k: v and {**v.__dict__, "rps": v.rps} for k, v in r.results.items()}}
           for r in rows]
    (raw_dir / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json").write_text(json.dumps(raw, indent=1))
    print("\n" + document)
    print(f"Written to {settings.out}")
