"""The shortcuts taken for speed give the same answers as the long way."""

from __future__ import annotations

import json
from urllib.parse import quote

from scim_api.http import dumps
from tests.perf.conftest import Directory, count_statements


def _total(directory: Directory, query: str) -> tuple[int, int, list[str]]:
    with directory.app.app_context(), count_statements() as seen:
        body = directory.request("GET", f"/Users?{query}").get_json(force=True)
    return body["totalResults"], body["itemsPerPage"], seen


def test_filtered_pages_report_the_true_total_with_or_without_a_count_query(
        directory: Directory) -> None:
    users = "filter=" + quote('userName sw "user000"')  # user0000 .. user0009: 10 users
    assert _total(directory, users + "&count=3")[:2] == (10, 3)  # full page: counted
    assert _total(directory, users + "&startIndex=9&count=5")[:2] == (10, 2)  # short page
    assert _total(directory, users + "&startIndex=20&count=5")[:2] == (10, 0)  # past the end
    none = "filter=" + quote('userName eq "nobody@example.com"')
    total, items, seen = _total(directory, none)
    assert (total, items) == (0, 0)
    assert not any("count(" in s.lower() for s in seen), seen
    one = "filter=" + quote('userName eq "user0003@example.com"')
    total, items, seen = _total(directory, one)
    assert (total, items) == (1, 1)
    assert not any("count(" in s.lower() for s in seen), seen


def test_unfiltered_user_lists_read_the_tally_instead_of_counting_the_rows(
        directory: Directory) -> None:
    total, items, seen = _total(directory, "count=100")
    assert (total, items) == (11, 11)  # ten users and the spare
    assert not any("count(" in s.lower() for s in seen), seen
    assert any("scim_user_tally" in s for s in seen), seen


def test_response_encoding_falls_back_to_json_for_integers_orjson_refuses() -> None:
    body = {"schemas": ["x"], "huge": 2**70, "name": "Zoë"}
    assert json.loads(dumps(body)) == body
    assert json.loads(dumps({"name": "Zoë", "n": 1})) == {"name": "Zoë", "n": 1}
