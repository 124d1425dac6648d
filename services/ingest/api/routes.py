"""Every URL of the ingest service (CONTRACT.md, "ingest")."""

from __future__ import annotations

from services.ingest.api import handlers as h
from services.ingest.api import reports
from services.ingest.api.responses import CalendarAnswer, EventAnswer, TagAnswer
from services.ingest.api.schemas import (
    CalendarBody,
    DeactivateBody,
    EventBody,
    SubscribeBody,
    SubscriptionEventBody,
    TagBody,
    TagRenameBody,
    UpdateSubscriptionBody,
)
from shared.tokens import CALENDAR_PAGES
from shared.web import Route

CAL = "/v1/calendars/{accountCode}"
ONE_CAL = CAL + "/{calendarCode}"
SUB = "/v1/subscription/{accountCode}/{calendarCode}"


def routes() -> list[Route]:
    subscribe_docs = {"403": "token of another account", "404": "no such calendar", "413": "body too large"}
    return [
        # catalog
        Route(
            "POST",
            CAL,
            h.create_calendar,
            "create a calendar",
            CalendarBody,
            CalendarAnswer,
            responses={"201": "created", "409": "the account already has a calendar of this code"},
        ),
        Route("GET", CAL, h.list_calendars, "the account's calendars"),
        Route("GET", ONE_CAL, h.get_calendar, "one calendar", scope=CALENDAR_PAGES),
        Route(
            "PUT", ONE_CAL, h.update_calendar, "change a calendar (names sent replace)", CalendarBody, CalendarAnswer
        ),
        Route("DELETE", ONE_CAL, h.delete_calendar, "delete a calendar", responses={"204": "deleted"}),
        Route(
            "POST",
            ONE_CAL + "/tags",
            h.save_tag,
            "create a tag (same externalId: rename)",
            TagBody,
            TagAnswer,
            responses={"201": "created"},
        ),
        Route("GET", ONE_CAL + "/tags", h.list_tags, "the calendar's tags", scope=CALENDAR_PAGES),
        Route(
            "PUT",
            ONE_CAL + "/tags/{tagId}",
            h.rename_tag,
            "rename a tag, by id or externalId",
            TagRenameBody,
            TagAnswer,
            responses={"404": "no such tag"},
        ),
        Route(
            "DELETE",
            ONE_CAL + "/tags/{tagId}",
            h.delete_tag,
            "delete a tag no live event or active subscription names",
            responses={"204": "deleted", "404": "no such tag", "409": "events or subscriptions still name it"},
        ),
        Route(
            "POST",
            ONE_CAL + "/events",
            h.save_event,
            "create an event (same externalId: update)",
            EventBody,
            EventAnswer,
            responses={"201": "created"},
        ),
        Route(
            "GET", ONE_CAL + "/events", h.list_events, "the calendar's events (?limit=&offset=)", scope=CALENDAR_PAGES
        ),
        Route("GET", ONE_CAL + "/events/{eventId}", h.get_event, "one event, by id or externalId"),
        Route("PUT", ONE_CAL + "/events/{eventId}", h.replace_event, "replace an event", EventBody, EventAnswer),
        Route(
            "PATCH",
            ONE_CAL + "/events/{eventId}",
            h.patch_event,
            "change some of an event's fields",
            response_model=EventAnswer,
        ),
        Route("DELETE", ONE_CAL + "/events/{eventId}", h.delete_event, "cancel an event"),
        # reports: the account's subscriptions searched and counted (the web console reads these)
        Route(
            "GET",
            "/v1/subscriptions/{accountCode}",
            reports.search_subscriptions,
            "search the account's subscriptions (?calendarCode=&q=&active=&method=&device=&tag=&limit=&offset=)",
            responses={"403": "token of another account"},
        ),
        Route(
            "GET",
            "/v1/analytics/{accountCode}",
            reports.subscription_analytics,
            "subscriptions and unsubscriptions per UTC day, by method, device, UTM, tag (?calendarCode=&from=&to=)",
            responses={"403": "token of another account"},
        ),
        # CalReply subscriptions (seed 002)
        Route(
            "POST",
            "/v1/subscribe/{accountCode}/{calendarCode}",
            h.subscribe,
            "Create New Subscription",
            SubscribeBody,
            responses=subscribe_docs,
            name="subscribe_v1",
            scope=CALENDAR_PAGES,
        ),
        Route(
            "POST",
            "/v2/subscribe/{accountCode}/{calendarCode}",
            h.subscribe,
            "Create New Subscription",
            SubscribeBody,
            responses=subscribe_docs,
            name="subscribe_v2",
            scope=CALENDAR_PAGES,
        ),
        Route("GET", "/v1/subscription/{subscriptionId}", h.get_subscription, "Get Subscription Details"),
        Route(
            "GET",
            SUB + "/{username}",
            h.subscriptions_of_username,
            "Get Subscription Details for all Subscriptions for a Username",
        ),
        Route(
            "PUT",
            SUB + "/{subscriptionId}",
            h.update_subscription,
            "Update Subscription Details",
            UpdateSubscriptionBody,
            responses={"409": "the subscription has been deactivated"},
        ),
        Route("DELETE", SUB, h.deactivate_subscriptions, "Deactivate an Existing Subscription", DeactivateBody),
        Route(
            "DELETE",
            SUB + "/",
            h.deactivate_subscriptions,
            "Deactivate an Existing Subscription",
            DeactivateBody,
            name="deactivate_trailing_slash",
        ),
        # The seed's own deactivation curl sends its body with POST (curl -d without -X).
        Route(
            "POST",
            SUB,
            h.deactivate_subscriptions,
            "Deactivate (seed curl form)",
            DeactivateBody,
            name="deactivate_post",
        ),
        Route(
            "POST",
            SUB + "/",
            h.deactivate_subscriptions,
            "Deactivate (seed curl form)",
            DeactivateBody,
            name="deactivate_post_trailing_slash",
        ),
        Route(
            "POST",
            SUB + "/{subscriptionId}/rotate-credentials",
            h.rotate_credentials,
            "issue a protected subscription a new feed password (answers its new subscriptionUrl)",
            responses={"404": "no such subscription", "409": "inactive, not webcal, or calendar not protected"},
        ),
        Route(
            "POST",
            "/v1/webcal/{merchantCode}/{calCode}",
            h.subscribe_webcal,
            "Create New Webcal Subscription (answers the webcal URL as text)",
            SubscribeBody,
            response_content_type="text/plain",
        ),
        Route(
            "POST",
            "/v1/subscriptionevent/{accountCode}",
            h.subscription_event,
            "Create New Subscription Event",
            SubscriptionEventBody,
            responses={"202": "accepted"},
        ),
        # the subscriber's page
        Route(
            "GET",
            "/v1/unsubscribe/{subscriptionId}",
            h.unsubscribe_form,
            "unsubscribe page (HTML)",
            public=True,
            response_content_type="text/html",
        ),
        Route(
            "POST",
            "/v1/unsubscribe/{subscriptionId}",
            h.unsubscribe,
            "confirm unsubscribing (HTML form post)",
            public=True,
            response_content_type="text/html",
            request_content_type="application/x-www-form-urlencoded",
        ),
    ]
