"""Requests checked against Google's own Calendar v3 discovery document, as Google would check them.

The document is the one `google-api-python-client` ships (`googleapiclient/discovery_cache/documents/
calendar.v3.json`), loaded from the installed package, so the double rejects exactly what the published
API description rejects: unknown properties, wrong types or formats, properties required for that
method (`annotations.required`), missing path parameters, unknown or mistyped query parameters, and a
method the granted scopes do not cover.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

DOCUMENT = "discovery_cache/documents/calendar.v3.json"
_INT64 = re.compile(r"^-?\d{1,19}$")


@cache
def discovery() -> dict[str, Any]:
    text = (importlib.resources.files("googleapiclient") / DOCUMENT).read_text()
    document: dict[str, Any] = json.loads(text)
    return document


@dataclass(frozen=True)
class Method:
    """One API method of the document: `calendar.events.import` and what it accepts."""

    id: str
    http_method: str
    path: str
    parameters: dict[str, Any]
    request_schema: str | None
    scopes: tuple[str, ...]


@cache
def methods() -> dict[str, Method]:
    found: dict[str, Method] = {}

    def walk(resources: dict[str, Any]) -> None:
        for resource in resources.values():
            for spec in resource.get("methods", {}).values():
                request = spec.get("request")
                found[spec["id"]] = Method(
                    id=spec["id"],
                    http_method=spec["httpMethod"],
                    path=spec["path"],
                    parameters=spec.get("parameters", {}),
                    request_schema=request["$ref"] if request else None,
                    scopes=tuple(spec.get("scopes", ())),
                )
            walk(resource.get("resources", {}))

    walk(discovery()["resources"])
    return found


def _scalar_problem(value: Any, spec: dict[str, Any], where: str) -> str | None:
    kind, fmt = spec.get("type"), spec.get("format")
    if kind == "any":
        return None
    if kind == "string":
        if not isinstance(value, str):
            return f"{where}: expected a string, got {type(value).__name__}"
        try:
            if fmt == "date":
                date.fromisoformat(value)
            elif fmt == "date-time":
                datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return f"{where}: '{value}' is not a valid {fmt}"
        if fmt in ("int64", "uint64") and not _INT64.match(value):
            return f"{where}: '{value}' is not an {fmt}"
        if "enum" in spec and value not in spec["enum"]:
            return f"{where}: '{value}' is not one of {spec['enum']}"
        return None
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{where}: expected an integer, got {type(value).__name__}"
        if fmt == "int32" and not -(2**31) <= value < 2**31:
            return f"{where}: {value} does not fit int32"
        return None
    if kind == "number":
        return None if isinstance(value, int | float) and not isinstance(value, bool) else f"{where}: not a number"
    if kind == "boolean":
        return None if isinstance(value, bool) else f"{where}: expected a boolean, got {type(value).__name__}"
    return None


def body_problems(value: Any, spec: dict[str, Any], method_id: str, where: str = "") -> list[str]:
    """Everything in `value` that the schema `spec` (a discovery schema or a $ref) does not allow."""
    if "$ref" in spec:
        spec = {**discovery()["schemas"][spec["$ref"]], **{k: v for k, v in spec.items() if k != "$ref"}}
    kind = spec.get("type")
    if value is None:
        return []  # JSON null clears a field in a patch; Google accepts it for any property
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where or 'body'}: expected an object, got {type(value).__name__}"]
        problems: list[str] = []
        properties: dict[str, Any] = spec.get("properties", {})
        extra = spec.get("additionalProperties")
        for name, item in value.items():
            path = f"{where}.{name}" if where else name
            if name in properties:
                problems += body_problems(item, properties[name], method_id, path)
            elif extra is not None:
                problems += body_problems(item, extra, method_id, path)
            else:
                problems.append(f"{path}: unknown property (not in the {spec.get('id', 'object')} schema)")
        for name, item_spec in properties.items():
            required_for = item_spec.get("annotations", {}).get("required", [])
            if method_id in required_for and name not in value:
                problems.append(f"{where + '.' if where else ''}{name}: required for {method_id}")
        return problems
    if kind == "array":
        if not isinstance(value, list):
            return [f"{where}: expected an array, got {type(value).__name__}"]
        problems = []
        for i, item in enumerate(value):
            problems += body_problems(item, spec.get("items", {}), method_id, f"{where}[{i}]")
        return problems
    problem = _scalar_problem(value, spec, where)
    return [problem] if problem else []


def _query_problem(name: str, values: list[str], spec: dict[str, Any]) -> str | None:
    if len(values) > 1 and not spec.get("repeated"):
        return f"query {name}: given {len(values)} times"
    for raw in values:
        kind = spec.get("type")
        if kind == "integer":
            if not re.fullmatch(r"-?\d+", raw):
                return f"query {name}: '{raw}' is not an integer"
            number = int(raw)
            if "minimum" in spec and number < int(spec["minimum"]):
                return f"query {name}: {number} is below {spec['minimum']}"
            if "maximum" in spec and number > int(spec["maximum"]):
                return f"query {name}: {number} is above {spec['maximum']}"
        elif kind == "boolean" and raw not in ("true", "false"):
            return f"query {name}: '{raw}' is not true or false"
        elif spec.get("format") == "date-time":
            try:
                datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                return f"query {name}: '{raw}' is not a date-time"
        if "enum" in spec and raw not in spec["enum"]:
            return f"query {name}: '{raw}' is not one of {spec['enum']}"
    return None


def request_problems(
    method_id: str,
    *,
    path_params: dict[str, str],
    query: dict[str, list[str]],
    body: Any = None,
    granted_scopes: frozenset[str] | None = None,
) -> list[str]:
    """Every reason Google would refuse this call of `method_id` before looking at its data."""
    method = methods()[method_id]
    problems: list[str] = []
    if granted_scopes is not None and not granted_scopes & set(method.scopes):
        problems.append(f"{method_id}: none of the granted scopes {sorted(granted_scopes)} allows it")
    global_params: dict[str, Any] = discovery()["parameters"]
    for name, spec in method.parameters.items():
        if spec["location"] == "path" and spec.get("required") and not path_params.get(name):
            problems.append(f"path {name}: required")
        if spec["location"] == "query" and spec.get("required") and name not in query:
            problems.append(f"query {name}: required")
    for name, values in query.items():
        spec = method.parameters.get(name) or global_params.get(name)
        if spec is None or spec.get("location") == "path":
            problems.append(f"query {name}: unknown parameter for {method_id}")
            continue
        problem = _query_problem(name, values, spec)
        if problem:
            problems.append(problem)
    if method.request_schema is None:
        if body not in (None, b"", {}):
            problems.append(f"{method_id}: takes no request body")
    elif body is None:
        problems.append(f"{method_id}: a {method.request_schema} body is required")
    else:
        problems += body_problems(body, {"$ref": method.request_schema}, method_id)
    return problems
