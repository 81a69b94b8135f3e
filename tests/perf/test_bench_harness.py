"""The benchmark's own arithmetic: merged rounds, percentiles and the target verdicts."""

from __future__ import annotations

import pytest

from bench.load import POINTS, LoadResult, _percentile, merge
from bench.report import APP, HELLO, PEER, Row, evaluate


def _uniform(requests: int, seconds: float, lo: float, hi: float) -> LoadResult:
    """A result whose latencies spread evenly between lo and hi ms."""
    return LoadResult(requests, seconds, [(p, lo + (hi - lo) * p / 100) for p in POINTS])


def test_merged_rounds_add_requests_and_time() -> None:
    merged = merge([_uniform(100, 2.0, 1, 3), _uniform(300, 2.0, 1, 3)])
    assert merged.requests == 400
    assert merged.seconds == 4.0
    assert merged.rps == 100.0


def test_merging_identical_rounds_keeps_the_percentiles() -> None:
    one = _uniform(100, 2.0, 10, 20)
    merged = merge([one, _uniform(50, 2.0, 10, 20)])
    assert merged.p50_ms == pytest.approx(one.p50_ms, rel=1e-3)
    assert merged.p99_ms == pytest.approx(one.p99_ms, rel=1e-3)


def test_merged_median_lies_in_the_heavier_round() -> None:
    fast, slow = _uniform(900, 2.0, 1, 2), _uniform(100, 2.0, 100, 200)
    merged = merge([fast, slow])
    assert merged.p50_ms is not None and 1 <= merged.p50_ms <= 2
    assert merged.p99_ms is not None and 100 <= merged.p99_ms <= 200


def test_a_round_without_requests_has_no_latency() -> None:
    empty = LoadResult(0, 2.0, [])
    assert empty.p50_ms is None
    assert merge([empty, empty]).requests == 0


def test_percentile_of_raw_latencies_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert _percentile(values, 50) == 50.0
    assert _percentile(values, 99) == 99.0


def _row(n: int, test: str, app: LoadResult, hello: LoadResult, peer: LoadResult) -> Row:
    return Row(n, test, test, {APP: app, HELLO: hello, PEER: peer})


def test_targets_pass_and_fail_on_ratios_of_the_same_run() -> None:
    hello = _uniform(1000, 1.0, 1, 2)
    rows = [
        _row(1_000, "filter", _uniform(500, 1.0, 4, 6), hello, hello),
        _row(100_000, "filter", _uniform(450, 1.0, 4.5, 6.5), hello, hello),
        _row(100_000, "list", _uniform(100, 1.0, 20, 30), hello, hello),
        _row(1_000, "post", _uniform(300, 1.0, 5, 9), hello, _uniform(100, 1.0, 20, 40)),
        _row(100_000, "post", _uniform(150, 1.0, 5, 9), hello, _uniform(100, 1.0, 20, 40)),
        _row(100_000, "patch_big", _uniform(100, 1.0, 20, 30), hello, hello),
        _row(100_000, "patch_small", _uniform(100, 1.0, 10, 15), hello, hello),
    ]
    results = [v.verdict for v in evaluate(rows, (1_000, 100_000), 150.0,
                                           {1_000: 1_000, 100_000: 10_000})]
    # filter 45% ≥ 40%: PASS; list 10% < 15%: FAIL; POST 1.5× at 100k < 2×: FAIL;
    # filter growth 5.5/5 = 1.1 ≤ 1.3: PASS; PATCH 25/12.5 = 2 > 1.5: FAIL; 150 MB: PASS.
    assert results == ["PASS", "FAIL", "FAIL", "PASS", "FAIL", "PASS"]


def test_targets_without_measurements_are_not_applicable() -> None:
    verdicts = evaluate([], (1_000,), None, {})
    assert {v.verdict for v in verdicts} == {"n/a"}
