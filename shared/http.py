"""Request body helpers: JSON that says where it broke, and models matched case-insensitively."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ModelWrapValidatorHandler, PrivateAttr, ValidationError, model_validator

from shared.errors import InvalidRequest, MalformedJson, PayloadTooLarge, UnsupportedMediaType

M = TypeVar("M", bound="CaseInsensitiveModel")


async def read_body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(
            f"request body is larger than the {request.app._client_max_size} bytes this service accepts"
        ) from None


async def read_form(request: web.Request) -> Any:
    """The request's form fields (urlencoded or multipart); a malformed form is a 400, not a 500.

    aiohttp raises ValueError for a multipart Content-Type without a boundary, or a broken part, and for
    urlencoded bytes that are not the charset's (UnicodeDecodeError); LookupError for a charset Python
    does not know.
    """
    try:
        return await request.post()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(
            f"request body is larger than the {request.app._client_max_size} bytes this service accepts"
        ) from None
    except (ValueError, LookupError, AssertionError) as exc:
        raise InvalidRequest(f"the form body cannot be read: {exc}") from None


def whole_number(text: str, max_digits: int = 9) -> int | None:
    """`text` as a whole number when it is 1 to `max_digits` ASCII digits, else None.

    Not `str.isdigit()` before `int()`: it is true of "²" and of 5,000 digits, and int() refuses
    both with a ValueError, which an input check that trusted isdigit() let out as a 500."""
    if 0 < len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None


def parse_json_text(raw: bytes) -> Any:
    # RFC 8259: JSON between systems is UTF-8 (a BOM is tolerated); json.loads(bytes) would also
    # guess UTF-16/32 and turn a garbled body into a puzzling "Expecting value".
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise MalformedJson("request body is not valid UTF-8") from None
    except RecursionError:
        raise MalformedJson("request body is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise MalformedJson(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


async def read_json(request: web.Request, *, required: bool = True) -> Any:
    """The request's JSON body; an empty body is `{}` unless `required`."""
    content_type = request.content_type
    if (
        request.body_exists
        and content_type not in ("application/json", "text/json", "application/octet-stream", "text/plain", "")
        and not content_type.endswith("+json")
    ):
        raise UnsupportedMediaType(f"send the body as application/json, not {content_type}")
    raw = await read_body(request)
    if not raw.strip():
        if required:
            raise InvalidRequest("request body is required: send a JSON object")
        return {}
    return parse_json_text(raw)


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if p not in ("function-after", "function-before")) or "body"


def validation_reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    path = _field_path(tuple(first["loc"]))
    message = first["msg"]
    message = message.removeprefix("Value error, ")
    return f"{path}: {message}"


class CaseInsensitiveModel(BaseModel):
    """A request model whose JSON names match case-insensitively (the seeds mix `timeZoneId`,
    `TimeZoneId` and `timezoneId`). Unknown names are ignored, as CalReply's API does, and
    remembered: `ignored_fields(model)` lists them, nested ones with their path."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", str_strip_whitespace=False)
    _ignored: tuple[str, ...] = PrivateAttr(default=())

    @classmethod
    def _names(cls) -> dict[str, str]:
        # Built once per class (its fields are fixed once defined), not twice per body validated.
        cached = cls.__dict__.get("_kalends_names")
        if cached is not None:
            return cached
        lookup: dict[str, str] = {}
        for name, field in cls.model_fields.items():
            lookup[name.lower()] = name
            if field.alias:
                lookup[field.alias.lower()] = field.alias
            if isinstance(field.validation_alias, str):
                lookup[field.validation_alias.lower()] = field.validation_alias
        type.__setattr__(cls, "_kalends_names", lookup)
        return lookup

    @model_validator(mode="wrap")
    @classmethod
    def _remember_ignored(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        model = handler(data)
        if isinstance(data, dict) and isinstance(model, CaseInsensitiveModel):
            known = cls._names()
            model._ignored = tuple(str(k) for k in data if not isinstance(k, str) or k.lower() not in known)
        return model

    @model_validator(mode="before")
    @classmethod
    def _match_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        lookup = cls._names()
        out: dict[str, Any] = {}
        for key, value in data.items():
            target = lookup.get(key.lower(), key) if isinstance(key, str) else key
            out.setdefault(target, value)
        return out

    @classmethod
    def parse(cls: type[M], payload: Any) -> M:
        if not isinstance(payload, dict):
            raise InvalidRequest(f"request body must be a JSON object, not {type(payload).__name__}")
        try:
            model = cls.model_validate(payload)
        except ValidationError as exc:
            raise InvalidRequest(validation_reason(exc)) from None
        # What the model kept is what gets stored: text PostgreSQL cannot hold is a 400, not a 500.
        # The model's values come from the body, so a body without such text needs no dump of the model.
        bad = unstorable_text(model.model_dump(by_alias=True)) if unstorable_text(payload) is not None else None
        if bad is not None:
            raise InvalidRequest(f"{bad or 'body'}: contains a NUL character or invalid Unicode")
        return model


def unstorable_text(value: Any, path: str = "") -> str | None:
    """The path of the first string PostgreSQL cannot store (a NUL, a lone surrogate), if any."""
    if isinstance(value, str):
        if "\x00" in value:
            return path
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = unstorable_text(key, path) or unstorable_text(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = unstorable_text(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def ignored_fields(model: BaseModel, path: str = "") -> list[str]:
    """The names a body carried that its model (or a nested one) ignored, as `a.b[2].c` paths."""
    found = [f"{path}{name}" for name in getattr(model, "_ignored", ())]
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        wire = info.alias or name
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            if isinstance(item, CaseInsensitiveModel):
                where = f"{path}{wire}" + (f"[{index}]" if index is not None else "")
                found.extend(ignored_fields(item, where + "."))
    return found


async def read_model(request: web.Request, model: type[M], *, required: bool = True) -> M:
    return model.parse(await read_json(request, required=required))
