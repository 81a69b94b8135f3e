"""`attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) on every read.

A Projection knows, before anything is loaded, whether a top-level attribute is wanted
(so a Group read with `excludedAttributes=members` never loads members), and trims a
finished resource. `id` and `schemas` are always returned; unknown names are ignored.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from scim_api.errors import ScimError
from scim_api.filters import parse_path
from scim_api.schema import CORE_GROUP, CORE_USER, ENTERPRISE_STRINGS, ENTERPRISE_USER

ALWAYS = frozenset({"id", "schemas"})
_ENTERPRISE_ATTRS = frozenset(name.lower() for name in (*ENTERPRISE_STRINGS, "manager"))


@dataclass(frozen=True)
class Selector:
    """One requested attribute: in the core schema or the extension, maybe one sub-attribute."""

    extension: bool
    attr: str | None  # lower-cased; None for the whole extension
    sub: str | None = None


def _selector(text: str) -> Selector | None:
    try:
        path = parse_path(text)
    except ScimError:
        return None
    schema = (path.schema or "").lower()
    if schema == ENTERPRISE_USER.lower():
        return Selector(True, path.attr or None, path.sub_attr)
    if schema and schema not in (CORE_USER.lower(), CORE_GROUP.lower()):
        return None
    if not path.attr:
        return None
    return Selector(path.attr in _ENTERPRISE_ATTRS, path.attr, path.sub_attr)


def _find(doc: dict[str, Any], lowered: str) -> str | None:
    return next((key for key in doc if key.lower() == lowered), None)


def _pick(value: Any, sub: str | None) -> Any:
    if sub is None:
        return copy.deepcopy(value)
    if isinstance(value, dict):
        key = _find(value, sub)
        return {key: copy.deepcopy(value[key])} if key else None
    if isinstance(value, list):  # keep positions so several sub-attributes line up
        return [_pick(item, sub) or {} for item in value if isinstance(item, dict)]
    return None


def _drop(container: dict[str, Any], selector: Selector) -> None:
    key = _find(container, selector.attr or "")
    if key is None or key in ALWAYS:
        return
    if selector.sub is None:
        del container[key]
        return
    value = container[key]
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, dict) and (sub := _find(item, selector.sub)) is not None:
            del item[sub]


class Projection:
    """Which attributes a read returns."""

    def __init__(self, attributes: list[str] | None = None,
                 excluded: list[str] | None = None) -> None:
        self.included = [s for s in map(_selector, attributes or []) if s is not None]
        self.excluded = [s for s in map(_selector, excluded or []) if s is not None]
        self.restrictive = bool(attributes)

    def wants(self, attr: str) -> bool:
        """Return whether a top-level attribute (any schema) is part of the response."""
        lowered = attr.lower()
        extension = lowered in _ENTERPRISE_ATTRS
        if self.restrictive:
            return any(s.attr == lowered or (extension and s.extension and s.attr is None)
                       for s in self.included)
        return not any(s.attr == lowered and s.sub is None for s in self.excluded)

    def apply(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Return the resource trimmed to what was asked for."""
        if self.restrictive:
            out: dict[str, Any] = {key: copy.deepcopy(doc[key]) for key in doc if key in ALWAYS}
            for selector in self.included:
                self._include(doc, out, selector)
            for container in (out, out.get(ENTERPRISE_USER) or {}):
                for key, value in list(container.items()):
                    if isinstance(value, list):
                        container[key] = [item for item in value if item != {}]
                        if not container[key]:
                            del container[key]
        elif self.excluded:
            out = copy.deepcopy(doc)
            for selector in self.excluded:
                if selector.extension and selector.attr is None:
                    out.pop(ENTERPRISE_USER, None)
                elif selector.extension:
                    if isinstance(out.get(ENTERPRISE_USER), dict):
                        _drop(out[ENTERPRISE_USER], selector)
                else:
                    _drop(out, selector)
        else:
            return doc
        if not out.get(ENTERPRISE_USER):
            out.pop(ENTERPRISE_USER, None)
            if isinstance(out.get("schemas"), list):
                out["schemas"] = [s for s in out["schemas"] if s != ENTERPRISE_USER]
        return out

    @staticmethod
    def _include(doc: dict[str, Any], out: dict[str, Any], selector: Selector) -> None:
        if selector.extension:
            source = doc.get(ENTERPRISE_USER)
            if not isinstance(source, dict):
                return
            target = out.setdefault(ENTERPRISE_USER, {})
            if selector.attr is None:
                target.update(copy.deepcopy(source))
                return
        else:
            source, target = doc, out
        key = _find(source, selector.attr or "")
        if key is None:
            return
        picked = _pick(source[key], selector.sub)
        if picked is None or picked == {}:
            return
        if isinstance(picked, dict) and isinstance(target.get(key), dict):
            target[key].update(picked)
        elif selector.sub is not None and isinstance(picked, list) and key in target:
            target[key] = [{**a, **b} for a, b in zip(target[key], picked, strict=False)]
        else:
            target[key] = picked
