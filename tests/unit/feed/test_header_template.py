"""A calendar's header template puts any subscription id where a rendering would, folds included."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from services.feed.domain.headers import HeaderTemplate
from shared.ical import CalendarHeader, render_header


def renderer(padding: int) -> Callable[[uuid.UUID], bytes]:
    """Headers whose unsubscribe link and source start `padding` octets further on: a folded line
    (75 octets) cuts the id at a different place for each, a dash included."""

    def render(subscription_id: uuid.UUID) -> bytes:
        return render_header(
            CalendarHeader(
                name="Acme games" + "x" * padding,
                description=f"{'d' * padding}All the games\n\nUnsubscribe: https://api.example.test/v1/unsubscribe/{subscription_id}",
                refresh_interval="PT1H",
                source=f"https://feeds.example.test/{'s' * padding}v1/webcal/{subscription_id}",
                timezone="America/New_York",
            )
        )

    return render


@pytest.mark.parametrize("padding", range(0, 80, 3))
def test_a_filled_template_is_the_rendering_of_that_id(padding: int) -> None:
    render = renderer(padding)
    template = HeaderTemplate.of(render)
    assert template is not None
    for subscription_id in [uuid.uuid4() for _ in range(20)]:
        assert template.fill(subscription_id) == render(subscription_id)
        assert template.fill(subscription_id, str(subscription_id)) == render(subscription_id)
    # The id's text goes in as whole stretches (two ids, each cut at most once or twice by a fold),
    # not one piece per group of hex digits.
    assert len(template._runs) <= 6


def test_a_rendering_that_does_not_carry_the_id_as_text_has_no_template() -> None:
    def render(subscription_id: uuid.UUID) -> bytes:
        return f"X-ID:{subscription_id}\r\nX-LEN:{len(str(subscription_id.int))}\r\n".encode()

    # The second line changes with the id in a way no template can fill in.
    assert HeaderTemplate.of(render) is None
