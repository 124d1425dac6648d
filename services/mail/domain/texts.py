"""The invitation's own words in en, fr, de, es; any other locale falls back to English."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_LOCALE = "en"


@dataclass(frozen=True)
class Texts:
    invited: str  # subject prefix of a request
    updated: str  # subject prefix of a changed request (SEQUENCE > 0)
    cancelled: str  # subject prefix of a cancellation
    when: str
    where: str
    organizer: str
    answer: str  # how to answer a request
    cancel_note: str


TEXTS: dict[str, Texts] = {
    "en": Texts(
        "Invitation",
        "Updated invitation",
        "Cancelled",
        "When",
        "Where",
        "Organizer",
        "Accept or decline in your calendar app.",
        "This event has been cancelled.",
    ),
    "fr": Texts(
        "Invitation",
        "Invitation mise à jour",
        "Annulé",
        "Quand",
        "Où",
        "Organisateur",
        "Acceptez ou refusez dans votre application de calendrier.",
        "Cet événement a été annulé.",
    ),
    "de": Texts(
        "Einladung",
        "Aktualisierte Einladung",
        "Abgesagt",
        "Wann",
        "Wo",
        "Organisator",
        "Nehmen Sie in Ihrer Kalender-App an oder lehnen Sie ab.",
        "Dieser Termin wurde abgesagt.",
    ),
    "es": Texts(
        "Invitación",
        "Invitación actualizada",
        "Cancelado",
        "Cuándo",
        "Dónde",
        "Organizador",
        "Acepta o rechaza en tu aplicación de calendario.",
        "Este evento ha sido cancelado.",
    ),
}


def resolve_locale(requested: str | None) -> str:
    """`fr-CA` -> `fr`; unknown or empty -> `en` (never an error)."""
    if not requested:
        return DEFAULT_LOCALE
    language = requested.strip().replace("_", "-").split("-", 1)[0].lower()
    return language if language in TEXTS else DEFAULT_LOCALE


def texts_for(locale: str | None) -> Texts:
    return TEXTS[resolve_locale(locale)]
