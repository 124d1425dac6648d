"""Every URL of the console (`/console/...`): pages for GET, form targets for POST (303 after success)."""

from __future__ import annotations

from services.web.console.views import analytics, calendars, keys, login, subscribers, webhooks
from shared.web import Handler, Route

CAL = "/console/calendars/{code}"
HOOK = "/console/webhooks/{webhookId}"


def _page(method: str, path: str, handler: Handler, summary: str, content_type: str = "text/html") -> Route:
    # Public to the bearer middleware: the console checks its own session cookie (console.middleware).
    responses = {"303": "done, or to the login page without a session", "403": "a form without its CSRF token"}
    return Route(method, path, handler, summary, public=True, response_content_type=content_type, responses=responses)


def console_routes() -> list[Route]:
    return [
        _page("GET", "/console/", login.home, "the console's start: its calendars"),
        _page("GET", "/console/login", login.login_form, "the login form"),
        _page("POST", "/console/login", login.login, "log in (auth checks the password; lockout after failures)"),
        _page("POST", "/console/logout", login.logout, "log out: the session ends here and at auth"),
        _page("GET", "/console/set-password/{token}", login.set_password_form, "the one-time set-password form"),
        _page("POST", "/console/set-password/{token}", login.set_password, "set the password with the link's token"),
        _page("GET", "/console/calendars", calendars.list_calendars, "the account's calendars and the create form"),
        _page("POST", "/console/calendars", calendars.create_calendar, "create a calendar"),
        _page("GET", CAL, calendars.show_calendar, "a calendar: settings, tags, events"),
        _page("POST", CAL, calendars.update_calendar, "save a calendar's settings (protection included)"),
        _page("POST", CAL + "/delete", calendars.delete_calendar, "delete a calendar"),
        _page("POST", CAL + "/tags", calendars.create_tag, "add a tag"),
        _page("POST", CAL + "/tags/{tagId}", calendars.rename_tag, "rename a tag"),
        _page("POST", CAL + "/tags/{tagId}/delete", calendars.delete_tag, "delete an unused tag"),
        _page("GET", CAL + "/new-event", calendars.new_event, "the new-event form"),
        _page("POST", CAL + "/events", calendars.create_event, "create an event"),
        _page("GET", CAL + "/events/{eventId}", calendars.show_event, "an event's form"),
        _page("POST", CAL + "/events/{eventId}", calendars.update_event, "save an event"),
        _page("POST", CAL + "/events/{eventId}/delete", calendars.delete_event, "cancel an event"),
        _page("GET", "/console/subscribers", subscribers.list_subscribers, "search and filter subscriptions"),
        _page(
            "GET", "/console/subscribers/{subscriptionId}", subscribers.show_subscriber, "a subscription and its feed"
        ),
        _page(
            "POST",
            "/console/subscribers/{subscriptionId}/deactivate",
            subscribers.deactivate_subscriber,
            "deactivate a subscription",
        ),
        _page("GET", "/console/analytics", analytics.show_analytics, "subscriptions per day and by dimension (SVG)"),
        _page("GET", "/console/analytics.csv", analytics.export_csv, "the same numbers as CSV", "text/csv"),
        _page("GET", "/console/webhooks", webhooks.list_webhooks, "webhook endpoints and the create form"),
        _page("POST", "/console/webhooks", webhooks.create_webhook, "create an endpoint (its secret shown once)"),
        _page("GET", HOOK, webhooks.show_webhook, "an endpoint and its delivery log"),
        _page("POST", HOOK, webhooks.update_webhook, "save an endpoint"),
        _page("POST", HOOK + "/delete", webhooks.delete_webhook, "delete an endpoint"),
        _page("POST", HOOK + "/rotate-secret", webhooks.rotate_secret, "rotate the signing secret"),
        _page("POST", HOOK + "/test", webhooks.send_test, "send a test event"),
        _page("POST", HOOK + "/deliveries/{deliveryId}/retry", webhooks.retry_delivery, "retry a delivery now"),
        _page("GET", "/console/keys", keys.show_keys, "the account's API keys and OAuth clients"),
        _page("POST", "/console/keys/api-keys", keys.create_api_key, "create an API key (shown once)"),
        _page("POST", "/console/keys/api-keys/{keyId}/revoke", keys.revoke_api_key, "revoke an API key"),
        _page("POST", "/console/keys/clients", keys.create_client, "create an OAuth client (secret shown once)"),
        _page("POST", "/console/keys/clients/{clientId}/revoke", keys.revoke_client, "revoke an OAuth client"),
    ]
