"""The peer, scim2-server, as a WSGI app for gunicorn, preloaded with the benchmark's data.

This module runs inside the throwaway venv (bench/.peer-venv) and imports nothing
from the project. scim2-server's own command (`scim2-server`) serves from one
process with wsgiref; its storage is in memory, so under gunicorn the data is
loaded in the master (`--preload`) before the workers fork, and each worker then
holds its own copy: writes land in the memory of the worker that served them.

Environment: PEER_USERS (N), PEER_BIG_GROUP (members of the large group),
PEER_TOKEN (the bearer token), PEER_MANIFEST (where to write the ids as JSON).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from scim2_models import Email, Group, GroupMember, Name, User
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication
from scim2_server.utils import load_default_provider


def _build() -> BearerTokenApplication:
    """Build the application as the scim2-server command does, with a bearer token."""
    provider = load_default_provider()
    provider.config.authentication_schemes = [
        *(provider.config.authentication_schemes or []),
        BEARER_TOKEN_SCHEME,
    ]
    service = ScimService(provider, secret=os.environ.get("SCIM2_SERVER_SECRET", "bench"))
    storage = InMemoryStorage()
    return BearerTokenApplication(storage, provider, service=service,
                                  bearer_tokens=[os.environ["PEER_TOKEN"]])


def _load(app: BearerTokenApplication) -> dict[str, object]:
    """Create the users and groups straight in the storage (its bulk path, no HTTP)."""
    users = int(os.environ.get("PEER_USERS", "1000"))
    spares = int(os.environ.get("PEER_SPARES", "100"))
    big = min(int(os.environ.get("PEER_BIG_GROUP", "10000")), users)
    user_type = next(rt for rt in app.provider.resource_types if rt.name == "User")
    group_type = next(rt for rt in app.provider.resource_types if rt.name == "Group")
    started = time.monotonic()

    def create(user_name: str, i: int) -> str:
        user: User[Any] = User(
            user_name=user_name,
            external_id=f"ext-{user_name}",
            display_name=f"Bench User {i}",
            name=Name(given_name="Bench", family_name=f"User{i}"),
            emails=[Email(value=user_name, type=Email.Type.work, primary=True)],
            active=True,
        )
        return str(app.storage.create(user_type, user).id)

    ids = [create(f"user{i:06d}@bench.example", i) for i in range(users)]
    spare_ids = [create(f"spare{i:03d}@bench.example", i) for i in range(spares)]
    groups = {}
    for name, size in (("Bench Big", big), ("Bench Small", min(10, users))):
        group = Group(display_name=name,
                      members=[GroupMember(value=uid, type="User", ref=None) for uid in ids[:size]])
        groups[name] = {"id": app.storage.create(group_type, group).id, "members": size}
    return {"users": users, "spares": spare_ids, "groups": groups,
            "load_seconds": round(time.monotonic() - started, 1)}


app = _build()
_manifest = _load(app)
if os.environ.get("PEER_MANIFEST"):
    with open(os.environ["PEER_MANIFEST"], "w") as f:
        json.dump(_manifest, f)
