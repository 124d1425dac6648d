"""KALENDS_AMQP_URL as several nodes: how the list is read."""

from __future__ import annotations

from shared import amqp


def test_urls_are_split_on_commas_and_trimmed() -> None:
    assert amqp.split_urls(" amqp://a/ ,amqp://b/,, ") == ["amqp://a/", "amqp://b/"]


def test_a_single_url_is_a_list_of_one() -> None:
    assert amqp.split_urls("amqp://guest:guest@127.0.0.1:5672/") == ["amqp://guest:guest@127.0.0.1:5672/"]
