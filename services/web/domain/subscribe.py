"""A visitor's subscribe form, checked against the page it came from, as ingest's subscribe body."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.web.domain.devices import App
from services.web.domain.page import CalendarPage

ACTION_TYPE = "SubscriptionViaCalendarPage"
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_content")
UTM_MAX = 255
REFERRER_MAX = 2048
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class FormProblem(ValueError):
    """The visitor's choices cannot be subscribed as sent: which field and what to do."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class PageVisit:
    """What the page carries from the visit to the subscribe form: UTM parameters and the referrer."""

    utm: dict[str, str]
    referrer: str | None

    @classmethod
    def from_query(cls, query: Mapping[str, str], referrer: str | None) -> PageVisit:
        utm = {name: query[name].strip()[:UTM_MAX] for name in UTM_FIELDS if query.get(name, "").strip()}
        return cls(utm=utm, referrer=(referrer or "").strip()[:REFERRER_MAX] or None)


@dataclass(frozen=True)
class SubscribeChoice:
    app: App
    tag_ids: tuple[str, ...]
    time_zone: str | None
    email: str | None
    marketing_allowed: bool | None
    additional_opt_in: bool | None
    visit: PageVisit


def read_form(form: Mapping[str, str], tags: Sequence[str], page: CalendarPage) -> SubscribeChoice:
    """`tags` is every `tag` value the form sent (checkboxes); none, or `all`, means every event."""
    try:
        app = App(form.get("app", ""))
    except ValueError:
        raise FormProblem("app", "choose a calendar app") from None
    known = {choice.value for choice in page.tags}
    chosen = tuple(dict.fromkeys(t for t in tags if t and t != "all"))
    unknown = [t for t in chosen if t not in known]
    if unknown:
        raise FormProblem("tag", "one of the chosen teams or categories no longer exists; reload the page")
    zone = form.get("timezone", "").strip() or None
    if zone is not None and zone not in {choice.value for choice in page.time_zones}:
        raise FormProblem("timezone", "choose a time zone from the list")
    email = form.get("email", "").strip() or None
    if page.email == "off":
        email = None
    elif email is None and page.email == "required":
        raise FormProblem("email", "enter your email address")
    elif email is not None and (len(email) > 254 or not _EMAIL.match(email)):
        raise FormProblem("email", "enter an email address like name@example.com")
    visit = PageVisit.from_query(form, form.get("referrer"))
    return SubscribeChoice(
        app=app,
        tag_ids=chosen,
        time_zone=zone,
        email=email,
        marketing_allowed=(form.get("marketing") == "yes") if page.marketing_opt_in and email else None,
        additional_opt_in=(form.get("additional") == "yes") if page.additional_opt_in and email else None,
        visit=visit,
    )


def subscribe_body(
    choice: SubscribeChoice, *, user_agent: str | None, ip_address: str | None, subscriber_id: str | None
) -> dict[str, Any]:
    """ingest's subscribe body (seed 002's subscriptionParams) for this choice."""
    body: dict[str, Any] = {
        "actionType": ACTION_TYPE,
        "subscriptionMethod": "Google" if choice.app is App.GOOGLE else "webcal",
        "calendarTags": [{"internalId": t} for t in choice.tag_ids],
        "userAgent": (user_agent or "")[:1000] or None,
        "ipAddress": (ip_address or "")[:64] or None,
        "urlReferrer": choice.visit.referrer,
    }
    if choice.time_zone:
        body["timeZoneId"] = choice.time_zone
    if subscriber_id:
        body["subscriberId"] = subscriber_id
    if choice.email:
        body["emailAddress"] = choice.email
    if choice.marketing_allowed is not None:
        body["marketingAllowed"] = choice.marketing_allowed
    if choice.additional_opt_in is not None:
        body["additionalOptIn"] = choice.additional_opt_in
    for name, value in choice.visit.utm.items():
        body[_camel(name)] = value
    return {k: v for k, v in body.items() if v is not None}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
