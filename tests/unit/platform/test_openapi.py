"""The OpenAPI document built from routes: parameters inside a segment, and every error a route can answer."""

from __future__ import annotations

from aiohttp import web
from openapi_spec_validator import validate
from pydantic import BaseModel, Field

from shared.openapi import openapi_document
from shared.web import Route


async def _handler(request: web.Request) -> web.Response:
    return web.Response()


class Body(BaseModel):
    name: str | None = None


class Required(BaseModel):
    name: str


def test_a_parameter_inside_a_path_segment_is_named_as_the_route_names_it() -> None:
    route = Route("GET", "/v1/calendars/{accountCode}/{calendarCode}.ics", _handler, "a feed", public=True)
    document = openapi_document("feed", [route])
    validate(document)
    operation = document["paths"]["/v1/calendars/{accountCode}/{calendarCode}.ics"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["accountCode", "calendarCode"]


def test_a_regex_parameter_is_documented_by_its_name_only() -> None:
    document = openapi_document("x", [Route("GET", "/v1/things/{thingId:[0-9]+}", _handler, "a thing")])
    validate(document)
    assert list(document["paths"]) == ["/v1/things/{thingId}"]


def test_a_secured_route_with_an_id_and_a_body_documents_the_errors_the_middlewares_answer() -> None:
    route = Route("PUT", "/v1/things/{accountCode}/{thingId}", _handler, "change", Body, responses={"409": "gone"})
    responses = openapi_document("x", [route])["paths"]["/v1/things/{accountCode}/{thingId}"]["put"]["responses"]
    assert set(responses) == {"200", "400", "401", "403", "404", "409", "413", "415"}
    assert responses["409"] == {"description": "gone"}
    assert responses["401"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_a_public_route_without_parameters_documents_no_401_403_or_404() -> None:
    responses = openapi_document("x", [Route("GET", "/v1/open", _handler, "open", public=True)])["paths"]["/v1/open"]
    assert set(responses["get"]["responses"]) == {"200", "400"}


def test_a_body_is_required_only_when_its_model_has_a_required_field() -> None:
    routes = [Route("POST", "/a", _handler, "a", Body), Route("POST", "/b", _handler, "b", Required)]
    paths = openapi_document("x", routes)["paths"]
    assert paths["/a"]["post"]["requestBody"]["required"] is False
    assert paths["/b"]["post"]["requestBody"]["required"] is True


class Nested(BaseModel):
    thing: Required
    note: str | None = None


class Flat(BaseModel):
    thing_name: str = Field(alias="thing[name]")


class SeedError(BaseModel):
    error: bool
    message: str


def test_a_body_taken_as_form_and_json_documents_each_with_its_model_and_its_seed_shaped_errors() -> None:
    route = Route(
        "POST",
        "/api/thing",
        _handler,
        "a thing",
        request_model=Flat,
        public=True,
        request_content_type="application/x-www-form-urlencoded",
        request_alternatives={"application/json": Nested},
        responses={"402": "unusable"},
        response_models={"200": SeedError, "402": SeedError},
    )
    document = openapi_document("x", [route])
    validate(document)
    operation = document["paths"]["/api/thing"]["post"]
    body = operation["requestBody"]
    assert body["required"] is True
    assert body["content"] == {
        "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/Flat"}},
        "application/json": {"schema": {"$ref": "#/components/schemas/Nested"}},
    }
    assert list(document["components"]["schemas"]["Flat"]["properties"]) == ["thing[name]"]
    seed = {"application/json": {"schema": {"$ref": "#/components/schemas/SeedError"}}}
    assert operation["responses"]["402"]["content"] == seed and operation["responses"]["200"]["content"] == seed
    assert operation["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
