"""The mail API's JSON shapes."""

from __future__ import annotations

from datetime import datetime
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def delivery_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "uid": row["uid"],
        "method": row["method"],
        "sequence": row["sequence"],
        "attendee": {"email": row["attendee_email"], "name": row["attendee_name"]},
        "status": row["status"],
        "partstat": row["partstat"],
        "attempts": row["attempts_made"],
        "smtpCode": row["smtp_code"],
        "smtpAnswer": row["smtp_answer"],
        "messageId": row["message_id"],
        "createdAt": iso(row["created_at"]),
        "sentAt": iso(row["sent_at"]),
        "repliedAt": iso(row["replied_at"]),
    }


# --- Convier (seed 000): documentation of the bodies services/mail/domain/convier*.py read ---------
# The parser there is the authority (it takes the form's bracket keys and JSON alike, and answers
# 400/402 naming the parameter); these models only describe the same structure in the OpenAPI.


_DAY = r"(0[1-9]|1[0-2])/(0[1-9]|[12]\d|3[01])/(19|20)\d{2}"  # MM/DD/YYYY
_ISO_DAY = r"(19|20)\d{2}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_CLOCK = r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?"
DATE = (
    rf"^({_DAY}( ((0?[1-9]|1[0-2]):[0-5]\d(:[0-5]\d)? ?[AP]M|{_CLOCK}))?"
    rf"|{_ISO_DAY}(T{_CLOCK}(Z|[+-]\d{{2}}:\d{{2}})?)?)$"
)
EMAIL = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
URI = r"^[a-zA-Z][a-zA-Z0-9+.-]*:[!-~]+$"
RRULE = (
    r"^(RRULE:)?FREQ=(SECONDLY|MINUTELY|HOURLY|DAILY|WEEKLY|MONTHLY|YEARLY)(;COUNT=[1-9][0-9]{0,2}|;INTERVAL=[1-9])?$"
)
ZONES = ["Europe/Paris", "America/New_York", "UTC", "Eastern Standard Time"]  # examples: any IANA or Windows name
DURATION = r"^P(\d+W|\d+D(T\d+H)?|T\d+[HMS])$"


class _Doc(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class TextValue(_Doc):
    value: str = Field(min_length=1, description="the seed's `event[summary][value]` form")


Text = Annotated[str, Field(min_length=1)] | TextValue


class Moment(_Doc):
    date: str = Field(
        pattern=DATE, description="`MM/DD/YYYY hh:mm AM`, `MM/DD/YYYY` (all day) or ISO 8601 (an offset: UTC)"
    )
    timezone: str | None = Field(
        None, examples=ZONES, description="an IANA or Windows time zone name; else the component's"
    )


When = Annotated[str, Field(pattern=DATE)] | Moment


class ConvierPerson(_Doc):
    email: str = Field(
        pattern=EMAIL, max_length=254, description="the address; one the SMTP server refuses (5xx) makes it 402"
    )
    name: str | None = None
    role: Literal["CHAIR", "REQ-PARTICIPANT", "OPT-PARTICIPANT", "NON-PARTICIPANT"] | None = None
    rsvp: bool | None = Field(None, description="default true")


class ConvierConference(_Doc):
    uri: str = Field(pattern=URI, description="RFC 7986 CONFERENCE: an absolute URI")
    feature: str | None = Field(None, description="comma-separated FEATURE values: AUDIO,VIDEO,CHAT,...")
    label: str | None = None


class _Component(_Doc):
    uid: str | None = Field(None, description="the same uid again is an update (SEQUENCE + 1)")
    summary: Text | None = None
    description: Text | None = None
    location: Text | None = None
    comment: Text | None = None
    contact: Text | None = None
    start: When | None = None
    timezone: str | None = Field(None, examples=ZONES, description="time zone of the dates (IANA or Windows name)")
    url: str | None = Field(None, pattern=URI)
    image: str | None = Field(None, pattern=URI, description="RFC 7986 IMAGE (a URI)")
    color: str | None = Field(None, description="RFC 7986 COLOR")
    categories: list[str] | None = None
    rrule: str | None = Field(None, pattern=RRULE, description="an RFC 5545 RRULE, e.g. FREQ=WEEKLY;COUNT=4")
    class_: Literal["PUBLIC", "PRIVATE", "CONFIDENTIAL"] | None = Field(None, alias="class")
    organizer: ConvierPerson | None = None
    attendees: list[ConvierPerson] | None = Field(None, description="each receives an iMIP invitation")


class ConvierEvent(_Component):
    start: When = Field(description="required: `event[start][date]`")
    end: When | None = None
    status: Literal["TENTATIVE", "CONFIRMED", "CANCELLED"] | None = None
    transparency: Literal["OPAQUE", "TRANSPARENT"] | None = None
    conference: list[ConvierConference] | None = None


class ConvierTodo(_Component):
    summary: Text = Field(description="required: `todo[summary][value]`")
    due: When | None = None
    completed: When | None = None
    percent: int | None = Field(None, ge=0, le=100, description="PERCENT-COMPLETE")
    priority: int | None = Field(None, ge=0, le=9)
    status: Literal["NEEDS-ACTION", "COMPLETED", "IN-PROCESS", "CANCELLED"] | None = None


class ConvierJournal(_Component):
    status: Literal["DRAFT", "FINAL", "CANCELLED"] | None = Field(
        None, description="a journal needs a summary or a description"
    )


class ConvierCalendar(_Doc):
    """RFC 7986 properties of the VCALENDAR."""

    name: str | None = None
    description: str | None = None
    color: str | None = None
    url: str | None = Field(None, pattern=URI)
    source: str | None = Field(None, pattern=URI)
    image: str | None = Field(None, pattern=URI)
    refresh_interval: str | None = Field(
        None, alias="refresh-interval", pattern=DURATION, description="ISO 8601 duration: PT1H"
    )


class ConvierAvailable(_Doc):
    """An RFC 7953 AVAILABLE block of the request's VAVAILABILITY."""

    start: When
    end: When | None = None
    summary: str | None = None
    rrule: str | None = Field(None, pattern=RRULE)


class ConvierEmail(_Doc):
    subject: str | None = None
    body: str | None = None
    locale: str | None = Field(None, description="en, fr, de, es; any other falls back to en")
    attach: bool | None = Field(None, description="add invite.ics as an attachment (default false)")
    inline: bool | None = Field(None, description="the text/calendar part in the mail (default true)")


class _Request(_Doc):
    calendar: ConvierCalendar | None = None
    availability: list[ConvierAvailable] | None = None
    email: ConvierEmail | None = None
    download: bool | None = Field(None, description="true: the iCalendar text comes back in `data`")
    method: Literal["REQUEST", "CANCEL"] | None = Field(None, description="CANCEL: cancel the uid for everyone")
    uid: str | None = Field(None, min_length=1, max_length=255)
    timezone: str | None = Field(None, examples=ZONES)


class ConvierEventRequest(_Request):
    event: ConvierEvent


class ConvierTodoRequest(_Request):
    todo: ConvierTodo


class ConvierJournalRequest(_Request):
    journal: ConvierJournal


class ConvierAnswer(_Doc):
    """Every Convier answer, success or error."""

    error: bool
    message: str = Field(description="what was done, or what is wrong (naming the parameter)")
    uid: str | None = None
    data: str | None = Field(None, description="the generated iCalendar when `download` is true")


CONVIER_REQUESTS: dict[str, type[BaseModel]] = {
    "event": ConvierEventRequest,
    "todo": ConvierTodoRequest,
    "journal": ConvierJournalRequest,
}


def _flatten(model: type[BaseModel], prefix: str, required: bool, out: dict[str, Any]) -> None:
    for name, info in model.model_fields.items():
        key = info.alias or name
        _place(info.annotation, info, f"{prefix}[{key}]" if prefix else key, required and info.is_required(), out)


def _place(annotation: Any, info: FieldInfo | None, path: str, required: bool, out: dict[str, Any]) -> None:
    union = get_origin(annotation) in (Union, UnionType)
    choices = [a for a in get_args(annotation) if a is not type(None)] if union else [annotation]
    nested = next((c for c in choices if isinstance(c, type) and issubclass(c, BaseModel)), None)
    if nested is not None:  # `summary` or `summary[value]`, `start` or `start[date]`: the seed's form
        _flatten(nested, path, required, out)
        return
    listed = next((c for c in choices if get_origin(c) is list), None)
    if listed is not None:  # one index stands for all: event[attendees][0][email], [1], ...
        _place(get_args(listed)[0], None, f"{path}[0]", False, out)
        return
    kind = choices[0] if len(choices) == 1 else annotation
    if info is not None and info.metadata:  # the JSON field's pattern, bounds...
        kind = Annotated[kind, *info.metadata]
    description = info.description if info is not None else None
    # A form value is never null: an optional key is one that may be left out.
    out[f"f{len(out)}"] = (
        kind,
        Field(... if required else None, alias=path, description=description, json_schema_extra=_no_default),
    )


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def bracket_form(model: type[BaseModel]) -> type[BaseModel]:
    """The form-encoded twin of a JSON request model: one property per bracket key, as the seed's
    curl sends them (`event[start][date]`, `event[attendees][0][email]`, `email[subject]`)."""
    fields: dict[str, Any] = {}
    _flatten(model, "", True, fields)
    form: type[BaseModel] = create_model(model.__name__.replace("Request", "Form"), **fields)
    return form


CONVIER_FORMS = {component: bracket_form(model) for component, model in CONVIER_REQUESTS.items()}
