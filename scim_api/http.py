"""The SCIM wire: reading JSON bodies, query parameters, ETags, and writing responses.

Bodies are parsed whatever the Content-Type says (IdPs send `application/scim+json`,
`application/json`, with or without a charset, and Flask's `get_json()` ignores the first
unless forced), within a size limit and a nesting limit, so hostile input is a SCIM 4xx
and never a 500.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from flask import Response, current_app, g, request

from portal.flask_app import request_globals
from scim_api.errors import SCIM_CONTENT_TYPE, ScimError

MAX_DEPTH = 32
DEFAULT_COUNT = 100
MAX_COUNT = 1000
MAX_START_INDEX = 2**31


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Return whether the JSON value nests deeper than the limit (iteratively)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def read_body() -> bytes:
    """Return the raw request body, or raise 413 when it is over SCIM_MAX_BODY_BYTES."""
    limit = int(current_app.config.get("SCIM_MAX_BODY_BYTES", 1024 * 1024))
    if request.content_length is not None and request.content_length > limit:
        raise ScimError(f"The request body is larger than {limit} bytes.", status=413)
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise ScimError(f"The request body is larger than {limit} bytes.", status=413)
    g.scim_request_body = data  # the activity log stores it, scrubbed, after the response
    return data


def json_body(*, required: bool = True) -> Any:
    """Parse the request body as JSON, or raise a SCIM 400 invalidSyntax."""
    data = read_body()
    if not data.strip():
        if not required:
            return None
        raise ScimError("The request needs a JSON body.", scim_type="invalidSyntax")
    try:
        value = json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise ScimError("The JSON body is nested too deeply.", scim_type="invalidSyntax") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, huge integers
        raise ScimError(f"The body is not valid JSON: {str(exc)[:200]}",
                        scim_type="invalidSyntax") from None
    if _depth_exceeds(value, MAX_DEPTH):
        raise ScimError(f"The JSON body nests deeper than {MAX_DEPTH} levels.",
                        scim_type="invalidSyntax")
    return value


def json_object(*, required: bool = True) -> dict[str, Any]:
    """Parse the request body as a JSON object."""
    value = json_body(required=required)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise ScimError("The JSON body must be an object.", scim_type="invalidSyntax")
    return value


_INTEGER = re.compile(r"[+-]?[0-9]+")
# Past this many digits a number is far outside every clamp below: it is not converted
# (Python refuses int() of over 4,300 digits), only its sign is kept.
_MAX_DIGITS = 30


def _int_param(raw: Any, name: str) -> int | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool):
        raise ScimError(f"{name} must be an integer, not a boolean.", scim_type="invalidValue")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    text = raw.strip() if isinstance(raw, str) else json.dumps(raw)
    if not isinstance(raw, str) or not _INTEGER.fullmatch(text):
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise ScimError(f"{name} must be an integer, not {shown!r}.", scim_type="invalidValue")
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > _MAX_DIGITS:  # RFC 7644 §3.4.2.4: out of range is clamped, not an error
        return -(10**_MAX_DIGITS) if text.startswith("-") else 10**_MAX_DIGITS
    return int(text)


def page_params(start_raw: Any, count_raw: Any) -> tuple[int, int]:
    """Return (startIndex, count), clamped as RFC 7644 §3.4.2.4 says."""
    start = _int_param(start_raw, "startIndex")
    count = _int_param(count_raw, "count")
    start = 1 if start is None or start < 1 else min(start, MAX_START_INDEX)
    count = DEFAULT_COUNT if count is None else max(0, min(count, MAX_COUNT))
    return start, count


def attribute_list(raw: Any, name: str) -> list[str]:
    """Read `attributes`/`excludedAttributes`: a comma-separated string or a JSON list."""
    if raw is None:
        return []
    if isinstance(raw, str):
        items: list[Any] = raw.split(",")
    elif isinstance(raw, list):
        items = raw
    else:
        raise ScimError(f"{name} must be a list of attribute names.", scim_type="invalidValue")
    names = []
    for item in items:
        if not isinstance(item, str):
            raise ScimError(f"{name} must contain attribute names.", scim_type="invalidValue")
        if item.strip():
            names.append(item.strip())
    return names


def _query_args() -> tuple[dict[str, str], dict[str, str]]:
    """Return the query's parameters by exact name and by lowered name (first value wins)."""
    ctx_g = request_globals()
    found: tuple[dict[str, str], dict[str, str]] | None = ctx_g.get("scim_query_args")
    if found is None:  # built once a request: a list request asks for seven names
        exact: dict[str, str] = {}
        lowered: dict[str, str] = {}
        for key, item in request.args.items(multi=True):
            exact.setdefault(key, item)
            lowered.setdefault(key.lower(), item)
        found = ctx_g.scim_query_args = (exact, lowered)
    return found


def query_arg(name: str) -> str | None:
    """Return a query parameter by name, case-insensitively (IdPs vary the case)."""
    return query_args()(name)


def query_args() -> Callable[[str], str | None]:
    """Return `query_arg` bound to this request's parameters (a list request reads seven)."""
    exact, lowered = _query_args()
    marked = request.query_string.endswith(b"?")

    def arg(name: str) -> str | None:
        value = exact.get(name)
        if value is None:
            value = lowered.get(name.lower())
        if value and marked and value.endswith("?"):
            value = value[:-1]  # OneLogin: a "?" appended to a URL that already has a query
        return value

    return arg


def lookup(body: Mapping[str, Any], name: str) -> Any:
    """Return a body member by name, case-insensitively (RFC 7643 §2.1)."""
    if name in body:
        return body[name]
    lowered = name.lower()
    for key, value in body.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def etag_of(version: int) -> str:
    """Return the weak entity tag of a resource version."""
    return f'W/"{version}"'


def _tags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/").strip() for tag in header.split(",") if tag.strip()}


def check_if_match(version: int) -> None:
    """Refuse a write with 412 when If-Match names another version of the resource."""
    header = request.headers.get("If-Match")
    if not header:
        return
    tags = _tags(header)
    if "*" in tags or f'"{version}"' in tags:
        return
    raise ScimError("The resource has changed since you read it (If-Match does not match its "
                    "current version). Nothing was changed; read it again and retry.",
                    status=412)


def not_modified(version: int) -> bool:
    """Return whether If-None-Match already names the current version (for GET)."""
    header = request.headers.get("If-None-Match")
    return header is not None and bool({"*", f'"{version}"'} & _tags(header))


def dumps(body: Any) -> bytes:
    """Encode a response body with orjson (a page of 100 Users in a fraction of json's time),
    falling back to json for what orjson refuses (integers beyond 64 bits in IdP data)."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body).encode()


def scim_response(body: Any, status: int = 200, *, location: str | None = None,
                  version: int | None = None) -> Response:
    """Return a SCIM JSON response, with Location and ETag when given."""
    response = Response(dumps(body), status=status,
                        content_type=SCIM_CONTENT_TYPE)
    if location:
        response.headers["Location"] = location
    if version is not None:
        response.headers["ETag"] = etag_of(version)
    return response


def empty_response(status: int = 204) -> Response:
    """Return an empty response (DELETE, 304)."""
    response = Response(b"", status=status)
    response.headers["Content-Type"] = SCIM_CONTENT_TYPE
    return response
