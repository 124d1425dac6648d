"""Pure pieces of the mail service: settings, locales, reply addresses, reply parsing, SMTP answers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.mail.adapters.smtp import _answer
from services.mail.domain.replies import NotAReply, accepts, invitation_of, parse_reply
from services.mail.domain.texts import resolve_locale
from services.mail.services import reply_address
from services.mail.settings import MailSettings, parse_smtp_url
from shared.settings import SettingsError


def test_smtp_urls_give_host_port_tls_and_credentials() -> None:
    plain = parse_smtp_url("smtp://127.0.0.1:1025")
    assert (plain.host, plain.port, plain.implicit_tls, plain.username) == ("127.0.0.1", 1025, False, None)
    secure = parse_smtp_url("smtps://me%40x.com:p%3Ass@mail.example.com")
    assert (secure.port, secure.implicit_tls, secure.username, secure.password) == (465, True, "me@x.com", "p:ss")
    assert parse_smtp_url("smtp://relay.example.com").port == 25
    with pytest.raises(SettingsError, match="smtp://host:25"):
        parse_smtp_url("http://mail.example.com")


def test_settings_read_the_contract_defaults_and_refuse_half_a_dkim_configuration() -> None:
    settings = MailSettings.from_env({})
    assert settings.retry_schedule == (0, 60, 300, 1800, 7200, 21600)
    assert (settings.smtp_url, settings.mail_from, settings.inbound_port) == (
        "smtp://127.0.0.1:1025",
        "calendar@localhost",
        None,
    )
    assert MailSettings.from_env({"KALENDS_MAIL_INBOUND_PORT": "2525"}).inbound_port == 2525
    with pytest.raises(SettingsError, match="KALENDS_DKIM_KEY"):
        MailSettings.from_env({"KALENDS_DKIM_SELECTOR": "s1"})
    with pytest.raises(SettingsError, match="must start with 0"):
        MailSettings.from_env({"KALENDS_MAIL_RETRY_SCHEDULE": "5,10"})


def test_the_smtp_ca_file_defaults_to_the_system_cas_and_must_be_a_readable_pem_bundle(tmp_path: Path) -> None:
    assert MailSettings.from_env({}).smtp.ca_file is None  # aiosmtplib then trusts the system's CAs
    assert MailSettings.from_env({}).recipient_check_timeout == 5.0  # Convier's check: at most 5 s
    assert MailSettings.from_env({"KALENDS_SMTP_TIMEOUT": "2"}).recipient_check_timeout == 2.0
    with pytest.raises(SettingsError, match="KALENDS_SMTP_CA_FILE"):
        MailSettings.from_env({"KALENDS_SMTP_CA_FILE": str(tmp_path / "missing.pem")})
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(SettingsError, match="not a readable PEM CA bundle"):
        MailSettings.from_env({"KALENDS_SMTP_CA_FILE": str(tmp_path / "junk.pem")})
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    now = datetime.now(UTC)
    ca = (
        x509.CertificateBuilder(name, name, key.public_key(), x509.random_serial_number(), now, now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    bundle = str(tmp_path / "ca.pem")
    Path(bundle).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    settings = MailSettings.from_env({"KALENDS_SMTP_CA_FILE": bundle, "KALENDS_SMTP_URL": "smtps://u:p@mx.example"})
    assert settings.smtp.ca_file == bundle and settings.for_log()["smtp_ca_file"] == bundle
    assert "u:p" not in str(settings.for_log())


@pytest.mark.parametrize(
    ("requested", "used"), [("fr", "fr"), ("de-AT", "de"), ("es_MX", "es"), ("tlh", "en"), (None, "en"), ("", "en")]
)
def test_a_locale_we_lack_falls_back_to_english(requested: str | None, used: str) -> None:
    assert resolve_locale(requested) == used


def test_smtp_answers_are_sent_retry_or_failed_by_their_class() -> None:
    assert _answer(250, "ok").kind == "sent"
    assert _answer(451, "later").kind == "retry"
    assert _answer(552, "too big").kind == "failed"


def test_the_reply_address_names_its_invitation_and_only_ours_is_accepted() -> None:
    invitation = uuid.uuid4()
    address = reply_address("calendar@kalends.test", invitation)
    assert invitation_of(address, "calendar@kalends.test") == invitation
    assert accepts(address, "calendar@kalends.test") and accepts("Calendar@kalends.test", "calendar@kalends.test")
    assert invitation_of("other+" + invitation.hex + "@kalends.test", "calendar@kalends.test") is None
    assert not accepts("postmaster@kalends.test", "calendar@kalends.test")
    assert not accepts(f"calendar+{invitation.hex}@elsewhere.test", "calendar@kalends.test")


def _reply(sender: str, attendee: str, partstat: str = "TENTATIVE", method: str = "REPLY") -> bytes:
    message = EmailMessage()
    message["From"] = f"Ann <{sender}>"
    message["To"] = "calendar@kalends.test"
    message.set_content("answer")
    message.add_attachment(
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nMETHOD:{method}\r\nBEGIN:VEVENT\r\nUID:u-1\r\n"
        f"DTSTAMP:20260101T000000Z\r\nSEQUENCE:2\r\nCOMMENT:See you\r\n"
        f"ATTENDEE;PARTSTAT={partstat}:mailto:{attendee}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n".encode(),
        maintype="text",
        subtype="calendar",
        filename="reply.ics",
    )
    return message.as_bytes()


def test_a_reply_gives_uid_attendee_partstat_sequence_and_comment() -> None:
    reply = parse_reply(_reply("Ann@Example.com", "ann@example.com"))
    assert (reply.method, reply.uid, reply.attendee, reply.partstat, reply.sequence, reply.comment) == (
        "REPLY",
        "u-1",
        "ann@example.com",
        "TENTATIVE",
        2,
        "See you",
    )
    assert parse_reply(_reply("ann@example.com", "ann@example.com", method="COUNTER")).method == "COUNTER"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_reply("mallory@example.com", "ann@example.com"), "is not its sender"),
        (_reply("ann@example.com", "ann@example.com", partstat="MAYBE"), "PARTSTAT MAYBE"),
        (_reply("ann@example.com", "ann@example.com", method="REQUEST"), "METHOD:REPLY"),
        (b"From: ann@example.com\r\nSubject: hi\r\n\r\nno calendar\r\n", "no text/calendar part"),
    ],
)
def test_a_mail_that_is_not_an_honest_reply_is_refused_with_its_reason(data: bytes, reason: str) -> None:
    with pytest.raises(NotAReply, match=reason):
        parse_reply(data)
