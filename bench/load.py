"""Driving a server: wrk with a Lua script when installed, else a bounded Python generator."""

from __future__ import annotations

import http.client
import itertools
import json
import math
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.config import BENCH_DIR

WRK = "/usr/bin/wrk"


@dataclass(frozen=True)
class RequestSpec:
    """The request a test repeats: bodies are cycled and "{n}" becomes a request counter."""

    method: str
    path: str
    headers: dict[str, str]
    bodies: tuple[str, ...] = ()

    def body(self, n: int) -> str | None:
        if not self.bodies:
            return None
        return self.bodies[(n - 1) % len(self.bodies)].replace("{n}", str(n))


POINTS = tuple(float(p) for p in range(1, 100)) + (99.5, 99.9)


@dataclass
class LoadResult:
    """Throughput and latency of one fixed-duration run (or of several rounds merged)."""

    requests: int
    seconds: float
    quantiles: list[tuple[float, float]]  # (percent, latency ms), increasing
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def percentile(self, pct: float) -> float | None:
        """Return the latency (ms) at a percent, interpolated between the known quantiles."""
        return _invert([(self, 1.0)], pct)

    @property
    def p50_ms(self) -> float | None:
        return self.percentile(50)

    @property
    def p99_ms(self) -> float | None:
        return self.percentile(99)


def merge(results: list[LoadResult]) -> LoadResult:
    """Merge rounds of one test: totals add up, latency quantiles of the mixture."""
    total = sum(r.requests for r in results)
    weighted = [(r, r.requests / total) for r in results if r.requests and r.quantiles]
    errors: dict[str, int] = {}
    for r in results:
        for key, value in r.errors.items():
            errors[key] = errors.get(key, 0) + value
    quantiles = [(p, q) for p in POINTS if (q := _invert(weighted, p)) is not None]
    return LoadResult(total, sum(r.seconds for r in results), quantiles, errors)


def _cdf(result: LoadResult, x: float) -> float:
    """Return the share of requests of a result faster than x ms (linear between quantiles)."""
    qs = result.quantiles
    if x < qs[0][1]:
        return 0.0
    if x >= qs[-1][1]:
        return 1.0
    for (p0, x0), (p1, x1) in zip(qs, qs[1:], strict=False):
        if x0 <= x < x1:
            return (p0 + (p1 - p0) * (x - x0) / (x1 - x0)) / 100
    return qs[-1][0] / 100


def _invert(weighted: list[tuple[LoadResult, float]], pct: float) -> float | None:
    """Return the smallest latency at which the mixture's CDF reaches pct (bisection)."""
    weighted = [(r, w) for r, w in weighted if r.quantiles]
    if not weighted:
        return None
    if len(weighted) == 1:
        exact = dict(weighted[0][0].quantiles).get(pct)
        if exact is not None:
            return exact
    lo = min(r.quantiles[0][1] for r, _ in weighted)
    hi = max(r.quantiles[-1][1] for r, _ in weighted)
    for _ in range(60):
        mid = (lo + hi) / 2
        if sum(w * _cdf(r, mid) for r, w in weighted) >= pct / 100:
            hi = mid
        else:
            lo = mid
    return hi


def run(generator: str, port: int, spec: RequestSpec, duration: float,
        connections: int) -> LoadResult:
    """Send the spec's requests to 127.0.0.1:port for `duration` seconds over `connections`."""
    if generator == "wrk":
        return run_wrk(port, spec, duration, connections)
    return run_python(port, spec, duration, connections)


def run_wrk(port: int, spec: RequestSpec, duration: float, connections: int) -> LoadResult:
    """Run wrk (one thread, so the Lua counter is shared) and parse its BENCHJSON line."""
    with tempfile.NamedTemporaryFile("w", suffix=".spec", delete=False) as f:
        f.write(f"{spec.method}\n{spec.path}\n")
        for name, value in spec.headers.items():
            f.write(f"{name}: {value}\n")
        f.write("\n")
        for body in spec.bodies:
            assert "\n" not in body, "bodies are one line each"
            f.write(body + "\n")
    try:
        completed = subprocess.run(
            [WRK, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "30s",
             "-s", str(BENCH_DIR / "wrk.lua"), f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=duration + 60,
            env={**os.environ, "BENCH_SPEC": f.name}, check=False)
    finally:
        Path(f.name).unlink(missing_ok=True)
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        output = completed.stderr or completed.stdout
        raise RuntimeError(f"wrk failed ({completed.returncode}): {output}")
    raw = json.loads(line.removeprefix("BENCHJSON "))
    errors = {k: raw[k] for k in ("connect", "read", "write", "status", "timeout") if raw[k]}
    quantiles = [(float(p), us / 1000) for p, us in raw["quantiles_us"]]
    return LoadResult(raw["requests"], raw["duration_us"] / 1e6, quantiles, errors)


def run_python(port: int, spec: RequestSpec, duration: float, connections: int) -> LoadResult:
    """A bounded load generator: a thread per connection, fixed duration, keep-alive if allowed."""
    counter = itertools.count(1)
    lock = threading.Lock()
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.monotonic() + duration

    def worker() -> None:
        conn: http.client.HTTPConnection | None = None
        mine: list[float] = []
        while time.monotonic() < deadline:
            with lock:
                n = next(counter)
            body = spec.body(n)
            started = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                conn.request(spec.method, spec.path, body=body, headers=spec.headers)
                response = conn.getresponse()
                response.read()
                mine.append(time.perf_counter() - started)
                if response.status >= 400:
                    with lock:
                        errors["status"] = errors.get("status", 0) + 1
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                with lock:
                    errors["read"] = errors.get("read", 0) + 1
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with lock:
            latencies.extend(mine)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 60)
    elapsed = time.monotonic() - started
    latencies.sort()
    quantiles = [(p, _percentile(latencies, p) * 1000) for p in POINTS] if latencies else []
    return LoadResult(len(latencies), elapsed, quantiles, errors)


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    index = min(len(values) - 1, max(0, math.ceil(pct / 100 * len(values)) - 1))  # nearest rank
    return values[index]


def one(port: int, spec: RequestSpec, n: int = 1) -> tuple[int, bytes]:
    """Send one request of the spec and return the status and body (for checks)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(spec.method, spec.path, body=spec.body(n), headers=spec.headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
