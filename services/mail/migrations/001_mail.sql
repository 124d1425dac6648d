-- iMIP invitations, one delivery per (invitation, attendee), every SMTP attempt.
-- PostgreSQL holds the truth of what is due; workers claim due deliveries with SKIP LOCKED.

CREATE TABLE invitations (
    id               uuid PRIMARY KEY,
    account_id       uuid NOT NULL,
    uid              text NOT NULL,               -- the iCalendar UID, the same for the event's life
    event_id         uuid,                        -- the catalog event, when it came from one
    method           text NOT NULL CHECK (method IN ('REQUEST', 'CANCEL')),
    sequence         integer NOT NULL,
    calendar         text NOT NULL,               -- the VCALENDAR sent (METHOD set, every attendee)
    organizer_email  text NOT NULL,
    organizer_name   text,
    subject          text,
    body             text,
    locale           text NOT NULL DEFAULT 'en',
    attach           boolean NOT NULL DEFAULT false,
    inline           boolean NOT NULL DEFAULT true,
    hide_attendees   boolean NOT NULL DEFAULT false,
    -- For a catalog event: its significant content (times, recurrence, place, title...), so a change
    -- that is not one (an attendee's answer recorded) sends nobody a new request.
    fingerprint      text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invitations_uid ON invitations (account_id, uid);

CREATE TABLE deliveries (
    id                uuid PRIMARY KEY,
    invitation_id     uuid NOT NULL REFERENCES invitations (id) ON DELETE CASCADE,
    account_id        uuid NOT NULL,
    uid               text NOT NULL,
    method            text NOT NULL,
    sequence          integer NOT NULL,
    attendee_email    text NOT NULL,              -- lower-cased
    attendee_name     text,
    status            text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed')),
    partstat          text NOT NULL DEFAULT 'NEEDS-ACTION',
    attempts_made     integer NOT NULL DEFAULT 0,
    first_attempt_at  timestamptz,                -- the retry schedule's anchor
    next_attempt_at   timestamptz,
    lease_until       timestamptz,                -- a claimed attempt in flight
    smtp_code         integer,
    smtp_answer       text,
    message_id        text NOT NULL,              -- the Message-ID header, the same on every attempt
    replied_at        timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    sent_at           timestamptz,
    -- A replayed request (the same message, or the same event version) adds nothing.
    UNIQUE (account_id, uid, method, sequence, attendee_email)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'queued';
CREATE INDEX deliveries_account ON deliveries (account_id, created_at DESC, id DESC);
CREATE INDEX deliveries_uid ON deliveries (account_id, uid, attendee_email);

CREATE TABLE attempts (
    id           uuid PRIMARY KEY,
    delivery_id  uuid NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number       integer NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    smtp_code    integer,
    smtp_answer  text,
    error        text,
    succeeded    boolean,
    UNIQUE (delivery_id, number)
);
