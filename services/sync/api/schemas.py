"""Request and response shapes of the sync API; the only place its wire names live."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from shared.http import CaseInsensitiveModel


class CalDavConnect(CaseInsensitiveModel):
    """ingest's call on a subscribe with `subscriptionMethod: "caldav"`: the subscriber's server and
    app password, and the merchant's calendar the new collection is named after."""

    url: str = Field(min_length=1, max_length=2048)
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=1024)
    calendar_id: uuid.UUID | None = Field(None, alias="calendarId")
    name: str = Field("Calendar", max_length=256)
    description: str = Field("", max_length=4000)
    color: str | None = Field(None, max_length=32)
    timezone: str = Field("UTC", max_length=64)


class CalDavConnected(BaseModel):
    connection_id: uuid.UUID = Field(serialization_alias="connectionId")
    calendar_url: str = Field(serialization_alias="calendarUrl")
    remote_user: str = Field(serialization_alias="remoteUser")
    created_collection: bool = Field(serialization_alias="createdCollection")
