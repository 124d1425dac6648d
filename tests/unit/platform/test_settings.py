"""Settings: defaults fit one machine, every KALENDS_* value is validated, secrets never reach a log."""

from __future__ import annotations

import pytest

from shared.service import parse_args
from shared.settings import PlatformSettings, SettingsError, censor_url, env_bool, env_float, env_int


def test_defaults_are_the_contract_defaults() -> None:
    settings = PlatformSettings.from_env({})
    assert settings.database_url == "postgresql://postgres@127.0.0.1:5432/kalends"
    assert settings.amqp_url == "amqp://guest:guest@127.0.0.1:5672/"
    assert settings.host == "127.0.0.1"
    assert settings.auth_url == "http://127.0.0.1:8081"
    assert settings.public_feed_url == "http://127.0.0.1:8083"
    assert settings.log_format == "json"
    assert settings.amqp_prefix == ""


def test_values_come_from_the_environment_and_trailing_slashes_go() -> None:
    settings = PlatformSettings.from_env(
        {
            "KALENDS_DATABASE_URL": "postgres://u:p@db:5433/x",
            "KALENDS_AMQP_URL": "amqps://u:p@mq/vh",
            "KALENDS_AUTH_URL": "https://auth.example.com/",
            "KALENDS_PUBLIC_FEED_URL": "https://feeds.example.com//",
            "KALENDS_LOG_FORMAT": "console",
            "KALENDS_LOG_LEVEL": "DEBUG",
            "KALENDS_AMQP_PREFIX": "t1.",
            "KALENDS_DB_POOL_MAX": "20",
        }
    )
    assert settings.database_url == "postgres://u:p@db:5433/x"
    assert settings.auth_url == "https://auth.example.com"
    assert settings.public_feed_url == "https://feeds.example.com"
    assert settings.log_format == "console"
    assert settings.log_level == "debug"
    assert settings.amqp_prefix == "t1."
    assert settings.db_pool_max == 20


def test_blank_variables_mean_the_default() -> None:
    assert PlatformSettings.from_env({"KALENDS_HOST": "  ", "KALENDS_AUTH_URL": ""}).auth_url == "http://127.0.0.1:8081"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("KALENDS_DATABASE_URL", "mysql://db/x", "KALENDS_DATABASE_URL must be a postgres/postgresql URL"),
        ("KALENDS_DATABASE_URL", "postgresql:///nohost", "with a host"),
        ("KALENDS_AMQP_URL", "http://mq", "KALENDS_AMQP_URL must be a amqp/amqps URL"),
        ("KALENDS_AMQP_URL", "amqp://a/,http://b/", "amqps URL with a host, got 'http://b/'"),
        ("KALENDS_AMQP_URL", "amqp://a/,,amqp://b/", "KALENDS_AMQP_URL has an empty entry"),
        ("KALENDS_AUTH_URL", "127.0.0.1:8081", "KALENDS_AUTH_URL must be a http/https URL"),
        ("KALENDS_LOG_FORMAT", "xml", "KALENDS_LOG_FORMAT must be json or console"),
        ("KALENDS_LOG_LEVEL", "loud", "KALENDS_LOG_LEVEL must be"),
        ("KALENDS_DB_POOL_MAX", "ten", "KALENDS_DB_POOL_MAX must be a whole number"),
        ("KALENDS_DB_POOL_MAX", "0", "KALENDS_DB_POOL_MAX must be at least 1"),
        ("KALENDS_DB_POOL_MIN", "50", "exceeds KALENDS_DB_POOL_MAX"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        PlatformSettings.from_env({name: value})


def test_typed_helpers_parse_and_refuse() -> None:
    assert env_int("N", 3, {"N": "7"}) == 7
    assert env_float("F", 1.5, {}) == 1.5
    assert env_bool("B", False, {"B": "yes"}) is True
    assert env_bool("B", True, {"B": "0"}) is False
    with pytest.raises(SettingsError, match="B must be 0 or 1"):
        env_bool("B", True, {"B": "maybe"})
    with pytest.raises(SettingsError, match="F must be positive"):
        env_float("F", 1.0, {"F": "-2"})
    with pytest.raises(SettingsError, match="F must be a number"):
        env_float("F", 1.0, {"F": "soon"})


@pytest.mark.parametrize(
    ("url", "censored"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/"),
        ("postgresql://app:s3cr%40t@db:5432/kalends", "postgresql://app:***@db:5432/kalends"),
        ("postgresql://app:p@ss@word@db/k", "postgresql://app:***@db/k"),
        ("postgresql://postgres@127.0.0.1:5432/kalends", "postgresql://postgres@127.0.0.1:5432/kalends"),
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        ("postgresql://u:secret@db:notaport/x", "postgresql://u:***@db:notaport/x"),
    ],
)
def test_censor_url_hides_the_password_and_nothing_else(url: str, censored: str) -> None:
    assert censor_url(url) == censored


def test_settings_for_log_never_contain_a_password() -> None:
    settings = PlatformSettings.from_env(
        {"KALENDS_DATABASE_URL": "postgresql://app:hunter2@db/k", "KALENDS_AMQP_URL": "amqp://app:hunter3@mq/"}
    )
    logged = settings.for_log()
    assert "hunter2" not in repr(logged) and "hunter3" not in repr(logged)
    assert logged["database_url"] == "postgresql://app:***@db/k"
    assert logged["db_pool_max"] == 10


def test_a_cluster_is_given_as_comma_separated_amqp_urls_each_censored_in_logs() -> None:
    settings = PlatformSettings.from_env({"KALENDS_AMQP_URL": " amqp://u:p1@mq-0/ , amqps://u:p2@mq-1:5671/vh"})
    assert settings.amqp_url == "amqp://u:p1@mq-0/,amqps://u:p2@mq-1:5671/vh"
    assert settings.for_log()["amqp_url"] == "amqp://u:***@mq-0/,amqps://u:***@mq-1:5671/vh"


def test_service_arguments_default_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALENDS_FEED_PORT", "9183")
    monkeypatch.setenv("KALENDS_ROLE", "worker")
    monkeypatch.setenv("KALENDS_FEED_WORKERS", "3")
    options = parse_args("feed", 8083, [])
    assert (options.port, options.role, options.workers) == (9183, "worker", 3)
    options = parse_args("feed", 8083, ["--role", "api", "--port", "7000", "--workers", "1"])
    assert (options.port, options.role, options.workers) == (7000, "api", 1)


def test_service_arguments_use_the_default_port_when_the_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KALENDS_AUTH_PORT", raising=False)
    monkeypatch.delenv("KALENDS_ROLE", raising=False)
    options = parse_args("auth", 8081, [])
    assert (options.port, options.role, options.workers) == (8081, "all", 1)


@pytest.mark.parametrize(
    ("env", "argv"),
    [
        ({"KALENDS_AUTH_PORT": "eighty"}, []),
        ({"KALENDS_ROLE": "boss"}, []),
        ({}, ["--role", "boss"]),
        ({}, ["--port", "70000"]),
    ],
)
def test_service_arguments_refuse_bad_values(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str], argv: list[str]
) -> None:
    monkeypatch.delenv("KALENDS_ROLE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        parse_args("auth", 8081, argv)
    assert exited.value.code == 2
    assert "error" in capsys.readouterr().err
