"""Reading synthesized Terraform JSON in assertions."""

from __future__ import annotations

import json
from typing import Any


def of_type(document: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return document.get("resource", {}).get(resource_type, {})


def only(document: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]]:
    items = of_type(document, resource_type)
    assert len(items) == 1, f"expected one {resource_type}, found {sorted(items)}"
    return next(iter(items.items()))


def named(document: dict[str, Any], resource_type: str, fragment: str) -> tuple[str, dict[str, Any]]:
    """The one resource of a type whose logical id contains `fragment`."""
    matches = [(n, c) for n, c in of_type(document, resource_type).items() if fragment in n]
    assert len(matches) == 1, f"expected one {resource_type} matching {fragment!r}, found {[n for n, _ in matches]}"
    return matches[0]


def ref(resource_type: str, name: str, attribute: str = "id") -> str:
    return "${" + f"{resource_type}.{name}.{attribute}" + "}"


def policy(config: dict[str, Any], key: str = "policy") -> dict[str, Any]:
    return json.loads(config[key])
