"""Benchmark settings from the command line and the environment (BENCH_*, DATABASE_URL)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DEFAULT_SIZES = (1_000, 10_000, 100_000)
TEST_NAMES = ("filter", "list", "post", "patch_big", "patch_small", "group_filter")


@dataclass(frozen=True)
class Settings:
    """What one benchmark run does."""

    sizes: tuple[int, ...]
    duration: float
    connections: int
    workers: int
    worker_class: str
    database_url: str | None
    tests: tuple[str, ...]
    peer: bool
    peer_max: int
    big_group: int
    out: Path
    load_generator: str  # "wrk" or "python"


def _ints(text: str) -> tuple[int, ...]:
    values = tuple(sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()}))
    if not values or min(values) < 10:
        raise argparse.ArgumentTypeError("sizes are comma-separated integers of at least 10")
    return values


def _tests(text: str) -> tuple[str, ...]:
    wanted = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = set(wanted) - set(TEST_NAMES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown tests {sorted(unknown)}; known: {TEST_NAMES}")
    return tuple(t for t in TEST_NAMES if t in wanted)


def parse(argv: list[str] | None = None) -> Settings:
    """Return the settings: command-line options win over BENCH_* variables."""
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sizes = env("BENCH_SIZES", ",".join(str(n) for n in DEFAULT_SIZES))
    parser.add_argument("--sizes", type=_ints, default=_ints(sizes),
                        help="user counts N (BENCH_SIZES, default 1000,10000,100000)")
    parser.add_argument("--duration", type=float, default=float(env("BENCH_DURATION", "10")),
                        help="seconds per test and server (BENCH_DURATION, default 10)")
    parser.add_argument("--connections", type=int, default=int(env("BENCH_CONNECTIONS", "4")))
    parser.add_argument("--workers", type=int, default=int(env("BENCH_WORKERS", "2")))
    parser.add_argument("--worker-class", default=env("BENCH_WORKER_CLASS", "sync"),
                        choices=("sync", "gthread"))
    tests = env("BENCH_TESTS", ",".join(TEST_NAMES))
    parser.add_argument("--tests", type=_tests, default=_tests(tests),
                        help=f"subset of {','.join(TEST_NAMES)} (BENCH_TESTS)")
    parser.add_argument("--no-peer", dest="peer", action="store_false",
                        default=env("BENCH_PEER", "1") not in ("0", "no", "false"),
                        help="skip scim2-server (BENCH_PEER=0)")
    parser.add_argument("--peer-max", type=int, default=int(env("BENCH_PEER_MAX", "10000")),
                        help="largest N scim2-server is loaded with (BENCH_PEER_MAX, default "
                             "10000: at 100,000 it needs minutes to load and ~700 MB a worker)")
    parser.add_argument("--big-group", type=int, default=int(env("BENCH_BIG_GROUP", "10000")),
                        help="members of the large group (capped at N)")
    # A PostgreSQL run keeps its own file, so it never replaces the SQLite figures.
    default_name = ("latest-postgresql.md" if env("DATABASE_URL", "").startswith("postgres")
                    else "latest.md")
    out = env("BENCH_OUT", str(BENCH_DIR / "results" / default_name))
    parser.add_argument("--out", type=Path, default=Path(out), help="the Markdown report")
    parser.add_argument("--load-generator", choices=("auto", "wrk", "python"),
                        default=env("BENCH_LOAD_GENERATOR", "auto"))
    args = parser.parse_args(argv)
    generator = args.load_generator
    if generator == "auto":
        generator = "wrk" if Path("/usr/bin/wrk").exists() or _which("wrk") else "python"
    if args.duration <= 0 or args.duration > 300:
        parser.error("--duration must be between 0 and 300 seconds")
    if not 1 <= args.connections <= 64:
        parser.error("--connections must be between 1 and 64")
    return Settings(
        sizes=args.sizes, duration=args.duration, connections=args.connections,
        workers=args.workers, worker_class=args.worker_class,
        database_url=env("DATABASE_URL") or None, tests=args.tests, peer=args.peer,
        peer_max=args.peer_max,
        big_group=args.big_group, out=args.out, load_generator=generator,
    )


def _which(name: str) -> str | None:
    from shutil import which

    return which(name)
