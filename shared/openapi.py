"""The OpenAPI 3.1 document of a service, built from its `Route`s (shared.web.add_routes).

Every operation documents what the shared middlewares can answer besides the route's own statuses:
400, 401 and 403 on routes that need a token, 404 where the path names an object, 413 and 415 where
there is a body. A path parameter may sit inside a segment (`{calendarCode}.ics`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from shared.web import Route


def _schema_ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


_PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_ERROR_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _error_responses(route: Route, has_params: bool) -> dict[str, str]:
    """The errors every route of this kind can answer (the middlewares' and the handlers' own)."""
    errors = {"400": "invalid request"}
    if not route.public:
        errors["401"] = "no, or an invalid, bearer token"
        errors["403"] = "the token belongs to another account"
    if has_params:
        errors["404"] = "no such object (in this account)"
    if route.request_model is not None:
        errors["413"] = "request body too large"
        errors["415"] = "request body of an unsupported media type"
    return errors


def _request_body(route: Route, model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    # A body is required only when the model has a required field (an empty body is `{}` otherwise).
    models = {route.request_content_type: model, **route.request_alternatives}
    required = all(any(f.is_required() for f in m.model_fields.values()) for m in models.values())
    content = {media_type: {"schema": _schema_ref(m, components)} for media_type, m in models.items()}
    return {"required": required, "content": content}


def _operation(route: Route, params: list[str], components: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": route.summary}
    if params:
        operation["parameters"] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params
        ]
    if route.request_model is not None:
        operation["requestBody"] = _request_body(route, route.request_model, components)
    ok: dict[str, Any] = {"description": "success"}
    if route.response_model is not None:
        ok["content"] = {route.response_content_type: {"schema": _schema_ref(route.response_model, components)}}
    responses: dict[str, Any] = {"200": ok}
    for status, description in route.responses.items():
        responses[status] = {"description": description}
        if status.startswith("2") and "content" in ok:
            responses[status]["content"] = ok["content"]  # a 201 answers the same body as the 200
    for status, model in route.response_models.items():
        responses.setdefault(status, {"description": "answer"})
        responses[status]["content"] = {route.response_content_type: {"schema": _schema_ref(model, components)}}
    if route.links:
        # On the status a creation answers (201) when the route declares one, else on 200.
        success = "201" if "201" in responses else "200"
        responses[success]["links"] = route.links
    for status, description in _error_responses(route, bool(params)).items():
        responses.setdefault(status, {"description": description, "content": _ERROR_REF})
    operation["responses"] = responses
    if not route.public:
        operation["security"] = [{"bearer": []}]
    return operation


def openapi_document(service: str, routes: list[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a service's routes."""
    components: dict[str, Any] = {
        "Error": {
            "type": "object",
            "properties": {
                "success": {"type": "boolean"},
                "statusCode": {"type": "integer"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"code": {"type": "string"}, "reason": {"type": "string"}},
                    },
                },
            },
        }
    }
    paths: dict[str, Any] = {}
    operation_ids: set[str] = set()
    for route in routes:
        # OpenAPI wants operationIds unique; one handler may serve several routes (/v1 and /v2).
        operation_id = base_id = route.name or route.handler.__name__
        counter = 2
        while operation_id in operation_ids:
            operation_id, counter = f"{base_id}_{counter}", counter + 1
        operation_ids.add(operation_id)
        # `{name}` or `{name:regex}`, anywhere in a segment (`{calendarCode}.ics`).
        params = _PATH_PARAM.findall(route.path)
        operation = {"operationId": operation_id, **_operation(route, params, components)}
        paths.setdefault(_PATH_PARAM.sub(r"{\1}", route.path), {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": f"Kalends {service} service", "version": "1.0.0"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
