"""Kalends sync: pushes subscriptions into subscribers' own calendars (Google, CalDAV)."""
