"""SMTP over TLS against real aiosmtpd servers with a certificate made here: `smtps://` (TLS from the
first byte) and STARTTLS, with AUTH; the certificate is verified against KALENDS_SMTP_CA_FILE (a
wrong CA or the system's fails, and nothing goes in clear instead); credentials never travel
without TLS."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.mail.adapters.smtp import refused_recipients
from services.mail.settings import parse_smtp_url
from shared.testing_smtp import RecordingHandler, SmtpServer
from tests.integration.mail.conftest import MAIL_FROM, Mailer, deliveries
from tests.integration.mail.test_sending import invite

USER, PASSWORD = "kalends", "s3cr:et@1"
URL_CREDENTIALS = "kalends:s3cr%3Aet%401"  # percent-encoded in the URL


@dataclass
class Pki:
    ca_file: Path  # the CA that issued the server's certificate
    other_ca_file: Path  # a CA that did not
    server: ssl.SSLContext


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca, ca_key = _ca("Kalends Test CA")
    other, _ = _ca("Somebody Else's CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("smtp.kalends.test"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(_pem(ca))
    (folder / "other-ca.pem").write_bytes(_pem(other))
    (folder / "server.pem").write_bytes(_pem(cert))
    (folder / "server.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(folder / "server.pem", folder / "server.key")
    return Pki(folder / "ca.pem", folder / "other-ca.pem", server)


def _tls(server: SMTP) -> bool:
    return server.transport is not None and server.transport.get_extra_info("ssl_object") is not None


@dataclass
class TlsRecordingHandler(RecordingHandler):
    """Records, besides each message, whether it came over TLS, and every login attempt."""

    over_tls: list[bool] = field(default_factory=list)
    logins: list[tuple[str, str, bool]] = field(default_factory=list)
    login_lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.over_tls.append(_tls(server))
        return await super().handle_DATA(server, session, envelope)

    def authenticator(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        with self.login_lock:
            self.logins.append((login, password, _tls(server)))
        return AuthResult(success=(login, password) == (USER, PASSWORD))


def tls_server(**options: Any) -> SmtpServer:
    handler = TlsRecordingHandler()
    return SmtpServer(handler=handler, authenticator=handler.authenticator, **options).start()


def with_credentials(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{URL_CREDENTIALS}@{rest}"


async def last_attempt_error(pool: asyncpg.Pool, account: uuid.UUID, timeout: float = 10.0) -> str:
    """The first recorded attempt's error once there is one."""
    deadline = time.monotonic() + timeout
    while True:
        error = await pool.fetchval(
            "SELECT a.error FROM mail.attempts a JOIN mail.deliveries d ON d.id = a.delivery_id"
            " WHERE d.account_id = $1 ORDER BY a.started_at LIMIT 1",
            account,
        )
        if error:
            return str(error)
        assert time.monotonic() < deadline, "no attempt was recorded"
        await asyncio.sleep(0.1)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # deliberately so, see the test
async def test_smtps_with_credentials_is_tls_from_the_first_byte_verified_against_the_ca_file(
    mailer: Mailer, pki: Pki
) -> None:
    # aiosmtpd only counts STARTTLS as TLS for `auth_require_tls` (it advertises no AUTH on an
    # implicit-TLS port otherwise), so here the login's transport is checked by the authenticator.
    server = tls_server(ssl_context=pki.server, auth_required=True, auth_require_tls=False)
    try:
        assert server.url.startswith("smtps://")
        await mailer.start(smtp_url=with_credentials(server.url), smtp_ca_file=str(pki.ca_file))
        await invite(mailer.pool, uuid.uuid4(), ["ann@example.com"])
        (received,) = await server.wait_for(1)
        assert received.recipients == ["ann@example.com"] and received.sender == MAIL_FROM
        handler = server.handler
        assert handler.over_tls == [True]
        assert handler.logins == [(USER, PASSWORD, True)]
    finally:
        server.stop()


@pytest.mark.parametrize("credentials", [True, False], ids=["login-after-starttls", "no-credentials"])
async def test_smtp_upgrades_with_starttls_when_the_server_offers_it(
    mailer: Mailer, pki: Pki, credentials: bool
) -> None:
    # With credentials the server insists on STARTTLS and AUTH; without, it only offers STARTTLS,
    # and the mailer takes it all the same.
    options: dict[str, Any] = {"tls_context": pki.server}
    if credentials:
        options |= {"require_starttls": True, "auth_required": True}
    server = tls_server(**options)
    try:
        url = with_credentials(server.url) if credentials else server.url
        assert url.startswith("smtp://")
        await mailer.start(smtp_url=url, smtp_ca_file=str(pki.ca_file))
        await invite(mailer.pool, uuid.uuid4(), ["bob@example.com"])
        await server.wait_for(1)
        handler = server.handler
        assert handler.over_tls == [True]
        assert handler.logins == ([(USER, PASSWORD, True)] if credentials else [])

        # Convier's recipient check goes the same way (TLS, login) and reads the refusal.
        handler.refuse["ghost@example.com"] = "550 5.1.1 no such user"
        target = parse_smtp_url(url, ca_file=str(pki.ca_file))
        refused = await refused_recipients(target, MAIL_FROM, ["bob@example.com", "ghost@example.com"], timeout=5)
        assert [(r.address, r.code) for r in refused or []] == [("ghost@example.com", 550)]
    finally:
        server.stop()


@pytest.mark.parametrize("mode", ["smtps", "starttls"])
@pytest.mark.parametrize("trust", ["another-ca", "system-cas"])
async def test_a_certificate_the_mailer_cannot_verify_fails_the_attempt_and_nothing_goes_in_clear(
    mailer: Mailer, pki: Pki, mode: str, trust: str
) -> None:
    # The STARTTLS server would take mail in clear too: a mailer that fell back after a failed
    # handshake would deliver, and this test would see it.
    server = tls_server(**({"ssl_context": pki.server} if mode == "smtps" else {"tls_context": pki.server}))
    try:
        await mailer.start(smtp_url=server.url, smtp_ca_file=str(pki.other_ca_file) if trust == "another-ca" else None)
        account = uuid.uuid4()
        await invite(mailer.pool, account, ["carl@example.com"])
        error = await last_attempt_error(mailer.pool, account)
        assert "CERTIFICATE_VERIFY_FAILED" in error or "certificate verify failed" in error
        (row,) = await deliveries(mailer.pool, account)
        assert row["status"] in ("queued", "failed") and row["sent_at"] is None
        await asyncio.sleep(1.5)  # the schedule's next attempt (1 s) fails the same way
        assert server.received == [] and server.handler.over_tls == []
    finally:
        server.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # deliberately so, see the test
async def test_credentials_are_never_sent_to_a_server_that_offers_auth_without_starttls(mailer: Mailer) -> None:
    server = tls_server(auth_required=True, auth_require_tls=False)  # AUTH PLAIN/LOGIN in clear, no STARTTLS
    try:
        await mailer.start(smtp_url=with_credentials(server.url))
        account = uuid.uuid4()
        await invite(mailer.pool, account, ["dan@example.com"])
        error = await last_attempt_error(mailer.pool, account)
        assert "STARTTLS" in error or "starttls" in error.lower()
        await asyncio.sleep(1.5)
        assert server.handler.logins == [] and server.received == []
        target = parse_smtp_url(with_credentials(server.url))
        assert await refused_recipients(target, MAIL_FROM, ["dan@example.com"], timeout=3) is None
        assert server.handler.logins == []
    finally:
        server.stop()
