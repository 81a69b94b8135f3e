"""The ceiling: a bare Flask app answering `{"hello": "world"}` on every path and method."""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def hello(path: str) -> dict[str, str]:
    """Answer hello to anything."""
    return {"hello": "world"}
